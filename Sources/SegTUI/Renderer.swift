import Foundation
import SegImage
import SegPipeline

/// Turns (scene, view state, terminal size, colour mode) into a grid of cells. It knows nothing of
/// ncurses; the only state it keeps is a cache of downscaled layers, so that moving the cursor does
/// not resample the image.
public final class Renderer {
    public static let panelWidth = 34
    public static let minimumSize = (cols: 40, rows: 12)

    /// Downscaled layers by everything they depend on except the cursor, so that a cursor move
    /// only redraws the cursor.
    private var imageLayers: [String: [RGB]] = [:]
    private var paneLayers: [String: [Int32]] = [:]
    private static let cachedLayers = 16
    /// Two pixels per cell with `▀` (UTF-8 locales), or one pixel per cell drawn as a coloured space
    /// and ASCII text (anything else: ncursesw draws nothing for `▀` there).
    public var halfBlocks: Bool
    /// Where the last frame put the panes and the image list (for the mouse).
    public private(set) var screenMap = ScreenMap()
    /// Panes as real pixels through a graphics protocol, or (no protocol) as half blocks.
    public var graphics = GraphicsSupport.halfBlocks
    /// The panes the last frame wants drawn as pixels (their cells are left blank).
    public private(set) var placements: [GraphicsPlacement] = []
    private var pixelLayers: [String: [RGB]] = [:]

    public init(halfBlocks: Bool = true) {
        self.halfBlocks = halfBlocks
    }

    /// Where things go for a terminal size.
    public struct Layout {
        public var panes: [(x: Int, y: Int, width: Int, height: Int)]
        public var panel: (x: Int, y: Int, width: Int, height: Int)?
        public var summaryRow: Int?
        public var statusRow: Int
    }

    /// Three panes, arranged side by side, stacked, or two over one, whichever shows the image
    /// largest; the panel at the right when the terminal is wide; one pane at a time when the panes
    /// would be too small to read.
    public static func layout(rows: Int, cols: Int, imageWidth: Int, imageHeight: Int, singlePane: Bool,
                              paneCount: Int = 3) -> Layout {
        let wide = cols >= 100
        let areaWidth = wide ? cols - panelWidth - 1 : cols
        let bottom = wide ? rows - 1 : rows - 3  // status (and summary rows in narrow terminals) below
        let areaHeight = bottom
        // Every pane has a title row above its pixels.
        func panes(columns: Int, rowsOfPanes: Int) -> [(x: Int, y: Int, width: Int, height: Int)] {
            let width = (areaWidth - (columns - 1)) / columns
            let height = areaHeight / rowsOfPanes - 1
            return (0..<paneCount).map { i in
                let column = i % columns, row = i / columns
                return (x: column * (width + 1), y: row * (height + 1) + 1, width: width, height: height)
            }
        }
        func shownPixels(_ pane: (x: Int, y: Int, width: Int, height: Int)) -> Int {
            guard pane.width >= 16 && pane.height >= 4 else { return 0 }
            let viewport = Viewport(x: 0, y: 0, width: Double(imageWidth), height: Double(imageHeight))
            let size = viewport.gridSize(maxWidth: pane.width, maxHeight: pane.height * 2)
            return size.width * size.height
        }
        let candidates = [panes(columns: paneCount, rowsOfPanes: 1), panes(columns: 1, rowsOfPanes: paneCount),
                          panes(columns: 2, rowsOfPanes: (paneCount + 1) / 2)]
        let best = candidates.max { shownPixels($0[0]) < shownPixels($1[0]) }!
        let single = singlePane || shownPixels(best[0]) == 0
        let chosen = single ? [(x: 0, y: 1, width: areaWidth, height: areaHeight - 1)] : best
        return Layout(panes: chosen, panel: wide ? (cols - panelWidth, 0, panelWidth, rows - 1) : nil,
                      summaryRow: wide ? nil : rows - 3, statusRow: rows - 1)
    }

