import TermShim

/// One terminal cell: a character with up to two combining marks (0: none), foreground and
/// background terminal colours (-1: the terminal's default) and bold.
public struct Cell: Equatable, Sendable {
    public var glyph: UInt32
    public var marks: (UInt32, UInt32)
    public var fg: Int32
    public var bg: Int32
    public var bold: Bool

    public init(glyph: UInt32 = 32, marks: (UInt32, UInt32) = (0, 0), fg: Int32 = -1, bg: Int32 = -1,
                bold: Bool = false) {
        self.glyph = glyph
        self.marks = marks
        self.fg = fg
        self.bg = bg
        self.bold = bold
    }

    public static func == (a: Cell, b: Cell) -> Bool {
        a.glyph == b.glyph && a.marks == b.marks && a.fg == b.fg && a.bg == b.bg && a.bold == b.bold
    }

    /// U+2580 UPPER HALF BLOCK: the foreground paints the upper pixel, the background the lower one.
    public static let upperHalf: UInt32 = 0x2580

    /// The second column of a wide character: drawn by the character before it, never on its own.
    public static let continuation: UInt32 = 0

    /// The cursor over a pane drawn as pixels (kitty, iTerm2): a bold `+` in the terminal's colours.
    public static let cursorMarker = Cell(glyph: 43, fg: -1, bg: -1, bold: true)

    /// `cursorMarker` as raw output, written over a painted image (iTerm2) by the terminal layer.
    static let cursorMarkerEscape = "\u{1b}[0;1m+"

    /// A cell under an image: a character that looks blank but that ncurses does not take for a
    /// space, so it never erases a run of them to redraw a line. The first two columns of a row
    /// number the screen row (in base 13), so that no two rows under images are alike: ncurses
    /// scrolls a region of the screen where it finds lines that moved up or down, and that would
    /// move the pixels of the images on those rows with them.
    public static func underImage(row: Int, column: Int) -> Cell {
        let digit = column == 0 ? row % blanks.count : column == 1 ? row / blanks.count % blanks.count : 0
        return Cell(glyph: blanks[digit])
    }

    /// Characters of one column that draw nothing: U+2800 BRAILLE PATTERN BLANK, no-break space
    /// and the spaces U+2000-U+200A.
    private static let blanks: [UInt32] = [0x2800, 0xA0] + Array(0x2000...0x200A)
}

/// The whole screen as the renderer wants it; the terminal layer draws only the cells that changed.
public struct CellGrid: Equatable, Sendable {
    public let rows: Int
    public let cols: Int
    public var cells: [Cell]

    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        cells = Array(repeating: Cell(), count: max(0, rows * cols))
    }

    public subscript(y: Int, x: Int) -> Cell {
        get { cells[y * cols + x] }
        set { if y >= 0 && y < rows && x >= 0 && x < cols { cells[y * cols + x] = newValue } }
    }

    /// Writes `text` from (y, x), clipped to `width` columns (default: to the edge). Wide
    /// characters (CJK, most emoji) take two cells, combining marks none.
    public mutating func text(_ text: String, y: Int, x: Int, width: Int? = nil, fg: Int32 = -1, bg: Int32 = -1,
                              bold: Bool = false) {
        guard y >= 0 && y < rows else { return }
        let limit = min(cols, x + (width ?? cols))
        var column = x
        for original in text.unicodeScalars {
            // Control characters from a file (a name, a message) would move the cursor: a '?' instead.
            let control = original.value < 0x20 || (0x7F...0x9F).contains(original.value)
            let scalar: Unicode.Scalar = control ? "?" : original
            let columns = Self.columns(scalar)
            guard columns > 0 else { continue }
            guard column + columns <= limit else {
                if column < limit { self[y, column] = Cell(fg: fg, bg: bg, bold: bold) }  // half a wide character
                break
            }
            self[y, column] = Cell(glyph: scalar.value, fg: fg, bg: bg, bold: bold)
            if columns == 2 { self[y, column + 1] = Cell(glyph: Cell.continuation, fg: fg, bg: bg, bold: bold) }
            column += columns
        }
    }

    /// The terminal columns a character takes, as wcwidth says in the current locale (1 where it
    /// does not know, as for every non-ASCII character in the C locale).
    public static func columns(_ scalar: Unicode.Scalar) -> Int {
        let width = seg_wcwidth(scalar.value)
        return width < 0 ? 1 : Int(width)
    }

    /// `text` cut or padded with spaces to exactly `columns` terminal columns.
    public static func padded(_ text: String, to columns: Int) -> String {
        var out = "", used = 0
        for scalar in text.unicodeScalars {
            let width = Self.columns(scalar)
            guard used + width <= columns else { break }
            out.unicodeScalars.append(scalar)
            used += width
        }
        return out + String(repeating: " ", count: columns - used)
    }

    /// Fills a rectangle with spaces in the given background.
    public mutating func fill(y: Int, x: Int, height: Int, width: Int, bg: Int32 = -1) {
        for row in y..<(y + height) { for col in x..<(x + width) { self[row, col] = Cell(bg: bg) } }
    }

    /// The text of one row (for tests and logs).
    public func line(_ y: Int) -> String {
        String(String.UnicodeScalarView((0..<cols).compactMap { x in
            self[y, x].glyph == Cell.continuation ? nil : Unicode.Scalar(self[y, x].glyph)
        }))
    }
}
