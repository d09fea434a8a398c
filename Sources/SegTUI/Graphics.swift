import Foundation
import SegEngine
import SegImage

/// How the image, mask and border panes are drawn: `--graphics auto|kitty|sixel|iterm|none`.
public enum GraphicsMode: String, CaseIterable, Sendable {
    case auto, kitty, sixel, iterm, none
}

/// The terminal graphics protocols the panes can be drawn with, as real pixels.
public enum GraphicsProtocol: String, Sendable {
    /// kitty's graphics protocol (kitty, WezTerm, Ghostty, Konsole): RGB, placed under the text.
    case kitty
    /// DEC sixel (xterm -ti vt340, foot, mlterm, WezTerm, Windows Terminal): paletted, painted into the cells.
    case sixel
    /// iTerm2's inline images (iTerm2, WezTerm): a PNG painted into the cells.
    case iterm
}

/// What the terminal can show, found before the screen opens: a protocol (nil: half blocks), the
/// size of a cell in pixels (or a guess: then a cursor move redraws whole panes, since patches of
/// cells would land beside the cells they mean), and whether the images go through tmux (kitty
/// only: sent through its passthrough, drawn by Unicode placeholder cells that tmux keeps as text).
public struct GraphicsSupport: Equatable, Sendable {
    public var graphicsProtocol: GraphicsProtocol?
    public var cellWidth: Int
    public var cellHeight: Int
    public var cellSizeKnown: Bool
    public var throughTmux: Bool

    public init(graphicsProtocol: GraphicsProtocol?, cellWidth: Int = 10, cellHeight: Int = 20,
                cellSizeKnown: Bool = true, throughTmux: Bool = false) {
        self.graphicsProtocol = graphicsProtocol
        (self.cellWidth, self.cellHeight) = (cellWidth, cellHeight)
        self.cellSizeKnown = cellSizeKnown
        self.throughTmux = throughTmux
    }

    public static let halfBlocks = GraphicsSupport(graphicsProtocol: nil)

    /// A kitty graphics query (a 1x1 image, answered "OK" by terminals that have the protocol), the
    /// cell size (`CSI 16 t`) and the primary device attributes, which every terminal answers, last.
    static let query = "\u{1b}_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\u{1b}\\\u{1b}[16t\u{1b}[c"

    /// The support `mode` asks for. `auto` queries the terminal (`ask` sends a query and returns
    /// what came back within its timeout); a protocol named explicitly is used without asking about
    /// it. `pixelCell` is the cell size from the window size's pixel fields (0 when unknown).
    /// Inside tmux (or screen) auto asks nothing: tmux keeps images from the outer terminal unless
    /// its passthrough is on (`tmux`: what tmux says), and only kitty's placeholders survive its
    /// redraws, so kitty is used, through tmux, where named or where kitty or Ghostty is outside.
    /// A named sixel is used in tmux too (tmux 3.4 draws sixel itself); iTerm2's images never
    /// get through tmux.
    public static func detect(_ mode: GraphicsMode, environment: [String: String], pixelCell: (Int, Int),
                              tmux: TmuxFacts? = nil, ask: (String) -> String) -> GraphicsSupport {
        let term = environment["TERM"] ?? ""
        let inTmux = environment["TMUX"] != nil || term.hasPrefix("tmux") || term.hasPrefix("screen")
        guard mode != .none else { return .halfBlocks }
        let known = (1...512).contains(pixelCell.0) && (1...512).contains(pixelCell.1) ? pixelCell : nil
        if inTmux && mode != .sixel {
            guard let tmux, tmux.passthrough, mode == .kitty || (mode == .auto && tmux.outerHasKittyPlaceholders)
            else { return .halfBlocks }
            let cell = known ?? (10, 20)  // kitty fits the image to its cells whatever the guess
            return GraphicsSupport(graphicsProtocol: .kitty, cellWidth: cell.0, cellHeight: cell.1,
                                   cellSizeKnown: known != nil, throughTmux: true)
        }
        if let explicit = GraphicsProtocol(rawValue: mode.rawValue) {
            let answered = known ?? parse(ask("\u{1b}[16t\u{1b}[c")).cell
            let cell = answered ?? (10, 20)
            return GraphicsSupport(graphicsProtocol: explicit, cellWidth: cell.0, cellHeight: cell.1,
                                   cellSizeKnown: answered != nil)
        }
        let answer = parse(ask(query))
        guard let cell = known ?? answer.cell else { return .halfBlocks }  // pixels need a known cell size
        let program = environment["TERM_PROGRAM"] ?? ""
        let found: GraphicsProtocol? = answer.kitty ? .kitty
            : ["iTerm.app", "WezTerm"].contains(program) ? .iterm
            : answer.sixel ? .sixel : nil
        return GraphicsSupport(graphicsProtocol: found, cellWidth: cell.0, cellHeight: cell.1)
    }