    public func render(_ scene: Scene, _ state: ViewState, rows: Int, cols: Int, palette: TerminalPalette) -> CellGrid {
        var grid = CellGrid(rows: rows, cols: cols)
        screenMap = ScreenMap()
        placements = []
        guard rows >= Self.minimumSize.rows && cols >= Self.minimumSize.cols else {
            let lines = ["terminal too small", "\(cols)x\(rows), need \(Self.minimumSize.cols)x\(Self.minimumSize.rows)", "q quits"]
            for (i, line) in lines.enumerated() where i < rows {
                grid.text(line, y: max(0, rows / 2 - 1) + i - (rows < 3 ? rows / 2 : 0), x: max(0, (cols - line.count) / 2))
            }
            return grid
        }
        let panes = Self.paneKinds(compare: state.compare && scene.comparing)
        let layout = Self.layout(rows: rows, cols: cols, imageWidth: scene.image.width, imageHeight: scene.image.height,
                                 singlePane: false, paneCount: panes.count)
        // Pixels go under text, or replace it: where text covers the panes, they are drawn as cells.
        let pixelPanes = graphics.graphicsProtocol != nil && !state.showHelp && !(state.showList && layout.panel == nil)
        // Without a panel at the side, `w` shows it (inspector and legend) in the panes' place after the panes.
        screenMap.panelInPanes = layout.panel == nil
        if layout.panel == nil && !panes.indices.contains(state.focusedPane) {
            drawPanel(scene, state, into: &grid, frame: (0, 0, cols, layout.summaryRow ?? rows - 1), palette: palette)
        } else if layout.panes.count == 1 {
            let index = min(state.focusedPane, panes.count - 1)
            drawPane(index, panes[index], scene, state, into: &grid, frame: layout.panes[0], palette: palette,
                     focused: false, pixels: pixelPanes)
        } else {
            for (index, (frame, kind)) in zip(layout.panes, panes).enumerated() {
                drawPane(index, kind, scene, state, into: &grid, frame: frame, palette: palette,
                         focused: index == state.focusedPane, pixels: pixelPanes)
            }
        }
        if let panel = layout.panel {
            if state.showList { drawList(scene, into: &grid, frame: panel) }
            else { drawPanel(scene, state, into: &grid, frame: panel, palette: palette) }
        } else if state.showList {
            screenMap.panes = []  // covered by the list
            drawList(scene, into: &grid, frame: (0, 0, cols, layout.summaryRow ?? rows - 1))
        }
        if let row = layout.summaryRow { drawSummary(scene, state, into: &grid, row: row) }
        drawStatus(scene, state, into: &grid, row: layout.statusRow, palette: palette)
        if state.showHelp { drawHelp(into: &grid) }
        return grid
    }

    // MARK: panes

    public enum PaneKind: Equatable {
        case image, mask(comparison: Bool), border, disagreement
    }

    /// Compare keeps the input in view: image, A, B and where they differ.
    public static func paneKinds(compare: Bool) -> [PaneKind] {
        compare ? [.image, .mask(comparison: false), .mask(comparison: true), .disagreement]
            : [.image, .mask(comparison: false), .border]
    }

    /// What pane `index` shows, at the resolution of the scene's image and in exact colours (the
    /// class colours themselves, the photo undithered), and a word for it to name a file by; nil
    /// when there is no such pane or its result is not there.
    public func picture(ofPane index: Int, _ scene: Scene, _ state: ViewState) -> (name: String, image: RGBImage)? {
        let kinds = Self.paneKinds(compare: state.compare && scene.comparing)
        guard kinds.indices.contains(index) else { return nil }
        let (width, height) = (scene.image.width, scene.image.height)
        let whole = Viewport(x: 0, y: 0, width: Double(width), height: Double(height))
        guard let colors = paneColors(kinds[index], scene, state, viewport: whole, size: (width, height),
                                      coloring: PaneColoring(classColors: scene.classColors)) else { return nil }
        let name: String
        switch kinds[index] {
        case .image: name = "image"
        case .mask(let second): name = (state.compare ? (second ? "B-" : "A-") : "") + state.maskView.rawValue
        case .border: name = scene.result?.border != nil ? "border" : "boundaries"
        case .disagreement: name = "disagreement"
        }
        return (name, RGBImage(width: width, height: height, pixels: RGB.bytes(colors)))
    }

    private func title(_ kind: PaneKind, _ scene: Scene, _ state: ViewState) -> String {
        switch kind {
        case .image: return "image \(scene.image.width)x\(scene.image.height)"
        case .mask(let second):
            let view: String
            switch state.maskView {
            case .heatmap:
                let classes = scene.classNames
                let name = classes.indices.contains(state.selectedClass) ? classes[state.selectedClass] : "?"
                view = "heatmap of \(name) 0-1"
            case .blend, .contour: view = "\(state.maskView.title) \(Int((state.opacity * 100).rounded()))%"
            case .confidence: view = "confidence (top probability 0-1)"
            case .entropy: view = "entropy (0 sure, 1 uniform)"
            case .truth: view = scene.truth == nil ? "no ground truth for this image" : state.maskView.title
            case .errors, .mask: view = state.maskView.title
            }
            guard state.compare && scene.comparing else { return "\(view): \(scene.modelTitle)" }
            // The file first: two checkpoints of one architecture must not look alike in a narrow pane.
            return second ? "B \(scene.comparisonFile): \(view), \(scene.comparisonTitle ?? "")"
                : "A \(scene.modelFile): \(view), \(scene.modelTitle)"
        case .border: return scene.result?.border != nil ? "border map (model)" : "boundaries (from mask)"
        case .disagreement:
            let label = halfBlocks ? "A ≠ B" : "A != B"
            guard let a = scene.result?.labels, let b = scene.comparison?.labels, a.count == b.count, !a.isEmpty else {
                return label
            }
            let differing = zip(a, b).reduce(0) { $0 + ($1.0 == $1.1 ? 0 : 1) }
            return label + String(format: ": %d px (%.1f%%)", differing, Double(differing) * 100 / Double(a.count))
        }
    }

