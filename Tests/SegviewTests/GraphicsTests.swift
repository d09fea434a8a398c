import Foundation
import SegImage
@testable import SegTUI
import XCTest

/// Images as the escape streams carry them, decoded.
enum EscapeImages {
    /// The bodies of the escape strings that start with `opening` and end with ST (ESC \\).
    static func bodies(_ bytes: [UInt8], opening: [UInt8]) -> [ArraySlice<UInt8>] {
        var found: [ArraySlice<UInt8>] = []
        var i = 0
        while i + opening.count <= bytes.count {
            guard bytes[i] == 0x1b, bytes[i..<i + opening.count].elementsEqual(opening) else { i += 1; continue }
            var end = i + opening.count
            while end + 1 < bytes.count, !(bytes[end] == 0x1b && bytes[end + 1] == UInt8(ascii: "\\")) { end += 1 }
            guard end + 1 < bytes.count else { break }
            found.append(bytes[(i + opening.count)..<end])
            i = end + 2
        }
        return found
    }

    typealias Kitty = (id: Int, width: Int, height: Int, pixels: [UInt8], control: [String: String])

    /// Every kitty image transmitted (`a=T`), its chunks joined: id, size, RGB pixels and the keys
    /// of its first chunk.
    static func kitty(_ data: Data) -> [Kitty] {
        var images: [Kitty] = []
        var current: (id: Int, width: Int, height: Int, payload: [UInt8], control: [String: String])?
        for body in bodies([UInt8](data), opening: [0x1b, UInt8(ascii: "_"), UInt8(ascii: "G")]) {
            let split = body.firstIndex(of: UInt8(ascii: ";")) ?? body.endIndex
            var keys: [String: String] = [:]
            for pair in String(decoding: body[body.startIndex..<split], as: UTF8.self).split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { keys[String(kv[0])] = String(kv[1]) }
            }
            let payload = split < body.endIndex ? Array(body[(split + 1)...]) : []
            if keys["a"] == "T" {
                current = (Int(keys["i"] ?? "") ?? -1, Int(keys["s"] ?? "") ?? 0, Int(keys["v"] ?? "") ?? 0,
                           payload, keys)
            } else if keys["a"] == nil, current != nil {
                current!.payload += payload
            } else {
                continue
            }
            if keys["m"] == "0", let image = current {
                let pixels = Data(base64Encoded: Data(image.payload)).map { [UInt8]($0) } ?? []
                images.append((image.id, image.width, image.height, pixels, image.control))
                current = nil
            }
        }
        return images
    }

    typealias Sixel = (width: Int, height: Int, pixels: [UInt8], painted: [Bool], transparent: Bool)

    /// Every sixel image: its raster size, RGB pixels (registers' colours from their percentages),
    /// which pixels it paints, and whether the others are left as they were (background mode 1).
    static func sixel(_ data: Data) -> [Sixel] {
        var images: [Sixel] = []
        for slice in bodies([UInt8](data), opening: [0x1b, UInt8(ascii: "P")]) {
            guard let q = slice.firstIndex(of: UInt8(ascii: "q")),
                  slice[slice.startIndex..<q].allSatisfy({ (48...59).contains($0) }) else { continue }
            let parameters = String(decoding: slice[slice.startIndex..<q], as: UTF8.self)
                .split(separator: ";", omittingEmptySubsequences: false)
            let transparent = parameters.count > 1 && parameters[1] == "1"
            let body = Array(slice[(q + 1)...])
            var i = 0
            func number() -> Int {
                var value = 0
                while i < body.count, (48...57).contains(body[i]) { value = value * 10 + Int(body[i] - 48); i += 1 }
                return value
            }
            /// `count` numbers separated by semicolons.
            func numbers(_ count: Int) -> [Int] {
                (0..<count).map { _ in
                    let value = number()
                    if i < body.count, body[i] == UInt8(ascii: ";") { i += 1 }
                    return value
                }
            }
            var width = 0, height = 0
            if body.first == UInt8(ascii: "\"") {
                i = 1
                let raster = numbers(4)
                (width, height) = (raster[2], raster[3])
            }
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            var painted = [Bool](repeating: false, count: width * height)
            var palette: [Int: (UInt8, UInt8, UInt8)] = [:]
            var color = (UInt8(0), UInt8(0), UInt8(0)), x = 0, band = 0
            func paint(_ sixel: UInt8, times: Int) {
                for _ in 0..<times {
                    for bit in 0..<6 where sixel & (1 << bit) != 0 {
                        let y = band * 6 + bit
                        if x < width && y < height {
                            let p = 3 * (y * width + x)
                            (pixels[p], pixels[p + 1], pixels[p + 2]) = color
                            painted[y * width + x] = true
                        }
                    }
                    x += 1
                }
            }
            while i < body.count {
                let byte = body[i]
                i += 1
                switch byte {
                case UInt8(ascii: "#"):
                    let register = number()
                    if i < body.count, body[i] == UInt8(ascii: ";") {
                        i += 1
                        let values = numbers(4)
                        func level(_ percent: Int) -> UInt8 { UInt8(min(255, (percent * 255 + 50) / 100)) }
                        palette[register] = (level(values[1]), level(values[2]), level(values[3]))
                    }
                    color = palette[register] ?? (0, 0, 0)
                case UInt8(ascii: "!"):
                    let count = number()
                    if i < body.count { paint(body[i] - 63, times: count); i += 1 }
                case UInt8(ascii: "$"): x = 0
                case UInt8(ascii: "-"): x = 0; band += 1
                case 63...126: paint(byte - 63, times: 1)
                default: break
                }
            }
            images.append((width, height, pixels, painted, transparent))
        }
        return images
    }
}