    /// What a terminal's answer to `query` says: the kitty reply, sixel among the device
    /// attributes (parameter 4), and the cell size (`CSI 6 ; height ; width t`).
    static func parse(_ answer: String) -> (kitty: Bool, sixel: Bool, cell: (Int, Int)?) {
        let kitty = answer.contains("\u{1b}_Gi=31;OK")
        var sixel = false
        if let start = answer.range(of: "\u{1b}[?"), let end = answer[start.upperBound...].firstIndex(of: "c") {
            sixel = answer[start.upperBound..<end].split(separator: ";").contains("4")
        }
        var cell: (Int, Int)?
        if let start = answer.range(of: "\u{1b}[6;"), let end = answer[start.upperBound...].firstIndex(of: "t") {
            let values = answer[start.upperBound..<end].split(separator: ";").compactMap { Int($0) }
            if values.count == 2, (1...512).contains(values[0]), (1...512).contains(values[1]) {
                cell = (values[1], values[0])
            }
        }
        return (kitty, sixel, cell)
    }
}

/// What tmux says about the pane the viewer runs in: whether escape sequences may pass through
/// to the outer terminal (`allow-passthrough`, tmux 3.3), and the outer terminal's names.
public struct TmuxFacts: Sendable {
    public var passthrough: Bool
    /// The client's TERM and the terminal's own name (XTVERSION), e.g. "xterm-kitty kitty(0.35.2)".
    public var outerTerminal: String

    public init(passthrough: Bool, outerTerminal: String) {
        (self.passthrough, self.outerTerminal) = (passthrough, outerTerminal)
    }

    /// Terminals that draw kitty's Unicode placeholders.
    var outerHasKittyPlaceholders: Bool {
        let name = outerTerminal.lowercased()
        return name.contains("kitty") || name.contains("ghostty")
    }

    /// Asks the tmux the viewer runs in; nil where tmux cannot be run.
    public static func query() -> TmuxFacts? {
        func tmux(_ arguments: [String]) -> String? {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["tmux"] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return nil }
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return nil }
            return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // Before tmux 3.3 the option does not exist: no passthrough.
        let passthrough = tmux(["show-options", "-Apv", "allow-passthrough"]).map { ["on", "all"].contains($0) }
        guard let outer = tmux(["display-message", "-p", "#{client_termname} #{client_termtype}"]) else { return nil }
        return TmuxFacts(passthrough: passthrough ?? false, outerTerminal: outer)
    }
}

/// One pane drawn as pixels: where (cells), how big (pixels), at what cell size, and what; `key`
/// names the content, so that an unchanged pane is not sent again. `cursor` (sixel) is drawn into
/// the pixels as they are sent, so that a move changes the overlay, not the layer. `marker`
/// (iTerm2) is the pane's cell where the cursor stands as text: the text cuts a hole in the
/// painted image, and a move sends back only the cell it left. `painted` (sixel patches) marks the
/// pixels to paint; the others keep what the screen shows.
public struct GraphicsPlacement: Equatable {
    public var pane: Int
    public var column: Int, row: Int
    public var width: Int, height: Int
    public var cellWidth: Int, cellHeight: Int
    public var pixels: [RGB]
    public var key: String
    public var cursor: PixelPoint?
    public var marker: CellPoint?
    public var painted: [Bool]?

    /// A pixel of the pane.
    public struct PixelPoint: Equatable, Sendable {
        public var x: Int, y: Int
    }

    /// A cell of the pane, counted from its top-left cell.
    public struct CellPoint: Equatable, Sendable {
        public var column: Int, row: Int
    }

    /// The pixels as sent: the layer with the cursor, a cross a cell wide and tall and one pixel
    /// thick, in black or white against the pixel under it.
    var shownPixels: [RGB] { cursor == nil ? pixels : shown(left: 0, top: 0, right: width, bottom: height) }