    private func drawPane(_ index: Int, _ kind: PaneKind, _ scene: Scene, _ state: ViewState, into grid: inout CellGrid,
                          frame: (x: Int, y: Int, width: Int, height: Int), palette: TerminalPalette, focused: Bool,
                          pixels pixelPane: Bool) {
        // The focused pane (what `s` saves) is marked when several show.
        let marker = focused ? (halfBlocks ? "▶ " : "> ") : ""
        grid.text(marker + title(kind, scene, state), y: frame.y - 1, x: frame.x, width: frame.width, bold: true)
        let image = scene.image
        let viewport = Viewport.around(cursorX: state.cursorX, cursorY: state.cursorY, zoom: state.zoom,
                                       imageWidth: image.width, imageHeight: image.height)
        if pixelPane { return drawPixelPane(index, kind, scene, state, into: &grid, frame: frame, viewport: viewport) }
        var size = viewport.gridSize(maxWidth: frame.width, maxHeight: frame.height * 2)
        if !halfBlocks { size.height = max(1, size.height / 2) }  // a cell is about twice as tall as wide
        let originX = frame.x + (frame.width - size.width) / 2, originY = frame.y
        screenMap.panes.append(PaneGeometry(pane: index, x: originX, y: originY, gridWidth: size.width,
                                            gridHeight: size.height, pixelRowsPerCell: halfBlocks ? 2 : 1,
                                            viewport: viewport))
        let pixels = cachedPaneColors(kind, scene, state, viewport: viewport, size: size, palette: palette)
        guard let pixels else {
            let text = scene.busy ?? "no result"
            grid.text(text, y: frame.y + frame.height / 2, x: frame.x + max(0, (frame.width - text.count) / 2), width: frame.width)
            return
        }
        // The cursor's pixel, drawn in black or white against what is under it.
        let cursorColumn = Int((Double(state.cursorX) + 0.5 - viewport.x) / viewport.width * Double(size.width))
        let cursorRow = Int((Double(state.cursorY) + 0.5 - viewport.y) / viewport.height * Double(size.height))
        var colors = pixels
        if cursorColumn >= 0 && cursorColumn < size.width && cursorRow >= 0 && cursorRow < size.height {
            let under = imagePixels(scene, viewport: viewport, size: size)[cursorRow * size.width + cursorColumn]
            colors[cursorRow * size.width + cursorColumn] = palette.color(under.luminance > 128 ? RGB(0, 0, 0) : RGB(255, 255, 255))
        }
        guard halfBlocks else {
            for row in 0..<size.height {
                for col in 0..<size.width { grid[originY + row, originX + col] = Cell(bg: colors[row * size.width + col]) }
            }
            return
        }
        for row in 0..<(size.height + 1) / 2 {
            for col in 0..<size.width {
                let top = colors[2 * row * size.width + col]
                let bottom = 2 * row + 1 < size.height ? colors[(2 * row + 1) * size.width + col] : -1
                grid[originY + row, originX + col] = Cell(glyph: Cell.upperHalf, fg: top, bg: bottom)
            }
        }
    }

