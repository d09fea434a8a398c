import Foundation
import SegEngine
import TermShim

/// The terminal through ncursesw: opening and restoring it, choosing the colour mode, drawing a
/// `CellGrid` by changing only the cells that differ from the last frame, and reading keys.
public final class Terminal {
    public enum Key: Equatable {
        case character(Character)
        case up, down, left, right, shiftLeft, shiftRight, shiftUp, shiftDown, backTab, resize
        case mouse(Mouse)
    }

    /// A mouse event at a cell of the screen.
    public struct Mouse: Equatable, Sendable {
        public enum Action: Sendable { case press, wheelUp, wheelDown }
        public var row: Int, col: Int, action: Action

        public init(row: Int, col: Int, action: Action) {
            (self.row, self.col, self.action) = (row, col, action)
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let mode: ColorMode
    /// Panes drawn as pixels with this protocol (nil: half blocks in the cells).
    public var graphics: GraphicsProtocol?
    /// kitty's images sent through tmux's passthrough, as virtual placements its placeholder cells show.
    public var graphicsThroughTmux = false
    /// The image each pane shows: its key and where it is.
    private var shownImages: [Int: GraphicsPlacement] = [:]
    private var previous: CellGrid?
    private var pairs: [Int64: Int32] = [:]
    private var open = false
    private let codes: [Int32: Key]
    private let mouseCode: Int32
    private let utf8: Bool

    /// What terminfo says of `$TERM`: its colours and whether it takes direct (24-bit) colour. A
    /// terminal the viewer cannot draw on is refused here, so the caller can ask before it sends the
    /// terminal anything (graphics queries, the screen).
    public static func capabilities() throws -> (colors: Int32, direct: Int32) {
        let term = ProcessInfo.processInfo.environment["TERM"] ?? ""
        var colors: Int32 = 0, direct: Int32 = 0
        guard !term.isEmpty, term != "dumb", seg_term_probe(nil, &colors, &direct) == 0 else {
            throw Failure(description: term.isEmpty || term == "dumb"
                ? "TERM is \(term.isEmpty ? "not set" : "'dumb'"): the viewer needs a terminal that can move the "
                    + "cursor; use `segview predict` to write files"
                : "no terminfo entry for TERM='\(term)'; try TERM=xterm-256color")
        }
        guard colors >= 8 else {
            throw Failure(description: "TERM='\(term)' has no colours (terminfo says \(colors)); the viewer needs 8 or "
                          + "more: set TERM to your terminal's real type (e.g. xterm-256color) or use "
                          + "`segview predict`")
        }
        return (colors, direct)
    }

    /// Why the colours asked for (`--colors`, or COLORTERM) are not the ones drawn, when they are not.
    public private(set) var colorFallback: String?

    /// Opens the screen of a terminal with `capabilities` (what `capabilities()` found).
    /// `requested` overrides the colour mode the terminal advertises; `mouse` asks for mouse reports
    /// (which take text selection from the terminal: most give it back with Shift).
    public init(_ capabilities: (colors: Int32, direct: Int32), requested: ColorMode?, mouse: Bool = true) throws {
        setlocale(LC_ALL, "")
        utf8 = String(cString: nl_langinfo(nl_item(CODESET))) == "UTF-8"
        let term = ProcessInfo.processInfo.environment["TERM"] ?? ""
        let (colors, direct) = capabilities
        let colorTerm = ProcessInfo.processInfo.environment["COLORTERM"] ?? ""
        let advertised: ColorMode = colors >= 256 ? .palette256 : colors >= 16 ? .ansi16 : .ansi8
        var mode: ColorMode
        if let requested { mode = requested }
        else if direct != 0 || ["truecolor", "24bit"].contains(colorTerm) { mode = .truecolor }
        else { mode = advertised }
        // Colours past $TERM's entry (direct colour, or a --colors its terminfo does not have) need
        // an entry that says so: compile a small one that extends $TERM with them.
        var typeName: String? = nil
        if mode == .truecolor ? direct == 0 : mode.colorCount > colors {
            typeName = Self.installColorEntry(base: term, mode: mode)
            if typeName == nil {
                let asked = requested.map { "--colors \($0.rawValue)" } ?? "COLORTERM=\(colorTerm)"
                colorFallback = "\(asked): TERM='\(term)' has \(advertised.label) and `tic` (ncurses-bin) could not "
                    + "add \(mode.label); \(advertised.label) instead"
                mode = advertised
            }
        }
        self.mode = mode
        guard seg_term_open(typeName) == 0 else { throw Failure(description: "cannot open the terminal (TERM='\(term)')") }
        open = true
        seg_term_catch_signals()
        if mouse { _ = seg_term_enable_mouse() }
        mouseCode = seg_term_key_code("mouse")
        var map: [Int32: Key] = [:]
        for (name, key) in [("up", Key.up), ("down", .down), ("left", .left), ("right", .right), ("resize", .resize),
                            ("btab", .backTab), ("sleft", .shiftLeft), ("sright", .shiftRight), ("sr", .shiftUp),
                            ("sf", .shiftDown),
                            // Where terminfo names the key (tmux-256color: kbs=^?), ncurses sends its code.
                            ("backspace", .character("\u{7f}")), ("enter", .character("\r"))] {
            map[seg_term_key_code(name)] = key
        }
        codes = map
    }

    /// A screen that writes to `path` instead of the terminal, for measuring the bytes frames cost.
    public init(recordingTo path: String, term: String, rows: Int, cols: Int, mode: ColorMode) throws {
        setlocale(LC_ALL, "")
        utf8 = String(cString: nl_langinfo(nl_item(CODESET))) == "UTF-8"
        self.mode = mode
        let typeName = mode == .truecolor ? Self.installColorEntry(base: term, mode: mode) : term
        guard let typeName, seg_term_open_file(typeName, path, Int32(rows), Int32(cols)) == 0 else {
            throw Failure(description: "cannot open a \(term) screen on \(path)")
        }
        open = true
        codes = [:]
        mouseCode = -1
    }

    deinit { close() }

    /// Whether `▀` can be drawn (a UTF-8 locale); otherwise each cell shows one pixel as a space.
    public var halfBlocks: Bool { utf8 }

    public func close() {
        guard open else { return }
        if graphics == .kitty { writeRaw(toOuterTerminal(GraphicsEncoder.deleteKitty(id: nil))) }
        seg_term_close()
        open = false
    }

    public var size: (rows: Int, cols: Int) {
        var rows: Int32 = 0, cols: Int32 = 0
        seg_term_size(&rows, &cols)
        return (Int(rows), Int(cols))
    }

    /// The signal (SIGINT, SIGTERM, SIGHUP) that asked us to stop, or 0.
    public var signalReceived: Int32 { seg_term_signal_received() }

    /// Draws the cells that changed since the last frame (everything after a resize or a pair reset),
    /// then the images whose content changed. Returns the number of cells drawn.
    @discardableResult
    public func draw(_ grid: CellGrid, images: [GraphicsPlacement] = []) -> Int {
        var removal = ""
        if previous?.rows != grid.rows || previous?.cols != grid.cols {
            // Every cell written again, from a cleared screen: after a burst of resizes the terminal
            // (tmux) may not hold what ncurses believes it does, and a frame left half drawn stays so.
            seg_term_clear_all()
            previous = nil
            removal = forgetImages()
        } else if let graphics {
            // Images no longer wanted, or wanted elsewhere or at another size.
            func place(_ image: GraphicsPlacement) -> [Int] { [image.column, image.row, image.width, image.height] }
            let wanted = Dictionary(images.map { ($0.pane, $0) }, uniquingKeysWith: { first, _ in first })
            let gone = shownImages.filter { pane, shown in wanted[pane].map(place) != place(shown) }
            if graphics == .kitty {
                for pane in gone.keys { removal += GraphicsEncoder.deleteKitty(id: pane + 1) }
                for pane in gone.keys { shownImages[pane] = nil }
            } else if !gone.isEmpty {
                // Painted images leave their pixels behind: every cell is written again, every image sent.
                seg_term_clear_all()
                previous = nil
                removal = forgetImages()
            }
        }
        writeRaw(toOuterTerminal(removal))
        let drawn = drawCells(grid)
        // What each image needs (nothing, patches for a cursor move, or the whole image), then all of
        // it encoded at once. iTerm2's marker is written over the pixels after them (see Renderer).
        enum Write { case image(Int), marker(column: Int, row: Int) }
        var parts: [GraphicsPlacement] = [], writes: [Write] = []
        for image in images {
            let shown = shownImages[image.pane]
            if let shown, shown.key == image.key, shown.cursor == image.cursor, shown.marker == image.marker {
                continue
            }
            shownImages[image.pane] = image
            // kitty replaces an image by id; the painting protocols send only what changed, where little did.
            let patches = graphicsThroughTmux ? nil
                : graphics == .sixel ? shown.flatMap { image.patches(since: $0) }
                : graphics == .iterm ? shown.flatMap { image.restoredCells(since: $0) } : nil
            for part in patches ?? [image] {
                writes.append(.image(parts.count))
                parts.append(part)
            }
            if let marker = image.marker {
                writes.append(.marker(column: image.column + marker.column, row: image.row + marker.row))
            }
        }
        let encoded = GraphicsEncoder.encode(parts, with: graphics, placeholders: graphicsThroughTmux,
                                             threads: Parallel.cores)
        func at(_ column: Int, _ row: Int, _ text: String) -> String {
            "\u{1b}7\u{1b}[\(row + 1);\(column + 1)H" + text + "\u{1b}8"
        }
        var out = ""
        for write in writes {
            switch write {
            case .image(let index) where graphicsThroughTmux:  // placed by its placeholder cells
                out += toOuterTerminal(encoded[index])
            case .image(let index):
                out += at(parts[index].column, parts[index].row, encoded[index])
            case .marker(let column, let row):
                out += at(column, row, Cell.cursorMarkerEscape)
            }
        }
        writeRaw(out)
        return drawn
    }

    /// Forgets the images on screen (the screen is about to be cleared); kitty's are deleted.
    private func forgetImages() -> String {
        let removal = graphics == .kitty && !shownImages.isEmpty ? GraphicsEncoder.deleteKitty(id: nil) : ""
        shownImages = [:]
        return removal
    }

    private func toOuterTerminal(_ sequence: String) -> String {
        graphicsThroughTmux && !sequence.isEmpty ? GraphicsEncoder.tmuxPassthrough(sequence) : sequence
    }

    private func writeRaw(_ text: String) {
        guard !text.isEmpty else { return }
        var bytes = Array(text.utf8)
        seg_term_write_raw(&bytes, bytes.count)
    }

    /// What the terminal answers to `query` within 100 ms (nothing from one that does not answer).
    /// Only before the screen opens.
    public static func ask(_ query: String) -> String {
        var answer = [CChar](repeating: 0, count: 1024)
        guard seg_term_query(query, &answer, Int32(answer.count), 100) > 0 else { return "" }
        return String(cString: answer)
    }

    /// A cell's size in pixels from the window size, (0, 0) when the terminal does not fill it in.
    public static var pixelCellSize: (Int, Int) {
        var width: Int32 = 0, height: Int32 = 0
        seg_term_pixel_size(&width, &height)
        return (Int(width), Int(height))
    }

    private func drawCells(_ grid: CellGrid, afterReset: Bool = false) -> Int {
        var drawn = 0
        for y in 0..<grid.rows {
            for x in 0..<grid.cols {
                let cell = grid[y, x]
                if let previous, previous[y, x] == cell { continue }
                if cell.glyph == Cell.continuation { continue }  // the wide character before it drew it
                // A pair that fails again after a reset is no shortage: the cell takes the default pair.
                guard let pair = pair(cell.fg, cell.bg) ?? (afterReset ? 0 : nil) else {
                    // Out of colour pairs (long sessions in direct colour): start over and repaint.
                    seg_term_reset_pairs()
                    pairs.removeAll()
                    previous = nil
                    if graphics != .kitty { shownImages = [:] }  // repainted cells cover painted images
                    return drawCells(grid, afterReset: true)
                }
                seg_term_cell(Int32(y), Int32(x), cell.glyph, cell.marks.0, cell.marks.1, pair, cell.bold ? 1 : 0)
                drawn += 1
            }
        }
        seg_term_refresh()
        previous = grid
        return drawn
    }

    private func pair(_ fg: Int32, _ bg: Int32) -> Int32? {
        let key = Int64(fg) << 32 | Int64(UInt32(bitPattern: bg))
        if let known = pairs[key] { return known }
        let pair = seg_term_pair(fg, bg)
        guard pair >= 0 else { return pairs.isEmpty ? 0 : nil }
        pairs[key] = pair
        return pair
    }

    /// Whether the terminal went away (its input ended or hung up) without a signal saying so.
    public private(set) var gone = false

    /// A key read after ESC that was not part of a sequence: the next `key` returns it.
    private var pendingKey: Key?

    /// The next key, or nil after `timeout` milliseconds (or once the terminal is `gone`).
    public func key(timeout: Int) -> Key? {
        if let pendingKey {
            self.pendingKey = nil
            return pendingKey
        }
        var function: Int32 = 0
        let code = seg_term_key(Int32(timeout), &function)
        if code == -2 { gone = true }
        guard code >= 0 else { return nil }
        if function != 0 && code == mouseCode {
            var row: Int32 = 0, col: Int32 = 0
            let action: Mouse.Action
            switch seg_term_mouse(&row, &col) {
            case 1: action = .press
            case 4: action = .wheelUp
            case 5: action = .wheelDown
            default: return nil
            }
            return .mouse(Mouse(row: Int(row), col: Int(col), action: action))
        }
        if function != 0 { return codes[code] }
        guard let scalar = Unicode.Scalar(UInt32(code)) else { return nil }
        if scalar == "\u{1b}" { return escape() }
        return .character(Character(scalar))
    }

    /// After ESC: the Esc key (with the key that came right after it, if any), or a sequence
    /// ncurses does not know: an SGR mouse report, or something swallowed whole so that its
    /// characters do not act as keys (a late answer to the graphics query: APC, DCS, a CSI report).
    private func escape() -> Key? {
        func next(waiting milliseconds: Int32 = 0) -> UInt32? {
            var function: Int32 = 0
            let code = seg_term_key(milliseconds, &function)
            return code >= 0 && function == 0 ? UInt32(code) : nil
        }
        guard let introducer = next(), let scalar = Unicode.Scalar(introducer) else {
            return .character("\u{1b}")
        }
        switch introducer {
        case 0x5B:  // CSI: parameters up to a final byte
            var parameters = ""
            // A report split between reads (over ssh) is waited for as ncurses waits after ESC.
            while let byte = next(waiting: 25), let character = Unicode.Scalar(byte) {
                guard !(0x40...0x7E).contains(byte) else {
                    return Self.sgrMouse(parameters, final: character)
                }
                parameters.unicodeScalars.append(character)
            }
        case 0x4F:  // SS3: keypad Enter is ESC O M where terminfo names no kent (tmux-256color, screen)
            guard let final = next(waiting: 25) else {
                pendingKey = .character("O")  // Esc, then O
                return .character("\u{1b}")
            }
            if final == 0x4D { return .character("\r") }
        case 0x5F, 0x50, 0x5D:  // APC, DCS, OSC: up to ST (ESC \) or BEL
            var previous: UInt32 = 0
            while let byte = next(), !(byte == 0x07 || (previous == 0x1B && byte == 0x5C)) { previous = byte }
        default:
            // Esc and then a key, sent together (or Alt and a key): both count.
            pendingKey = .character(Character(scalar))
            return .character("\u{1b}")
        }
        return nil
    }

    /// An SGR mouse report (`ESC [ < button ; column ; row M`, `m` for a release), which the viewer
    /// asks for where ncurses itself reads only X10 reports (see seg_term_enable_mouse).
    static func sgrMouse(_ parameters: String, final: Unicode.Scalar) -> Key? {
        guard final == "M", parameters.first == "<" else { return nil }
        let fields = parameters.dropFirst().split(separator: ";").compactMap { Int($0) }
        guard fields.count == 3, fields[1] >= 1, fields[2] >= 1 else { return nil }
        let action: Mouse.Action
        // Shift, Meta and Control (4, 8, 16) do not change what a press does; motion (32) is not a press.
        switch fields[0] & ~(4 | 8 | 16) {
        case 0: action = .press
        case 64: action = .wheelUp
        case 65: action = .wheelDown
        default: return nil
        }
        return .mouse(Mouse(row: fields[2] - 1, col: fields[1] - 1, action: action))
    }

    /// Compiles (once per run) a terminfo entry `segview-MODE-TERM` = $TERM + the colours of `mode`, and
    /// points ncurses at it: direct colour with semicolon SGRs (the colon form of xterm-direct is
    /// not understood everywhere), or xterm's indexed colours (30-37, 90-97, 38;5;N). Returns its
    /// name, or nil if `tic` is not available.
    static func installColorEntry(base: String, mode: ColorMode) -> String? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("segview-terminfo-\(getuid())")
        // Named after $TERM too: two viewers on different terminals must not replace each other's entry.
        let nameable = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        let name = "segview-\(mode == .truecolor ? "direct" : mode.rawValue)-\(String(base.filter(nameable.contains)))"
        let colours = mode == .truecolor ? """
            \tRGB, colors#0x1000000, pairs#0x10000,
            \tsetaf=\\E[%?%p1%{8}%<%t3%p1%d%e38;2;%p1%{65536}%/%d;%p1%{256}%/%{255}%&%d;%p1%{255}%&%d%;m,
            \tsetab=\\E[%?%p1%{8}%<%t4%p1%d%e48;2;%p1%{65536}%/%d;%p1%{256}%/%{255}%&%d;%p1%{255}%&%d%;m,
            """ : """
            \tcolors#\(mode.colorCount), pairs#0x10000,
            \tsetaf=\\E[%?%p1%{8}%<%t3%p1%d%e%p1%{16}%<%t9%p1%{8}%-%d%e38;5;%p1%d%;m,
            \tsetab=\\E[%?%p1%{8}%<%t4%p1%d%e%p1%{16}%<%t10%p1%{8}%-%d%e48;5;%p1%d%;m,
            """
        let source = """
            \(name)|\(base) with \(mode.label),
            \(colours)
            \tinitc@, ccc@, oc@, use=\(base),

            """
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let file = directory.appendingPathComponent("\(name).src")
            try source.write(to: file, atomically: true, encoding: .utf8)
            let tic = Process()
            tic.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            tic.arguments = ["tic", "-x", "-o", directory.path, file.path]
            tic.standardOutput = FileHandle.nullDevice
            tic.standardError = FileHandle.nullDevice
            try tic.run()
            tic.waitUntilExit()
            guard tic.terminationStatus == 0 else { return nil }
        } catch {
            return nil
        }
        let existing = ProcessInfo.processInfo.environment["TERMINFO_DIRS"].map { ":" + $0 } ?? ":"
        setenv("TERMINFO_DIRS", directory.path + existing, 1)
        return name
    }
}