    /// The shown pixels of the rectangle `left..<right` x `top..<bottom`.
    private func shown(left: Int, top: Int, right: Int, bottom: Int) -> [RGB] {
        var part: [RGB] = []
        part.reserveCapacity((right - left) * (bottom - top))
        for y in top..<bottom { part += pixels[(y * width + left)..<(y * width + right)] }
        guard let cursor else { return part }
        let contrast = pixels[cursor.y * width + cursor.x].luminance > 128 ? RGB(0, 0, 0) : RGB(255, 255, 255)
        let partWidth = right - left
        func clipped(_ from: Int, _ to: Int, _ low: Int, _ high: Int) -> Range<Int> {
            max(low, from)..<max(low, from, min(high, to))
        }
        let across = clipped(cursor.x - cellWidth / 2, cursor.x + cellWidth / 2 + 1, left, right)
        let down = clipped(cursor.y - cellHeight / 2, cursor.y + cellHeight / 2 + 1, top, bottom)
        if (top..<bottom).contains(cursor.y) {
            for x in across { part[(cursor.y - top) * partWidth + x - left] = contrast }
        }
        if (left..<right).contains(cursor.x) {
            for y in down { part[(y - top) * partWidth + cursor.x - left] = contrast }
        }
        return part
    }

    /// The cells the cursor's cross covers.
    private func cells(of cursor: PixelPoint) -> CellBox {
        CellBox(left: max(0, cursor.x - cellWidth / 2) / cellWidth, top: max(0, cursor.y - cellHeight / 2) / cellHeight,
                right: min(width - 1, cursor.x + cellWidth / 2) / cellWidth,
                bottom: min(height - 1, cursor.y + cellHeight / 2) / cellHeight)
    }

    /// What a cursor move since `shown` (the same layer at the same place) changes, as sixel's
    /// patches: the cells under the old and the new cross, one patch where they touch, each
    /// painting only the pixels that changed. Nil where anything else changed.
    func patches(since shown: GraphicsPlacement) -> [GraphicsPlacement]? {
        guard sameLayerAndPlace(as: shown) else { return nil }
        var boxes: [CellBox] = []
        for box in [shown.cursor, cursor].compactMap({ $0.map(cells) }) {
            if let near = boxes.firstIndex(where: { $0.touches(box) }) { boxes[near] = boxes[near].union(box) }
            else { boxes.append(box) }
        }
        return boxes.map { patch(of: $0, over: shown) }
    }

    /// What a text marker's move since `shown` (the same layer at the same place) changes, as
    /// iTerm2's patches: the cell it left, whole (the text there erased the image's cell).
    /// Nil where anything else changed.
    func restoredCells(since shown: GraphicsPlacement) -> [GraphicsPlacement]? {
        guard sameLayerAndPlace(as: shown) else { return nil }
        guard let left = shown.marker, left != marker else { return [] }
        return [patch(of: CellBox(left: left.column, top: left.row, right: left.column, bottom: left.row), over: nil)]
    }

    private func sameLayerAndPlace(as shown: GraphicsPlacement) -> Bool {
        shown.key == key && [shown.column, shown.row, shown.width, shown.height, shown.cellWidth, shown.cellHeight]
            == [column, row, width, height, cellWidth, cellHeight]
    }

    /// The shown pixels of `box`'s cells as a placement of their own; over `shown`, a transparent
    /// one that paints only the pixels that differ from it.
    private func patch(of box: CellBox, over shown: GraphicsPlacement?) -> GraphicsPlacement {
        let left = box.left * cellWidth, right = min(width, (box.right + 1) * cellWidth)
        let top = box.top * cellHeight, bottom = min(height, (box.bottom + 1) * cellHeight)
        let part = self.shown(left: left, top: top, right: right, bottom: bottom)
        let before = shown?.shown(left: left, top: top, right: right, bottom: bottom)
        return GraphicsPlacement(pane: pane, column: column + box.left, row: row + box.top, width: right - left,
                                 height: bottom - top, cellWidth: cellWidth, cellHeight: cellHeight,
                                 pixels: part, key: key, painted: before.map { zip(part, $0).map { $0 != $1 } })
    }
}

/// A rectangle of cells, both ends included.
struct CellBox {
    var left: Int, top: Int, right: Int, bottom: Int