    /// A pane as pixels at the cells' pixel size, placed by the terminal after the cells are drawn.
    /// Its cells hold kitty's placeholders through tmux, else characters that look blank but keep
    /// ncurses from erasing or scrolling them (`Cell.underImage`), which would wipe or move the
    /// pixels on those rows. With kitty the cursor is a `+` drawn as text over the image (through
    /// tmux, in place of the image's cell), so that a move does not send the image again. iTerm2's
    /// cursor is the same `+`, written by the terminal layer over the painted cell (the placement's
    /// `marker`): a move sends back the cell it left. Sixel's cursor, and iTerm2's where the cell
    /// size is a guess, is drawn into the pixels as they are sent (the placement's `cursor`), and a
    /// move sends only the pixels it changes.
    private func drawPixelPane(_ index: Int, _ kind: PaneKind, _ scene: Scene, _ state: ViewState,
                               into grid: inout CellGrid, frame: (x: Int, y: Int, width: Int, height: Int),
                               viewport: Viewport) {
        let (cellWidth, cellHeight) = (graphics.cellWidth, graphics.cellHeight)
        let size = viewport.gridSize(maxWidth: frame.width * cellWidth, maxHeight: frame.height * cellHeight)
        let columns = (size.width + cellWidth - 1) / cellWidth
        let originX = frame.x + (frame.width - columns) / 2
        screenMap.panes.append(PaneGeometry(pane: index, x: originX, y: frame.y, gridWidth: size.width,
                                            gridHeight: size.height, pixelColumnsPerCell: cellWidth,
                                            pixelRowsPerCell: cellHeight, viewport: viewport))
        var key = layerKey(kind, scene, state, viewport: viewport, size: size)
        let cached = pixelLayers[key] ?? paneColors(kind, scene, state, viewport: viewport, size: size,
                                                    coloring: PaneColoring(classColors: scene.classColors))
        guard let pixels = cached else {
            let text = scene.busy ?? "no result"
            grid.text(text, y: frame.y + frame.height / 2, x: frame.x + max(0, (frame.width - text.count) / 2),
                      width: frame.width)
            return
        }
        if pixelLayers[key] == nil {
            if pixelLayers.count >= Self.cachedLayers { pixelLayers.removeAll() }
            pixelLayers[key] = pixels
        }
        if graphics.throughTmux || halfBlocks {  // else a non-UTF-8 locale: spaces, which ncurses may erase
            for row in 0..<(size.height + cellHeight - 1) / cellHeight {
                for column in 0..<columns {
                    let cell = graphics.throughTmux ? KittyPlaceholder.cell(id: index + 1, row: row, column: column)
                        : Cell.underImage(row: frame.y + row, column: column)
                    if let cell { grid[frame.y + row, originX + column] = cell }
                }
            }
        }
        let x = Int((Double(state.cursorX) + 0.5 - viewport.x) / viewport.width * Double(size.width))
        let y = Int((Double(state.cursorY) + 0.5 - viewport.y) / viewport.height * Double(size.height))
        var cursor: GraphicsPlacement.PixelPoint?
        var marker: GraphicsPlacement.CellPoint?
        if x >= 0 && x < size.width && y >= 0 && y < size.height {
            switch graphics.graphicsProtocol {
            case .kitty:
                grid[frame.y + y / cellHeight, originX + x / cellWidth] = Cell.cursorMarker
            case .iterm where graphics.cellSizeKnown:
                marker = .init(column: x / cellWidth, row: y / cellHeight)
            default:
                cursor = GraphicsPlacement.PixelPoint(x: x, y: y)
                // Where the cell size is a guess, patches would land beside the cells they mean: a
                // move changes the key, and the pane is sent whole.
                if !graphics.cellSizeKnown { key += "|cursor \(x),\(y)" }
            }
        }
        placements.append(GraphicsPlacement(pane: index, column: originX, row: frame.y, width: size.width,
                                            height: size.height, cellWidth: cellWidth, cellHeight: cellHeight,
                                            pixels: pixels, key: key, cursor: cursor, marker: marker))
    }

    /// The image layer, cached by image, viewport and grid size.
    private func imagePixels(_ scene: Scene, viewport: Viewport, size: (width: Int, height: Int)) -> [RGB] {
        let key = "\(scene.imageID)|\(scene.image.width)x\(scene.image.height)|\(viewport)|\(size.width)x\(size.height)"
        if let cached = imageLayers[key] { return cached }
        let pixels = Sampling.averageRGB(scene.image.pixels, width: scene.image.width, height: scene.image.height,
                                         viewport: viewport, gridWidth: size.width, gridHeight: size.height)
        if imageLayers.count >= Self.cachedLayers { imageLayers.removeAll() }
        imageLayers[key] = pixels
        return pixels
    }

    private func cachedPaneColors(_ kind: PaneKind, _ scene: Scene, _ state: ViewState, viewport: Viewport,
                                  size: (width: Int, height: Int), palette: TerminalPalette) -> [Int32]? {
        let key = layerKey(kind, scene, state, viewport: viewport, size: size) + "|" + palette.mode.rawValue
        if let cached = paneLayers[key] { return cached }
        guard let colors = paneColors(kind, scene, state, viewport: viewport, size: size,
                                      coloring: PaneColoring(palette)) else { return nil }
        if paneLayers.count >= Self.cachedLayers { paneLayers.removeAll() }
        paneLayers[key] = colors
        return colors
    }

    /// Everything a pane's pixels depend on except the cursor (and the colour mode).
    private func layerKey(_ kind: PaneKind, _ scene: Scene, _ state: ViewState, viewport: Viewport,
                          size: (width: Int, height: Int)) -> String {
        func id(_ result: SegmentationResult?) -> String { result.map { "\(ObjectIdentifier($0).hashValue)" } ?? "-" }
        let picture = [scene.imageID, "\(scene.image.width)x\(scene.image.height)", "\(viewport)",
                       "\(size.width)x\(size.height)"]
        // The photo does not change with the results or the view.
        guard kind != .image else { return (["image"] + picture).joined(separator: "|") }
        return [
            "\(kind)", scene.imageID, id(scene.result), id(scene.comparison), state.maskView.rawValue,
            "\(state.opacity)", "\(state.selectedClass)", "\(state.hiddenClasses.sorted())", "\(state.solo)",
            "\(scene.truth != nil)", "\(viewport)", "\(size.width)x\(size.height)",
        ].joined(separator: "|")
    }

