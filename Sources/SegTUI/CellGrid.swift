/// One terminal cell: a character, foreground and background terminal colours (-1: the
/// terminal's default) and bold.
public struct Cell: Equatable, Sendable {
    public var glyph: UInt32
    public var fg: Int32
    public var bg: Int32
    public var bold: Bool

    public init(glyph: UInt32 = 32, fg: Int32 = -1, bg: Int32 = -1, bold: Bool = false) {
        self.glyph = glyph
        self.fg = fg
        self.bg = bg
        self.bold = bold
    }

    /// U+2580 UPPER HALF BLOCK: the foreground paints the upper pixel, the background the lower one.
    public static let upperHalf: UInt32 = 0x2580
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

    /// Writes `text` from (y, x), clipped to `width` columns (default: to the edge). One character per cell.
    public mutating func text(_ text: String, y: Int, x: Int, width: Int? = nil, fg: Int32 = -1, bg: Int32 = -1,
                              bold: Bool = false) {
        guard y >= 0 && y < rows else { return }
        let limit = min(cols, x + (width ?? cols))
        var column = x
        for scalar in text.unicodeScalars {
            guard column < limit else { break }
            self[y, column] = Cell(glyph: scalar.value, fg: fg, bg: bg, bold: bold)
            column += 1
        }
    }

    /// Fills a rectangle with spaces in the given background.
    public mutating func fill(y: Int, x: Int, height: Int, width: Int, bg: Int32 = -1) {
        for row in y..<(y + height) { for col in x..<(x + width) { self[row, col] = Cell(bg: bg) } }
    }

    /// The text of one row (for tests and logs).
    public func line(_ y: Int) -> String {
        String(String.UnicodeScalarView((0..<cols).compactMap { Unicode.Scalar(self[y, $0].glyph) }))
    }
}