    /// Whether the boxes overlap or touch, diagonals included.
    func touches(_ other: CellBox) -> Bool {
        left <= other.right + 1 && other.left <= right + 1 && top <= other.bottom + 1 && other.top <= bottom + 1
    }

    func union(_ other: CellBox) -> CellBox {
        CellBox(left: min(left, other.left), top: min(top, other.top), right: max(right, other.right),
                bottom: max(bottom, other.bottom))
    }
}

/// The escape sequences of each protocol, as pure functions of the pixels.
public enum GraphicsEncoder {
    /// A pane's image in `graphicsProtocol`, to be written with the cursor at its top-left cell
    /// (kitty's id is the pane's number from 1, so that its next image replaces it).
    /// With `placeholders`, kitty's image gets a virtual placement of the pane's cells instead.
    public static func encode(_ image: GraphicsPlacement, with graphicsProtocol: GraphicsProtocol?,
                              placeholders: Bool = false) -> String {
        switch graphicsProtocol {
        case .kitty:
            let cells = placeholders ? (columns: (image.width + image.cellWidth - 1) / image.cellWidth,
                                        rows: (image.height + image.cellHeight - 1) / image.cellHeight) : nil
            return kitty(id: image.pane + 1, pixels: image.shownPixels, width: image.width, height: image.height,
                         cells: cells)
        case .sixel:
            return sixel(pixels: image.shownPixels, width: image.width, height: image.height, painted: image.painted)
        case .iterm:
            let pixels = image.shownPixels
            // A whole cell of one colour (inside a mask's region) is a coloured space: the same pixels in 20 bytes.
            if image.width == image.cellWidth, image.height == image.cellHeight, let first = pixels.first,
               pixels.allSatisfy({ $0 == first }) {
                return "\u{1b}[48;2;\(first.r);\(first.g);\(first.b)m "
            }
            let picture = RGBImage(width: image.width, height: image.height, pixels: RGB.bytes(pixels))
            // Panes are encoded fast; a cursor's patch (a few cells) is small enough to compress fully.
            let patch = image.width * image.height <= 16 * image.cellWidth * image.cellHeight
            guard let png = try? PNG.encode(picture, fast: !patch) else { return "" }
            return iterm(png: png, width: image.width, height: image.height)
        case nil: return ""
        }
    }