    /// The colours of one pane's pixel grid, or nil when its result is not there yet.
    private func paneColors<Color>(_ kind: PaneKind, _ scene: Scene, _ state: ViewState, viewport: Viewport,
                                   size: (width: Int, height: Int), coloring: PaneColoring<Color>) -> [Color]? {
        let image = imagePixels(scene, viewport: viewport, size: size)
        let (w, h) = (scene.image.width, scene.image.height)
        func labels(_ result: SegmentationResult) -> [Int32] {
            Sampling.majority(result.labels, width: w, height: h, classes: scene.classNames.count, viewport: viewport,
                              gridWidth: size.width, gridHeight: size.height)
        }
        func maximum(_ values: [Float]) -> [Float] {
            Sampling.maximum(values, width: w, height: h, viewport: viewport, gridWidth: size.width, gridHeight: size.height)
        }
        switch kind {
        case .image:
            return coloring.photo(image, size.width)
        case .border:
            guard let result = scene.result else { return nil }
            return maximum(result.border ?? result.boundaries).map { coloring.color(Colormap.grey($0)) }
        case .disagreement:
            guard let a = scene.result, let b = scene.comparison else { return nil }
            let differs = maximum(zip(a.labels, b.labels).map { $0 == $1 ? 0 : 1 })
            return zip(image, differs).map { pixel, d in
                coloring.color(d > 0 ? RGB(255, 0, 255)
                                   : RGB(0, 0, 0).mixed(with: Colormap.grey(pixel.luminance / 255), 0.5))
            }
        case .mask(let second):
            guard let result = second ? scene.comparison : scene.result else { return nil }
            let shown: [Int32]
            if state.maskView == .truth {
                // Not labelled (or beyond the classes) shows the image dimmed; no labels, an empty pane.
                guard let truth = scene.truth else { return nil }
                shown = Sampling.majority(truth.map { Int($0) == scene.ignoreLabel ? -1 : Int32($0) }, width: w,
                                          height: h, classes: scene.classNames.count, viewport: viewport,
                                          gridWidth: size.width, gridHeight: size.height)
            } else {
                shown = labels(result)
            }
            return maskColors(result, scene, state, image: image, labels: shown, viewport: viewport,
                              size: size, coloring: coloring)
        }
    }

    private func maskColors<Color>(_ result: SegmentationResult, _ scene: Scene, _ state: ViewState, image: [RGB],
                                   labels: [Int32], viewport: Viewport, size: (width: Int, height: Int),
                                   coloring: PaneColoring<Color>) -> [Color] {
        let (w, h) = (scene.image.width, scene.image.height)
        func average(_ values: [Float]) -> [Float] {
            Sampling.average(values, width: w, height: h, viewport: viewport, gridWidth: size.width, gridHeight: size.height)
        }
        func classRGB(_ label: Int32) -> RGB? {
            label >= 0 && Int(label) < scene.classColors.count && state.isVisible(Int(label)) ? scene.classColors[Int(label)] : nil
        }
        switch state.maskView {
        case .mask, .truth:
            return zip(labels, image).map { label, pixel in
                classRGB(label) != nil ? coloring.classColor(Int(label))
                    : coloring.color(pixel.mixed(with: RGB(0, 0, 0), 0.6))
            }
        case .blend:
            return zip(labels, image).map { label, pixel in
                classRGB(label).map { coloring.color(pixel.mixed(with: $0, state.opacity)) } ?? coloring.color(pixel)
            }
        case .contour:
            return labels.indices.map { i in
                let x = i % size.width, y = i / size.width, label = labels[i]
                let edge = (x + 1 < size.width && labels[i + 1] != label) || (y + 1 < size.height && labels[i + size.width] != label)
                guard edge, let color = classRGB(label) else { return coloring.color(image[i]) }
                return coloring.color(image[i].mixed(with: color, max(state.opacity, 0.8)))
            }
        case .heatmap:
            let plane = result.probabilities.planePointer(min(state.selectedClass, result.probabilities.channels - 1))
            let probabilities = Array(UnsafeBufferPointer(start: plane, count: w * h))
            return average(probabilities).map { coloring.color(Colormap.heat($0)) }
        case .confidence:
            return average(result.maxProbability).map { coloring.color(Colormap.heat($0)) }
        case .entropy:
            return average(result.normalizedEntropy).map { coloring.color(Colormap.heat($0)) }
        case .errors:
            guard let truth = scene.truth else {
                return labels.map { classRGB($0) != nil ? coloring.classColor(Int($0)) : coloring.color(RGB(0, 0, 0)) }
            }
            // 0 correct, 1 wrong, 2 not labelled; the worst case in a cell wins so single errors stay visible.
            let codes: [Float] = zip(result.labels, truth).map { p, t in Int(t) == scene.ignoreLabel ? 0.5 : (Int(p) == Int(t) ? 0 : 1) }
            return zip(Sampling.maximum(codes, width: w, height: h, viewport: viewport, gridWidth: size.width,
                                        gridHeight: size.height), image).map { code, pixel in
                switch code {
                case 1: return coloring.color(RGB(230, 30, 30))
                case 0.5: return coloring.color(RGB(20, 30, 70))
                default: return coloring.color(Colormap.grey(pixel.luminance / 255 * 0.6))
                }
            }
        }
    }

