/// Where the last frame put things, so that a mouse event can be mapped back to what is under it:
/// a pane's pixels to image pixels, a row of the image list to an image.
public struct ScreenMap: Equatable, Sendable {
    public var panes: [PaneGeometry] = []
    /// Screen row -> image index, for the rows of the image list.
    public var listEntries: [Int: Int] = [:]
    /// The list's rectangle: mouse events there are the list's, whatever lies under it.
    public var listColumns: Range<Int> = 0..<0
    public var listRows: Range<Int> = 0..<0
    /// No panel at the side: `w` goes on from the panes to the panel (inspector and legend) in their place.
    public var panelInPanes = false

    public init() {}
}

/// The cells a pane's pixel grid covers and the part of the image it shows.
public struct PaneGeometry: Equatable, Sendable {
    /// Which pane (as `ViewState.focusedPane` counts them).
    public var pane: Int
    /// The top-left cell of the pixel grid.
    public var x: Int, y: Int
    public var gridWidth: Int, gridHeight: Int
    /// Pixels per cell: 1 across and 2 down with half blocks, 1 and 1 with coloured spaces, the
    /// cell's size in pixels with a graphics protocol.
    public var pixelColumnsPerCell = 1
    public var pixelRowsPerCell: Int
    public var viewport: Viewport

    public init(pane: Int, x: Int, y: Int, gridWidth: Int, gridHeight: Int, pixelColumnsPerCell: Int = 1,
                pixelRowsPerCell: Int, viewport: Viewport) {
        (self.pane, self.x, self.y, self.gridWidth, self.gridHeight) = (pane, x, y, gridWidth, gridHeight)
        (self.pixelColumnsPerCell, self.pixelRowsPerCell) = (pixelColumnsPerCell, pixelRowsPerCell)
        self.viewport = viewport
    }

    public func contains(row: Int, col: Int) -> Bool {
        let columns = (gridWidth + pixelColumnsPerCell - 1) / max(1, pixelColumnsPerCell)
        return (x..<x + columns).contains(col)
            && (y..<y + (gridHeight + pixelRowsPerCell - 1) / max(1, pixelRowsPerCell)).contains(row)
    }

    /// The image pixel under a cell (the upper of a half-block cell's two; a graphics cell's
    /// centre), or nil outside the grid.
    public func pixel(row: Int, col: Int) -> (x: Int, y: Int)? {
        guard contains(row: row, col: col), gridWidth > 0, gridHeight > 0 else { return nil }
        let gridX = (Double(col - x) + 0.5) * Double(pixelColumnsPerCell)
        let withinCell = pixelRowsPerCell > 2 ? Double(pixelRowsPerCell) / 2 : 0.5
        let gridY = Double(row - y) * Double(pixelRowsPerCell) + withinCell
        return (Int(viewport.x + gridX * viewport.width / Double(gridWidth)),
                Int(viewport.y + gridY * viewport.height / Double(gridHeight)))
    }
}