    /// A frame's images, each encoded as `encode` does, on up to `threads` threads at once (the
    /// panes are independent, and a photo's PNG or sixel is most of a frame's time).
    public static func encode(_ images: [GraphicsPlacement], with graphicsProtocol: GraphicsProtocol?,
                              placeholders: Bool = false, threads: Int) -> [String] {
        var encoded = [String](repeating: "", count: images.count)
        encoded.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(images.count, threads: threads) {
                out[$0] = encode(images[$0], with: graphicsProtocol, placeholders: placeholders)
            }
        }
        return encoded
    }

    /// Transmits and places an RGB image at the cursor under the text (z -1, so the cursor marker
    /// and overlays drawn as text stay on top), replacing any earlier image with this id, in
    /// chunks of 4096 base64 bytes; `q=2` keeps the terminal from answering. With `cells`, the
    /// placement is virtual, that many cells, drawn where placeholder cells name the image.
    public static func kitty(id: Int, pixels: [RGB], width: Int, height: Int,
                             cells: (columns: Int, rows: Int)? = nil) -> String {
        let bytes = Data(RGB.bytes(pixels))
        var out = deleteKitty(id: id)
        let placement = cells.map { "U=1,c=\($0.columns),r=\($0.rows)" } ?? "C=1,z=-1"
        // 3072 bytes a chunk: 4096 in base64, each chunk encoded on its own (no padding inside).
        for start in stride(from: 0, to: max(1, bytes.count), by: 3072) {
            let end = min(bytes.count, start + 3072)
            let more = end < bytes.count ? 1 : 0
            // q=2 on every chunk: some terminals take it from the last one and would answer otherwise.
            let control = (start == 0 ? "a=T,f=24,i=\(id),s=\(width),v=\(height),\(placement)," : "") + "q=2,m=\(more)"
            out += "\u{1b}_G\(control);\(bytes[start..<end].base64EncodedString())\u{1b}\\"
        }
        return out
    }

    /// `sequence` (escape strings, each ended by ST) wrapped for tmux to pass to the outer terminal,
    /// their escapes doubled; one passthrough per string keeps each within tmux's input buffer.
    public static func tmuxPassthrough(_ sequence: String) -> String {
        sequence.components(separatedBy: "\u{1b}\\").filter { !$0.isEmpty }.map {
            "\u{1b}Ptmux;" + ($0 + "\u{1b}\\").replacingOccurrences(of: "\u{1b}", with: "\u{1b}\u{1b}") + "\u{1b}\\"
        }.joined()
    }

    /// Deletes the image with `id` and frees its data (nil: every image this program placed).
    public static func deleteKitty(id: Int?) -> String {
        id.map { "\u{1b}_Ga=d,d=I,i=\($0),q=2\u{1b}\\" } ?? "\u{1b}_Ga=d,d=A,q=2\u{1b}\\"
    }

    /// A sixel image: colours matched to 252 registers (6 red, 7 green, 6 blue levels), defined
    /// in percent, six pixel rows per band, runs of one sixel compressed with `!`. With `painted`,
    /// only the marked pixels are drawn (background mode 1: the rest keep what the screen shows).
    public static func sixel(pixels: [RGB], width: Int, height: Int, painted: [Bool]? = nil) -> String {
        let levels = (r: 6, g: 7, b: 6), count = 6 * 7 * 6
        func level(_ value: UInt8, _ steps: Int) -> Int { (Int(value) * (steps - 1) + 127) / 255 }
        let registers = pixels.indices.map { index -> Int in
            if let painted, !painted[index] { return -1 }
            let pixel = pixels[index]
            return level(pixel.r, levels.r) * levels.g * levels.b + level(pixel.g, levels.g) * levels.b
                + level(pixel.b, levels.b)
        }
        var out = Array("\u{1b}P\(painted == nil ? "" : "0;1;0")q\"1;1;\(width);\(height)".utf8)
        func append(_ text: String) { out.append(contentsOf: text.utf8) }
        var used = [Bool](repeating: false, count: count)
        for register in registers where register >= 0 { used[register] = true }
        for register in 0..<count where used[register] {
            let (r, rest) = register.quotientAndRemainder(dividingBy: levels.g * levels.b)
            let (g, b) = rest.quotientAndRemainder(dividingBy: levels.b)
            func percent(_ value: Int, _ steps: Int) -> Int { (value * 100 + (steps - 1) / 2) / (steps - 1) }
            append("#\(register);2;\(percent(r, levels.r));\(percent(g, levels.g));\(percent(b, levels.b))")
        }
        // Per band: each register's sixels (bit n: the band's row n has that colour) along the row.
        var bits = [UInt8](repeating: 0, count: count * width)
        var inBand = [Bool](repeating: false, count: count)
        for top in stride(from: 0, to: height, by: 6) {
            var present: [Int] = []
            for y in top..<min(height, top + 6) {
                for x in 0..<width {
                    let register = registers[y * width + x]
                    guard register >= 0 else { continue }
                    if !inBand[register] { inBand[register] = true; present.append(register) }
                    bits[register * width + x] |= 1 << (y - top)
                }
            }
            if present.isEmpty { out.append(UInt8(ascii: "-")) }  // a band left as it is, in a patch
            for (index, register) in present.sorted().enumerated() {
                append("#\(register)")
                let row = register * width
                var x = 0
                while x < width {
                    var run = 1
                    while x + run < width && bits[row + x + run] == bits[row + x] { run += 1 }
                    let sixel = 63 + bits[row + x]
                    if run > 3 { append("!\(run)"); out.append(sixel) }
                    else { out.append(contentsOf: repeatElement(sixel, count: run)) }
                    x += run
                }
                for x in 0..<width { bits[row + x] = 0 }
                inBand[register] = false
                out.append(index == present.count - 1 ? UInt8(ascii: "-") : UInt8(ascii: "$"))
            }
        }
        return String(decoding: out, as: UTF8.self) + "\u{1b}\\"
    }

    /// iTerm2's inline image: a PNG shown at `width` x `height` pixels from the cursor.
    public static func iterm(png: Data, width: Int, height: Int) -> String {
        "\u{1b}]1337;File=inline=1;size=\(png.count);width=\(width)px;height=\(height)px;preserveAspectRatio=0:"
            + png.base64EncodedString() + "\u{07}"
    }
}