    // MARK: panel, summary, status, help

    private func drawPanel(_ scene: Scene, _ state: ViewState, into grid: inout CellGrid,
                           frame: (x: Int, y: Int, width: Int, height: Int), palette: TerminalPalette) {
        var y = frame.y
        let x = frame.x, width = frame.width
        func line(_ text: String, bold: Bool = false, fg: Int32 = -1) {
            grid.text(text, y: y, x: x, width: width, fg: fg, bold: bold)
            y += 1
        }
        line("Inspector", bold: true)
        for text in inspectorLines(scene, state) { line(text) }
        if let result = scene.result {
            let ranking = result.ranking(x: state.cursorX, y: state.cursorY).prefix(5)
            for (label, probability) in ranking {
                let name = CellGrid.padded(scene.classNames[label], to: 12)
                line(" \(name) \(String(format: "%.3f", probability)) \(Self.bar(Double(probability), width: 12, ascii: !halfBlocks))")
            }
        }
        y += 1
        guard y < frame.y + frame.height else { return }
        if let meaning = scaleMeaning(scene, state) {
            line("Colour scale", bold: true)
            line(" " + meaning)
            let steps = max(2, min(24, width - 6))
            grid.text(" 0", y: y, x: x, width: width)
            for step in 0..<steps {
                let value = Float(step) / Float(steps - 1)
                grid[y, x + 3 + step] = Cell(glyph: 32, bg: palette.color(Colormap.heat(value)))
            }
            grid.text("1", y: y, x: x + 4 + steps, width: max(0, width - 4 - steps))
            y += 2
            guard y < frame.y + frame.height else { return }
        }
        if state.maskView == .errors && scene.truth != nil {
            line("Errors", bold: true)
            for (colour, meaning) in [(RGB(230, 30, 30), "wrong"), (RGB(20, 30, 70), "not labelled"),
                                      (RGB(90, 90, 90), "right (the image, dimmed)")] {
                // The text first: its leading spaces would paint over the swatch.
                grid.text("    \(meaning)", y: y, x: x, width: width)
                grid[y, x + 1] = Cell(glyph: 32, bg: palette.color(colour))
                grid[y, x + 2] = Cell(glyph: 32, bg: palette.color(colour))
                y += 1
            }
            y += 1
            guard y < frame.y + frame.height else { return }
        }
        line("Legend  (Tab, space, S)", bold: true)
        let shares = scene.result?.classShares ?? []
        let rowsLeft = frame.y + frame.height - y
        let first = max(0, min(state.selectedClass - rowsLeft / 2, scene.classNames.count - rowsLeft))
        for label in first..<min(scene.classNames.count, first + rowsLeft) {
            let marker = label == state.selectedClass ? ">" : " "
            grid.text(marker, y: y, x: x, bold: true)
            let swatch = state.isVisible(label) ? palette.classColor(label) : -1
            grid[y, x + 1] = Cell(glyph: 32, bg: swatch)
            grid[y, x + 2] = Cell(glyph: state.isVisible(label) ? 32 : 45, bg: swatch)
            let share = label < shares.count ? String(format: "%5.1f%%", shares[label] * 100) : ""
            let name = CellGrid.padded(scene.classNames[label], to: 18)
            grid.text(" \(String(format: "%2d", label)) \(name)\(share)", y: y, x: x + 3, width: width - 3,
                      bold: label == state.selectedClass)
            y += 1
        }
    }

    /// What the colour scale of a map view measures, or nil for views of classes.
    private func scaleMeaning(_ scene: Scene, _ state: ViewState) -> String? {
        switch state.maskView {
        case .heatmap:
            let names = scene.classNames
            return "probability of \(names.indices.contains(state.selectedClass) ? names[state.selectedClass] : "?")"
        case .confidence: return "top-class probability"
        case .entropy: return "entropy: 0 sure, 1 uniform"
        default: return nil
        }
    }

    /// The image list around the current image; a click on a row shows that image.
    private func drawList(_ scene: Scene, into grid: inout CellGrid, frame: (x: Int, y: Int, width: Int, height: Int)) {
        grid.fill(y: frame.y, x: frame.x, height: frame.height, width: frame.width)
        guard let listing = scene.listing, frame.height >= 2 else { return }
        grid.text("Images: \(listing.title)", y: frame.y, x: frame.x, width: frame.width, bold: true)
        let rows = frame.height - 1
        let first = max(0, min(listing.current - rows / 2, listing.entries.count - rows))
        let numberWidth = String(listing.entries.count).count
        screenMap.listColumns = frame.x..<(frame.x + frame.width)
        screenMap.listRows = frame.y..<(frame.y + frame.height)
        for position in first..<min(listing.entries.count, first + rows) {
            let entry = listing.entries[position], y = frame.y + 1 + position - first
            let current = position == listing.current
            let number = String(position + 1).leftPadded(to: numberWidth)
            let score = entry.score.leftPadded(to: 7)
            let nameWidth = max(1, frame.width - numberWidth - score.count - 4)
            grid.text("\(current ? ">" : " ")\(number) \(CellGrid.padded(entry.name, to: nameWidth)) \(score)",
                      y: y, x: frame.x, width: frame.width, bold: current)
            screenMap.listEntries[y] = entry.image
        }
    }