final class GraphicsTests: XCTestCase {
    var scratch: URL!
    let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
    let image = modelFixtures.appendingPathComponent("street_37x53.png").path

    override func setUpWithError() throws { scratch = try makeScratchDirectory("segview-graphics") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    func viewer(_ extra: [String], environment: [String: String] = [:]) throws -> PseudoTerminal {
        try PseudoTerminal([image, "--model", model] + extra, environment: ["TERM": "xterm-256color"]
                            .merging(environment) { $1 })
    }

    /// predict's colour mask of the test image, to compare the mask pane with.
    func predictedMask() throws -> RGBImage {
        let path = scratch.appendingPathComponent("mask.png").path
        let run = try runSegview(["predict", image, "--model", model, "--out", path])
        XCTAssertEqual(run.status, 0, run.output)
        return try PNG.read(path)
    }

    func pixel(_ pixels: [UInt8], width: Int, _ x: Int, _ y: Int) -> [UInt8] {
        Array(pixels[3 * (y * width + x)..<3 * (y * width + x) + 3])
    }

    /// The top-left and bottom-right pixels of a pane's image beside those of the 53x37 picture it
    /// magnifies (nearest sampling: the same pixels).
    func corners(_ shown: [UInt8], width: Int, height: Int, of source: RGBImage)
        -> [(shown: [UInt8], source: [UInt8])] {
        [((0, 0), (0, 0)), ((width - 1, height - 1), (52, 36))].map { target, origin in
            (pixel(shown, width: width, target.0, target.1), pixel(source.pixels, width: 53, origin.0, origin.1))
        }
    }

    func testKittyPanesArriveAsTheirPixelsAndTheCursorMovesWithoutThem() throws {
        let terminal = try viewer(["--graphics", "kitty"])
        XCTAssertTrue(terminal.read(timeout: 20) { EscapeImages.kitty($0).count >= 3 },
                      "three images; got:\n\(terminal.text.debugDescription.prefix(400))")
        let images = EscapeImages.kitty(terminal.output)
        let picture = try PNG.read(image), mask = try predictedMask()
        let byID = Dictionary(images.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        let photo = try XCTUnwrap(byID[1]), masks = try XCTUnwrap(byID[2])
        XCTAssertEqual(photo.pixels.count, photo.width * photo.height * 3)
        XCTAssertEqual(Double(photo.width) / Double(photo.height), 53.0 / 37.0, accuracy: 0.05, "the aspect ratio")
        XCTAssertGreaterThan(photo.width, 53, "the pane is magnified, drawn at its pixel size")
        // Magnified by nearest sampling: the corners are the image's own pixels, the mask's are predict's.
        for (shown, source) in corners(photo.pixels, width: photo.width, height: photo.height, of: picture)
            + corners(masks.pixels, width: masks.width, height: masks.height, of: mask) {
            XCTAssertEqual(shown, source)
        }
        let before = terminal.output.count
        terminal.send("l")
        terminal.read(timeout: 1.5)
        let moved = terminal.output[before...]
        XCTAssertFalse(moved.isEmpty, "the cursor move redrew something")
        XCTAssertFalse(String(decoding: moved, as: UTF8.self).contains("\u{1b}_Ga=T"), "no image is sent again")
        XCTAssertLessThan(moved.count, 1024, "a cursor move costs under 1 KB")
        terminal.send("q")
        XCTAssertTrue(terminal.read(timeout: 5) { String(decoding: $0, as: UTF8.self).contains("\u{1b}_Ga=d,d=A,q=2") },
                      "the images are deleted at exit")
    }

    /// The image pane's pixel size for a terminal of `cols` x `rows` cells of `cell` pixels: the
    /// whole 53x37 image fitted into the pane's cells.
    func expectedImagePane(cols: Int, rows: Int, cell: (Int, Int)) -> [Int] {
        let frame = Renderer.layout(rows: rows, cols: cols, imageWidth: 53, imageHeight: 37, singlePane: false).panes[0]
        let size = Viewport(x: 0, y: 0, width: 53, height: 37).gridSize(maxWidth: frame.width * cell.0,
                                                                       maxHeight: frame.height * cell.1)
        return [size.width, size.height]
    }

    /// A font size change (fewer cells, each bigger in pixels) redraws the panes at the new cell size.
    func testANewCellSizeRedrawsThePanesAtIt() throws {
        let terminal = try viewer(["--graphics", "kitty"])
        XCTAssertTrue(terminal.read(timeout: 20) { EscapeImages.kitty($0).count >= 3 })
        let first = try XCTUnwrap(EscapeImages.kitty(terminal.output).first { $0.id == 1 })
        XCTAssertEqual([first.width, first.height], expectedImagePane(cols: 120, rows: 40, cell: (10, 20)))
        let count = terminal.output.count
        terminal.resize(rows: 30, cols: 80, cellPixels: (15, 30))
        XCTAssertTrue(terminal.read(timeout: 10) { EscapeImages.kitty(Data($0[count...])).contains { $0.id == 1 } })
        let second = try XCTUnwrap(EscapeImages.kitty(Data(terminal.output[count...])).first { $0.id == 1 })
        XCTAssertEqual([second.width, second.height], expectedImagePane(cols: 80, rows: 30, cell: (15, 30)))
    }

    func testSixelPanesDecodeToTheirPixels() throws {
        let terminal = try viewer(["--graphics", "sixel"])
        XCTAssertTrue(terminal.read(timeout: 20) { EscapeImages.sixel($0).count >= 3 })
        let images = EscapeImages.sixel(terminal.output)
        let picture = try PNG.read(image), mask = try predictedMask()
        let photo = images[0], masks = images[1]
        XCTAssertEqual(Double(photo.width) / Double(photo.height), 53.0 / 37.0, accuracy: 0.05)
        // 252 registers: each channel within half a level step of the source.
        for (shown, source) in corners(photo.pixels, width: photo.width, height: photo.height, of: picture)
            + corners(masks.pixels, width: masks.width, height: masks.height, of: mask) {
            for channel in 0..<3 { XCTAssertEqual(Double(shown[channel]), Double(source[channel]), accuracy: 27) }
        }
        // A cursor move paints the crosses' cells over the panes, leaving the rest of the cells as they are.
        let before = terminal.output.count
        terminal.send("l")
        terminal.read(timeout: 1.5)
        let moved = Data(terminal.output[before...])
        let patches = EscapeImages.sixel(moved)
        XCTAssertFalse(patches.isEmpty, "the cursor was drawn again")
        XCTAssertTrue(patches.allSatisfy { $0.transparent && $0.width <= 40 && $0.height <= 40 },
                      "a few 10x20 cells: \(patches.map { [$0.width, $0.height] })")
        XCTAssertLessThan(moved.count, 1024, "a cursor move costs under 1 KB")
    }

    /// iTerm2's cursor is a `+` written over the painted panes; a move sends back only the cell it
    /// left in each pane (the picture is magnified here: each move leaves a cell), and ncurses,
    /// which sees cells that never change there, erases and shifts nothing.
    func testITermCursorMovesSendTheCellsLeft() throws {
        let terminal = try viewer(["--graphics", "iterm"])
        /// The pixel size of each complete inline image (its PNG ended by BEL).
        func sizes(_ data: Data) -> [[Int]] {
            let text = String(decoding: data, as: UTF8.self)
            return text.components(separatedBy: "\u{1b}]1337;File=").dropFirst().compactMap { image in
                guard image.contains("\u{07}") else { return nil }
                let fields = image.prefix { $0 != ":" }.split(separator: ";")
                let size = ["width=", "height="].compactMap { key in
                    fields.first { $0.hasPrefix(key) }.flatMap { Int($0.dropFirst(key.count).dropLast(2)) }
                }
                return size.count == 2 ? size : nil
            }
        }
        XCTAssertTrue(terminal.read(timeout: 20) { sizes($0).count >= 3 })
        terminal.read(timeout: 1)  // the rest of the first frame
        let panes = sizes(terminal.output)
        XCTAssertGreaterThan(panes[0][0], 100, "the panes first, whole: \(panes)")
        let marker = "\u{1b}[0;1m+\u{1b}8"
        let first = String(decoding: terminal.output, as: UTF8.self)
        let lastImage = try XCTUnwrap(first.range(of: "\u{1b}]1337;File=", options: .backwards))
        XCTAssertTrue(first[lastImage.upperBound...].contains(marker), "the marker written again over its pane")
        // A cell of one colour comes back as a space of that colour, any other as a PNG.
        let space = try NSRegularExpression(pattern: "\u{1b}\\[48;2;[0-9]+;[0-9]+;[0-9]+m \u{1b}8")
        // ncurses must leave the painted rows alone: no scroll region or scroll, no inserted or deleted
        // lines or characters, no erase of a line's start, a whole line or the screen (an erase to the
        // end of a line starts after its last non-blank, and the cells under images are not blank).
        let erase = try NSRegularExpression(pattern: "\u{1b}(\\[[0-9;]*[rJLMP@]|\\[[12]K|[DM])")
        var moves: [(bytes: Int, patches: [[Int]], spaces: Int)] = []
        for key in ["l", "j", "h", "k", "l", "j"] {  // four pixels a move, each to another cell
            let before = terminal.output.count
            terminal.send(key)
            XCTAssertTrue(terminal.read(timeout: 5) { $0.count > before })
            terminal.read(timeout: 0.5)
            let moved = Data(terminal.output[before...])
            let text = String(decoding: moved, as: UTF8.self)
            let spaces = space.numberOfMatches(in: text, range: NSRange(text.startIndex..., in: text))
            moves.append((moved.count, sizes(moved), spaces))
            let erased = erase.matches(in: text, range: NSRange(text.startIndex..., in: text))
            XCTAssertEqual(erased.map { text[Range($0.range, in: text)!].dropFirst() }, [], "after \(key)")
        }
        XCTAssertTrue(moves.allSatisfy { $0.patches.allSatisfy { $0 == [10, 20] } }, "whole 10x20 cells: \(moves)")
        XCTAssertTrue(moves.allSatisfy { $0.patches.count + $0.spaces == 3 }, "a cell a pane at each move: \(moves)")
        XCTAssertTrue(moves.contains { !$0.patches.isEmpty }, "photo cells come back as PNGs")
        XCTAssertLessThan(moves.map(\.bytes).max() ?? 0, 1024, "a cursor move costs under 1 KB: \(moves)")
    }

    /// auto: kitty where the terminal answers kitty's query, whatever TERM says; half blocks where
    /// nothing answers (within the 100 ms the query waits) and inside tmux (which is not asked).
    func testAutoDetectionAndItsFallbacks() throws {
        let kitty = try viewer([])
        XCTAssertTrue(kitty.read(timeout: 5) { String(decoding: $0, as: UTF8.self).contains("\u{1b}[c") }, "queried")
        kitty.send("\u{1b}_Gi=31;OK\u{1b}\\\u{1b}[?62;22c")
        XCTAssertTrue(kitty.read(timeout: 20) { !EscapeImages.kitty($0).isEmpty })
        // The environment says kitty; nothing answers (a plain xterm under a kitty-set KITTY_WINDOW_ID).
        let silent = try viewer([], environment: ["KITTY_WINDOW_ID": "1"])
        XCTAssertTrue(silent.read(timeout: 20) { String(decoding: $0, as: UTF8.self).contains("Legend") })
        XCTAssertTrue(silent.text.contains("▀"), "half blocks")
        XCTAssertFalse(silent.text.contains("\u{1b}_Ga=T"), "KITTY_WINDOW_ID said kitty, nothing answered: no images")
        // The answers, too late: swallowed, not taken for keys ('?' help, 'i' list, 'O' order, 'c' compare).
        let before = silent.output.count
        silent.send("\u{1b}_Gi=31;OK\u{1b}\\\u{1b}[6;20;10t\u{1b}[?62;4;c\u{1b}P?ic\u{1b}\\")
        silent.read(timeout: 1.5)
        let after = String(decoding: silent.output[before...], as: UTF8.self)
        for sign in ["Keys", "Images:", "least confident", "compare needs"] {
            XCTAssertFalse(after.contains(sign), "a late answer acted as keys: \(sign)")
        }
        silent.send("?")
        XCTAssertTrue(silent.read(timeout: 5) { String(decoding: $0[before...], as: UTF8.self).contains("Keys") },
                      "keys still work")
        let tmux = try viewer([], environment: ["TMUX": "/tmp/tmux-0/default,1,0"])
        XCTAssertTrue(tmux.read(timeout: 20) { String(decoding: $0, as: UTF8.self).contains("Legend") })
        XCTAssertFalse(tmux.text.contains("\u{1b}_Gi=31"), "inside tmux nothing is asked")
        XCTAssertTrue(tmux.text.contains("▀"))
    }

    /// A terminal the viewer refuses is sent nothing: no graphics queries before the message.
    func testARefusedTerminalIsNotQueried() throws {
        for term in ["dumb", "no-such-terminal"] {
            let refused = try viewer(["--graphics", "auto"], environment: ["TERM": term])
            XCTAssertTrue(refused.read(timeout: 20) { String(decoding: $0, as: UTF8.self).contains("Error:") },
                          refused.text.debugDescription)
            XCTAssertFalse(refused.text.contains("\u{1b}"), "\(term): \(refused.text.debugDescription)")
        }
    }

    /// Inside tmux with its passthrough on, kitty outside (tmux asks the outer terminal its name,
    /// and the test answers as kitty): kitty's images reach the outer terminal through tmux as
    /// virtual placements of the panes' cells, and the panes' cells are kitty's placeholders.
    func testKittyThroughTmuxPassthrough() throws {
        let tmux = "/usr/bin/tmux"
        guard FileManager.default.isExecutableFile(atPath: tmux) else { throw XCTSkip("tmux is not installed") }
        let socket = "segview-graphics-\(getpid())"
        let config = scratch.appendingPathComponent("tmux.conf")
        try "set -g allow-passthrough on\nset -g status off\nset -g default-terminal tmux-256color\n"
            .write(to: config, atomically: true, encoding: .utf8)
        defer { _ = try? TmuxSession.tmux(socket: socket, ["kill-server"]) }
        // segview starts once tmux knows the outer terminal's name (from the test's answer below).
        let command = "i=0; until tmux display -p '#{client_termtype}' | grep -q kitty || [ $i -ge 200 ]; "
            + "do sleep 0.05; i=$((i + 1)); done; exec '\(segviewBinary.path)' '\(image)' --model '\(model)'"
        let outer = try PseudoTerminal(["-L", socket, "-f", config.path, "new-session", command], executable: tmux,
                                       environment: ["TERM": "xterm-256color"])
        XCTAssertTrue(outer.read(timeout: 10) { String(decoding: $0, as: UTF8.self).contains("\u{1b}[>q") })
        outer.send("\u{1b}P>|kitty(0.35.2)\u{1b}\\")  // XTVERSION's answer
        XCTAssertTrue(outer.read(timeout: 20) { EscapeImages.kitty($0).count >= 2 },
                      "images through tmux; got:\n\(outer.text.debugDescription.suffix(600))")
        let images = Dictionary(EscapeImages.kitty(outer.output).map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        let photo = try XCTUnwrap(images[1]), masks = try XCTUnwrap(images[2])
        for (shown, source) in try corners(photo.pixels, width: photo.width, height: photo.height, of: PNG.read(image))
            + corners(masks.pixels, width: masks.width, height: masks.height, of: predictedMask()) {
            XCTAssertEqual(shown, source)
        }
        XCTAssertEqual(photo.control["U"], "1", "a virtual placement")
        let columns = try XCTUnwrap(Int(photo.control["c"] ?? "")), rows = try XCTUnwrap(Int(photo.control["r"] ?? ""))
        XCTAssertEqual([columns, rows], [(photo.width + 9) / 10, (photo.height + 19) / 20], "the pane's cells")

        // The panes as tmux holds them: every cell of each image is a placeholder in the image's id as
        // its colour, numbered by row and column, but for the cell each pane's cursor takes.
        let screen = TerminalScreen(capture: try TmuxSession.tmux(socket: socket, ["capture-pane", "-p", "-e"]),
                                    width: 0)
        var found: [Int: [(line: Int, row: Int, column: Int)]] = [:]
        for (y, line) in screen.rows.enumerated() {
            for cell in Self.placeholders(in: line) { found[cell.id, default: []].append((y, cell.row, cell.column)) }
        }
        for id in [1, 2] {
            let image = try XCTUnwrap(images[id])
            let columns = Int(image.control["c"] ?? "") ?? 0, rows = Int(image.control["r"] ?? "") ?? 0
            let all = Set((0..<rows).flatMap { row in (0..<columns).map { [row, $0] } })
            let cells = found[id] ?? [], top = cells.map(\.line).min() ?? 0
            XCTAssertTrue(cells.allSatisfy { $0.row == $0.line - top }, "image \(id): rows numbered from its top line")
            let shown = Set(cells.map { [$0.row, $0.column] })
            XCTAssertTrue(shown.isSubset(of: all), "image \(id): no cell outside its placement")
            XCTAssertGreaterThanOrEqual(shown.count, all.count - 1, "image \(id): every cell but the cursor's")
        }
    }

    /// The placeholder cells of a captured line (each mark of a character parsed as a cell of its
    /// own): the image id (the foreground's palette index) and the row and column their marks number.
    static func placeholders(in line: [TerminalScreen.Cell]) -> [(id: Int, row: Int, column: Int)] {
        let diacritics = KittyPlaceholder.diacritics
        func number(_ cell: TerminalScreen.Cell) -> Int? {
            cell.character.unicodeScalars.first.flatMap { diacritics.firstIndex(of: $0.value) }
        }
        return line.indices.compactMap { x in
            guard line[x].character == "\u{10EEEE}", x + 2 < line.count, case .indexed(let id) = line[x].fg,
                  let row = number(line[x + 1]), let column = number(line[x + 2]) else { return nil }
            return (id, row, column)
        }
    }

    /// The encoders alone, on a seeded random picture with runs: sixel within half a register step
    /// per channel, kitty exact over several chunks.
    func testEncodersRoundTrip() {
        var state: UInt64 = 20261206
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        let (width, height) = (61, 47)
        let pixels = (0..<width * height).map { i -> RGB in
            i % 7 < 3 ? RGB(200, 30, 90) : RGB(next(), next(), next())  // runs of one colour, then noise
        }
        let flat = pixels.flatMap { [$0.r, $0.g, $0.b] }
        let sixel = EscapeImages.sixel(Data(GraphicsEncoder.sixel(pixels: pixels, width: width, height: height).utf8))
        XCTAssertEqual(sixel.count, 1)
        XCTAssertEqual([sixel[0].width, sixel[0].height], [width, height])
        let worst = zip(sixel[0].pixels, flat).map { abs(Int($0) - Int($1)) }.max() ?? 999
        XCTAssertLessThanOrEqual(worst, 26, "half of the 51-level step of red and blue, and rounding")
        let kitty = GraphicsEncoder.kitty(id: 3, pixels: pixels, width: width, height: height)
        XCTAssertTrue(kitty.hasPrefix(GraphicsEncoder.deleteKitty(id: 3)), "the old image goes first")
        let decoded = EscapeImages.kitty(Data(kitty.utf8))
        XCTAssertEqual(decoded.count, 1)
        XCTAssertEqual(decoded[0].id, 3)
        XCTAssertEqual([decoded[0].width, decoded[0].height], [width, height])
        XCTAssertEqual(decoded[0].pixels, flat)
        XCTAssertGreaterThan(kitty.components(separatedBy: "\u{1b}_G").count - 1, 3, "sent in chunks")
    }

    /// A cursor move with sixel sends the cells the two crosses touch, not the pane: the old image
    /// with the patches painted over it is the new image. With iTerm2 it sends the cell the marker
    /// left, whole, or a space of its colour.
    func testCursorPatchesCarryExactlyWhatChanged() throws {
        var state: UInt64 = 6122026
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        let (width, height) = (95, 83)  // 10x5 cells of 10x20 pixels, the last ones partly covered
        let layer = (0..<width * height).map { _ in RGB(next(), next(), next()) }
        let old = GraphicsPlacement(pane: 0, column: 3, row: 2, width: width, height: height, cellWidth: 10,
                                    cellHeight: 20, pixels: layer, key: "layer", cursor: .init(x: 12, y: 15))
        var new = old
        new.cursor = .init(x: 80, y: 60)
        let sixelPatches = try XCTUnwrap(new.patches(since: old))
        XCTAssertEqual(sixelPatches.map { [$0.column, $0.row, $0.width, $0.height] }, [[3, 2, 20, 40], [10, 4, 20, 40]],
                       "the cells under each cross, in cells of the screen")
        let full = { (image: GraphicsPlacement) in
            EscapeImages.sixel(Data(GraphicsEncoder.encode(image, with: .sixel).utf8))[0]
        }
        var composite = full(old).pixels
        for patch in sixelPatches {
            let decoded = full(patch)
            XCTAssertTrue(decoded.transparent)
            XCTAssertEqual(decoded.painted.filter { $0 }.count, 31, "only the cross's pixels: 11 across, 21 down")
            for y in 0..<patch.height {
                for x in 0..<patch.width where decoded.painted[y * patch.width + x] {
                    let target = 3 * (((patch.row - 2) * 20 + y) * width + (patch.column - 3) * 10 + x)
                    let source = 3 * (y * patch.width + x)
                    composite[target..<target + 3] = decoded.pixels[source..<source + 3]
                }
            }
        }
        let expected = full(new).pixels
        let wrong = (0..<width * height).filter { composite[3 * $0..<3 * $0 + 3] != expected[3 * $0..<3 * $0 + 3] }
        XCTAssertEqual(wrong.map { [$0 % width, $0 / width] }, [], "pixels that differ from the new image's")
        // iTerm2's marker: the cell it left comes back whole and opaque, the partial last column too.
        let lefts = [(GraphicsPlacement.CellPoint(column: 1, row: 0), [10, 20]), (.init(column: 9, row: 4), [5, 3])]
        for (left, size) in lefts {
            var before = old, after = old
            (before.cursor, after.cursor) = (nil, nil)
            (before.marker, after.marker) = (left, .init(column: 5, row: 2))
            let restored = try XCTUnwrap(after.restoredCells(since: before))
            XCTAssertEqual(restored.map { [$0.column, $0.row, $0.width, $0.height] },
                           [[3 + left.column, 2 + left.row] + size])
            XCTAssertNil(restored[0].painted)
            let (x0, y0) = (left.column * 10, left.row * 20)
            let expected = (y0..<y0 + size[1]).flatMap { layer[($0 * width + x0)...].prefix(size[0]) }
            XCTAssertEqual(restored[0].pixels, expected)
            XCTAssertEqual(after.restoredCells(since: after), [], "a marker that stayed: nothing")
        }
        // A whole cell of one colour goes as a space of that colour; a part of a cell as a PNG.
        var flat = old
        (flat.cursor, flat.pixels) = (nil, [RGB](repeating: RGB(1, 2, 3), count: width * height))
        var cells = [GraphicsPlacement.CellPoint(column: 2, row: 1), .init(column: 9, row: 1)].map { marker in
            var shown = flat
            shown.marker = marker
            return flat.restoredCells(since: shown)?.first.map { GraphicsEncoder.encode($0, with: .iterm) } ?? ""
        }
        XCTAssertEqual(cells.removeFirst(), "\u{1b}[48;2;1;2;3m ")
        XCTAssertTrue(cells.removeFirst().hasPrefix("\u{1b}]1337;File=inline=1;"), "a 5x20 part of a cell")
        var near = old
        near.cursor = .init(x: 25, y: 15)
        XCTAssertEqual(near.patches(since: old)?.map { [$0.column, $0.width] }, [[3, 40]],
                       "crosses in touching cells: one patch")
        var moved = new
        moved.column += 1
        XCTAssertNil(moved.patches(since: old), "a pane that moved is sent whole")
        var changed = new
        changed.key = "another layer"
        XCTAssertNil(changed.patches(since: old), "new content is sent whole")
        // Any two cursors (edges and corners included) on panes of any size and cell size.
        for _ in 0..<300 {
            let cell = (Int(next() % 12) + 1, Int(next() % 24) + 1)
            let (w, h) = (Int(next() % 60) + 1, Int(next() % 60) + 1)
            let layer = (0..<w * h).map { _ in RGB(next(), next(), next()) }
            var before = GraphicsPlacement(pane: 1, column: 0, row: 0, width: w, height: h, cellWidth: cell.0,
                                           cellHeight: cell.1, pixels: layer, key: "layer",
                                           cursor: .init(x: Int(next()) % w, y: Int(next()) % h))
            if next() % 8 == 0 { before.cursor = nil }
            var after = before
            after.cursor = next() % 8 == 0 ? nil : .init(x: Int(next()) % w, y: Int(next()) % h)
            var screen = before.shownPixels
            for patch in try XCTUnwrap(after.patches(since: before)) {
                let painted = try XCTUnwrap(patch.painted)
                for y in 0..<patch.height {
                    for x in 0..<patch.width where painted[y * patch.width + x] {
                        let target = (patch.row * cell.1 + y) * w + patch.column * cell.0 + x
                        screen[target] = patch.pixels[y * patch.width + x]
                    }
                }
            }
            let cursors = [before.cursor, after.cursor].map { String(describing: $0) }
            XCTAssertEqual(screen, after.shownPixels, "\(w)x\(h), cells \(cell), cursor \(cursors)")
        }
    }

    /// Detection without a terminal: what is asked, and what each answer gives.
    func testDetectionRules() {
        var asked: [String] = []
        func detect(_ mode: GraphicsMode, _ environment: [String: String], cell: (Int, Int) = (0, 0),
                    answer: String) -> GraphicsSupport {
            GraphicsSupport.detect(mode, environment: environment, pixelCell: cell) { query in
                asked.append(query)
                return answer
            }
        }
        let kittyAnswer = "\u{1b}_Gi=31;OK\u{1b}\\\u{1b}[6;18;9t\u{1b}[?62;22c"
        XCTAssertEqual(detect(.auto, [:], answer: kittyAnswer),
                       GraphicsSupport(graphicsProtocol: .kitty, cellWidth: 9, cellHeight: 18))
        XCTAssertEqual(detect(.auto, [:], cell: (8, 16), answer: "\u{1b}[?62;4;22c"),
                       GraphicsSupport(graphicsProtocol: .sixel, cellWidth: 8, cellHeight: 16))
        let iTerm = detect(.auto, ["TERM_PROGRAM": "iTerm.app"], cell: (8, 16), answer: "\u{1b}[?62;22c")
        XCTAssertEqual(iTerm.graphicsProtocol, .iterm)
        XCTAssertNil(detect(.auto, ["TERM": "xterm-kitty"], cell: (8, 16), answer: "").graphicsProtocol, "TERM lied")
        XCTAssertNil(detect(.auto, [:], answer: "\u{1b}[?62;4c").graphicsProtocol, "sixel, but no cell size")
        asked = []
        XCTAssertEqual(detect(.auto, ["TMUX": "/tmp/t,1,0"], cell: (8, 16), answer: kittyAnswer), .halfBlocks)
        XCTAssertEqual(detect(.none, [:], cell: (8, 16), answer: kittyAnswer), .halfBlocks)
        XCTAssertEqual(detect(.kitty, [:], cell: (8, 16), answer: ""),
                       GraphicsSupport(graphicsProtocol: .kitty, cellWidth: 8, cellHeight: 16))
        XCTAssertEqual(asked, [], "tmux, none and a named protocol with a known cell size ask nothing")
        XCTAssertEqual(detect(.sixel, [:], answer: ""),
                       GraphicsSupport(graphicsProtocol: .sixel, cellWidth: 10, cellHeight: 20, cellSizeKnown: false),
                       "named: used without asking about it; an unanswered cell size is taken as 10x20")
        XCTAssertEqual(asked, ["\u{1b}[16t\u{1b}[c"])
    }

    /// Inside tmux: kitty through passthrough where it is on and kitty is named or outside; half
    /// blocks otherwise (tmux would keep the images) but for a named sixel; tmux is never asked.
    func testDetectionRulesInsideTmux() {
        func detect(_ mode: GraphicsMode, passthrough: Bool, outer: String) -> GraphicsSupport {
            let tmux = TmuxFacts(passthrough: passthrough, outerTerminal: outer)
            return GraphicsSupport.detect(mode, environment: ["TMUX": "/tmp/t,1,0", "TERM": "tmux-256color"],
                                          pixelCell: (9, 18), tmux: tmux) {
                XCTFail("asked \($0.debugDescription) through tmux")
                return ""
            }
        }
        let throughTmux = GraphicsSupport(graphicsProtocol: .kitty, cellWidth: 9, cellHeight: 18, throughTmux: true)
        XCTAssertEqual(detect(.auto, passthrough: true, outer: "xterm-kitty "), throughTmux)
        XCTAssertEqual(detect(.auto, passthrough: true, outer: "xterm-ghostty ghostty 1.1"), throughTmux)
        XCTAssertEqual(detect(.auto, passthrough: true, outer: "xterm-256color XTerm(390)"), .halfBlocks)
        XCTAssertEqual(detect(.kitty, passthrough: true, outer: "xterm-256color "), throughTmux, "named")
        XCTAssertEqual(detect(.auto, passthrough: false, outer: "xterm-kitty kitty(0.35.2)"), .halfBlocks)
        XCTAssertEqual(detect(.kitty, passthrough: false, outer: "xterm-kitty "), .halfBlocks, "tmux would keep it")
        XCTAssertEqual(detect(.iterm, passthrough: true, outer: "xterm-256color iTerm2 3.5"), .halfBlocks,
                       "tmux does not pass iTerm2's images")
        XCTAssertEqual(detect(.sixel, passthrough: false, outer: "foot "),
                       GraphicsSupport(graphicsProtocol: .sixel, cellWidth: 9, cellHeight: 18), "tmux 3.4 draws sixel")
        let unknown = GraphicsSupport.detect(.auto, environment: ["TMUX": "/tmp/t,1,0"], pixelCell: (9, 18)) { _ in "" }
        XCTAssertEqual(unknown, .halfBlocks, "tmux that cannot be asked")
        let (escape, end) = ("\u{1b}", "\u{1b}\\")
        XCTAssertEqual(GraphicsEncoder.tmuxPassthrough(escape + "_Ga=T;AA" + end + escape + "_Gm=0;BB" + end),
                       escape + "Ptmux;" + escape + escape + "_Ga=T;AA" + escape + end + end
                       + escape + "Ptmux;" + escape + escape + "_Gm=0;BB" + escape + end + end,
                       "one passthrough per escape string, its escapes doubled")
    }
}