    /// Position, output cell, class, truth and border under the cursor.
    func inspectorLines(_ scene: Scene, _ state: ViewState) -> [String] {
        let s = state.outputStride
        var lines = [" pixel  (\(state.cursorX), \(state.cursorY))",
                     " cell   (\(state.cursorX / s), \(state.cursorY / s)) at OS \(s)"]
        guard let result = scene.result else { return lines + [" " + (scene.busy ?? "no result")] }
        let i = state.cursorY * result.width + state.cursorX
        let label = Int(result.labels[i])
        lines.append(" class  \(label) \(scene.classNames[label])")
        if let truth = scene.truth {
            let t = Int(truth[i])
            lines.append(" truth  " + (t == scene.ignoreLabel ? "(not labelled)" : t < scene.classNames.count ? "\(t) \(scene.classNames[t])" : "\(t)"))
        }
        if let border = result.border {
            lines.append(" border \(String(format: "%.3f", border[i]))")
        } else {
            lines.append(" border \(result.boundaries[i] > 0 ? "on a class boundary" : "-")")
        }
        if let other = scene.comparison {
            let b = Int(other.labels[i])
            lines.append(" B      \(b) \(scene.classNames[b]) \(String(format: "%.3f", other.probability(of: b, x: state.cursorX, y: state.cursorY)))")
        }
        lines.append(" top-5")
        return lines
    }

    private func drawSummary(_ scene: Scene, _ state: ViewState, into grid: inout CellGrid, row: Int) {
        let lines = inspectorLines(scene, state).filter { $0 != " top-5" }
        grid.text(lines.prefix(3).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "  "), y: row, x: 0)
        var top = ""
        if let result = scene.result {
            top = result.ranking(x: state.cursorX, y: state.cursorY).prefix(3)
                .map { "\(scene.classNames[$0.label]) \(String(format: "%.2f", $0.probability))" }.joined(separator: "  ")
        }
        grid.text(top + (lines.count > 3 ? "  " + lines[3].trimmingCharacters(in: .whitespaces) : ""), y: row + 1, x: 0)
    }

    private func drawStatus(_ scene: Scene, _ state: ViewState, into grid: inout CellGrid, row: Int, palette: TerminalPalette) {
        let stride = "OS \(state.outputStride)"
            + (state.outputStride == state.trainedStride ? "" : " (trained \(state.trainedStride))")
        // Parts with the rank at which they give way when the line is too long (higher goes first),
        // and the shorter words that image, model, stride, metrics and the help hint, which stay,
        // take after that (lower `shortens` first).
        struct Part {
            var text: String, drop: Int
            var short: String? = nil, shortens = 0
        }
        let place = scene.position.map { "\($0) " } ?? ""
        var parts = [
            Part(text: place + "\(scene.imageName) \(scene.sourceSize)", drop: 0, short: place + scene.imageName),
            Part(text: scene.modelTitle, drop: 0, short: scene.modelTitle.split(separator: " ").first.map(String.init),
                 shortens: 3),
            Part(text: stride, drop: 0), Part(text: "scale \(scene.scaleLabel)", drop: 6),
        ]
        if let busy = scene.busy { parts.append(Part(text: busy, drop: 2)) } else if let result = scene.result {
            parts.append(Part(text: String(format: "%.0f ms", result.inferenceMilliseconds), drop: 4))
        }
        let pixels = graphics.graphicsProtocol.map { ", \($0.rawValue) pixels" } ?? ""
        parts.append(Part(text: palette.mode.label + pixels, drop: 5))
        func metrics(_ agreement: ConfusionMatrix, _ label: String, shortens: Int) -> Part {
            let (accuracy, meanIoU) = (agreement.pixelAccuracy * 100, agreement.meanIoU * 100)
            return Part(text: String(format: "%@acc %.1f%% mIoU %.1f%%", label, accuracy, meanIoU), drop: 0,
                        short: String(format: "%@%.1f/%.1f%%", label, accuracy, meanIoU), shortens: shortens)
        }
        if let agreement = scene.agreement { parts.append(metrics(agreement, "", shortens: 1)) }
        if state.compare, let title = scene.comparisonTitle {
            parts.append(Part(text: "vs \(title)", drop: 1))
            if let agreement = scene.comparisonAgreement { parts.append(metrics(agreement, "B ", shortens: 2)) }
        }
        if state.zoom > 0 { parts.append(Part(text: "zoom \(1 << state.zoom)x", drop: 3)) }
        if !state.augmentation.isEmpty { parts.append(Part(text: "TTA \(state.augmentation)", drop: 3)) }
        if let typed = state.jumpPrompt {
            parts = [Part(text: "go to image (number or name, Enter, Esc): \(typed)_", drop: 0)]
        }
        // A message (an error, a saved file) goes first so that a narrow terminal still shows it.
        else if let message = scene.message { parts.insert(Part(text: message, drop: 0), at: 0) }
        else { parts.append(Part(text: "? help", drop: 0)) }
        var separator = halfBlocks ? " │ " : " | "
        func line() -> String { " " + parts.map(\.text).joined(separator: separator) }
        while line().count > grid.cols, let rank = parts.map(\.drop).max(), rank > 0 {
            parts.remove(at: parts.lastIndex { $0.drop == rank }!)
        }
        for index in parts.indices.sorted(by: { parts[$0].shortens < parts[$1].shortens })
        where line().count > grid.cols {
            if let short = parts[index].short { parts[index].text = short }
        }
        if line().count > grid.cols { separator = halfBlocks ? "│" : "|" }  // the last room to make
        let text = line()
        grid.fill(y: row, x: 0, height: 1, width: grid.cols, bg: palette.color(RGB(40, 40, 60)))
        grid.text(text, y: row, x: 0, fg: palette.color(RGB(255, 255, 255)), bg: palette.color(RGB(40, 40, 60)))
    }

    /// The help's lines: at most 20, so that it fits an 80x24 terminal.
    public static let keys: [(String, String)] = [
        ("m / M", "next / previous model"), ("o", "output stride 8 → 16 → 32 (pinned but the trained one)"),
        ("arrows hjkl", "move the cursor (HJKL: big steps)"),
        ("v", "view: mask, blend, contour, heatmap, confidence,"), ("", "  entropy, errors, ground truth (--labels)"),
        ("[ / ]", "less / more opacity"), ("Tab / BTab", "select next / previous class"),
        ("space / S", "hide / solo the selected class"), ("c / b", "compare two models / next model B"),
        ("n / p", "next / previous image"), ("g / i", "go to an image (number or name) / list (n, p, click)"),
        ("O", "order: name, worst mIoU, least sure, A/B disagreement"),
        ("+ / -", "zoom in / out around the cursor (or the wheel)"),
        ("click", "focus a pane, put the cursor on that pixel"),
        ("w", "focus the next pane (then the legend, under 100 cols)"),
        ("s", "save the focused pane as PNG (working resolution)"),
        ("r / t", "working resolution / test-time augmentation"),
        ("? / q", "this help (any key closes it) / quit"),
    ]

    private func drawHelp(into grid: inout CellGrid) {
        let width = min(grid.cols - 2, 72), height = min(grid.rows - 2, Self.keys.count + 2)
        let x = (grid.cols - width) / 2, y = max(0, (grid.rows - height) / 2)
        grid.fill(y: y, x: x, height: height, width: width)
        grid.text("Keys", y: y, x: x + 2, bold: true)
        for (i, (key, meaning)) in Self.keys.enumerated() where i + 1 < height {
            grid.text(key.padding(toLength: 13, withPad: " ", startingAt: 0) + meaning, y: y + 1 + i, x: x + 2, width: width - 3)
        }
    }

    /// A horizontal bar of eighth blocks for a value in 0...1.
    static func bar(_ value: Double, width: Int, ascii: Bool = false) -> String {
        if ascii { return String(repeating: "#", count: Int((max(0, min(1, value)) * Double(width)).rounded())) }
        let eighths = Int((max(0, min(1, value)) * Double(width * 8)).rounded())
        let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8]
        return String(repeating: "█", count: eighths / 8) + partial
    }
}

/// How a pane's pixels become colours: terminal colours on screen, exact RGB in a saved picture.
struct PaneColoring<Color> {
    var color: (RGB) -> Color
    var classColor: (Int) -> Color
    /// A photo's pixel grid, given its width.
    var photo: ([RGB], Int) -> [Color]
}

extension PaneColoring where Color == Int32 {
    init(_ palette: TerminalPalette) {
        self.init(color: palette.color, classColor: palette.classColor, photo: { palette.photo($0, width: $1) })
    }
}

extension PaneColoring where Color == RGB {
    init(classColors: [RGB]) {
        self.init(color: { $0 }, classColor: { classColors.indices.contains($0) ? classColors[$0] : RGB(0, 0, 0) },
                  photo: { pixels, _ in pixels })
    }
}

/// Colour ramps for probabilities and maps (SegImage's, as terminal colours).
enum Colormap {
    static func grey(_ v: Float) -> RGB { rgb(ValueMap.grey.color(v)) }
    static func heat(_ v: Float) -> RGB { rgb(ValueMap.heat.color(v)) }

    private static func rgb(_ color: (r: UInt8, g: UInt8, b: UInt8)) -> RGB { RGB(color.r, color.g, color.b) }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
