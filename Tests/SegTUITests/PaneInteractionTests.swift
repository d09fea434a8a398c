import SegEngine
import SegImage
import SegModels
import SegPipeline
@testable import SegTUI
import XCTest

/// The mouse, the image list, the focused pane and what `s` saves: the renderer's screen map and
/// the key handler together, without a terminal.
final class PaneInteractionTests: XCTestCase {
    let engine = EngineContext()
    let colors = [RGB(10, 20, 30), RGB(200, 100, 50), RGB(0, 160, 80)]
    var truecolor: TerminalPalette { TerminalPalette(mode: .truecolor, classColors: colors) }

    func result(_ labels: [Int], classes: Int, width: Int, height: Int) -> SegmentationResult {
        var scores = [Float](repeating: 0, count: classes * width * height)
        for (i, label) in labels.enumerated() { scores[label * width * height + i] = 10 }
        let tensor = Tensor(channels: classes, height: height, width: width, values: scores, in: engine)
        return SegmentationResult(prediction: Prediction(scores: tensor), milliseconds: 1)
    }

    /// A `width` x `height` picture of distinct pixels, labels in stripes of three classes.
    func scene(width: Int, height: Int) -> Scene {
        let pixels = (0..<width * height).flatMap { i -> [UInt8] in [UInt8(i % 251), UInt8(i / 251 % 256), 77] }
        var scene = Scene(image: RGBImage(width: width, height: height, pixels: pixels), imageName: "t.png",
                          classNames: ["a", "b", "c"], classColors: colors, modelTitle: "test")
        scene.result = result((0..<width * height).map { $0 % width / 3 % 3 }, classes: 3, width: width, height: height)
        return scene
    }

    func context(_ scene: Scene, _ renderer: Renderer) -> KeyContext {
        KeyContext(imageWidth: scene.image.width, imageHeight: scene.image.height, classCounts: [3], strides: [[8]],
                   comparable: [[]], hasTruth: false, hasLabels: false, scales: [.auto], screen: renderer.screenMap)
    }

    func testAClickPutsTheCursorOnThePixelDrawnUnderIt() throws {
        for halfBlocks in [true, false] {
            let renderer = Renderer(halfBlocks: halfBlocks)
            let scene = scene(width: 53, height: 37)
            var state = ViewState()
            _ = renderer.render(scene, state, rows: 40, cols: 160, palette: truecolor)
            XCTAssertEqual(renderer.screenMap.panes.map(\.pane), [0, 1, 2])
            let pane = renderer.screenMap.panes[2]
            let rowsPerCell = halfBlocks ? 2 : 1
            for (col, row) in [(0, 0), (7, 3), (pane.gridWidth - 1, (pane.gridHeight - 1) / rowsPerCell)] {
                _ = KeyMap.apply(.mouse(.init(row: pane.y + row, col: pane.x + col, action: .press)), to: &state,
                                 context(scene, renderer))
                XCTAssertEqual(state.focusedPane, 2)
                // Where the renderer draws the cursor for that pixel is the cell clicked.
                let v = pane.viewport
                XCTAssertEqual(Int((Double(state.cursorX) + 0.5 - v.x) / v.width * Double(pane.gridWidth)), col)
                let drawnRow = Int((Double(state.cursorY) + 0.5 - v.y) / v.height * Double(pane.gridHeight))
                XCTAssertEqual(drawnRow / rowsPerCell, row, "half blocks \(halfBlocks)")
            }
            let cursor = (state.cursorX, state.cursorY)
            _ = KeyMap.apply(.mouse(.init(row: 39, col: 5, action: .press)), to: &state, context(scene, renderer))
            XCTAssertTrue(cursor == (state.cursorX, state.cursorY), "a click on the status line moves nothing")
        }
    }

    /// A renderer drawing panes as pixels with `graphicsProtocol`, in cells of 9x17 pixels.
    func pixelRenderer(_ graphicsProtocol: GraphicsProtocol, cellSizeKnown: Bool = true) -> Renderer {
        let renderer = Renderer()
        renderer.graphics = GraphicsSupport(graphicsProtocol: graphicsProtocol, cellWidth: 9, cellHeight: 17,
                                            cellSizeKnown: cellSizeKnown)
        return renderer
    }

    /// Sixel draws the cursor as an overlay of the pane's layer, so that a move is patched; where the
    /// cell size is a guess, patches of cells would land beside the cells they mean, and a move
    /// changes the layer's key instead (the pane is sent whole).
    func testASixelCursorIsAnOverlayOnlyWhereTheCellSizeIsKnown() {
        for known in [true, false] {
            let renderer = pixelRenderer(.sixel, cellSizeKnown: known)
            let scene = scene(width: 53, height: 37)
            var state = ViewState()
            _ = renderer.render(scene, state, rows: 40, cols: 160, palette: truecolor)
            let before = renderer.placements.first { $0.pane == 0 }!
            state.cursorX += 3
            _ = renderer.render(scene, state, rows: 40, cols: 160, palette: truecolor)
            let after = renderer.placements.first { $0.pane == 0 }!
            XCTAssertNotEqual(before.cursor, after.cursor)
            XCTAssertEqual(before.key == after.key, known, "cell size known: \(known)")
            XCTAssertEqual(after.patches(since: before) != nil, known)
        }
    }

    /// iTerm2's cursor is a marker cell the terminal layer writes over the pixels; the grid keeps
    /// `Cell.underImage` under every painted cell, the marker's too, so that ncurses leaves them be.
    /// A move to another cell keeps the layer's key (the cell left is sent back). Where the cell size
    /// is a guess the marker's cell is not where the terminal puts it: the cursor is then a cross in
    /// the pixels, and a move changes the key.
    func testAnITermCursorIsAMarkerWhereTheCellSizeIsKnown() throws {
        for known in [true, false] {
            let renderer = pixelRenderer(.iterm, cellSizeKnown: known)
            let scene = scene(width: 53, height: 37)
            var state = ViewState()
            func pane() -> (placement: GraphicsPlacement, grid: CellGrid) {
                let grid = renderer.render(scene, state, rows: 40, cols: 160, palette: truecolor)
                return (renderer.placements.first { $0.pane == 0 }!, grid)
            }
            let before = pane()
            let (placement, grid) = before
            for row in 0..<(placement.height + 16) / 17 {
                for column in 0..<(placement.width + 8) / 9 {
                    XCTAssertEqual(grid[placement.row + row, placement.column + column],
                                   Cell.underImage(row: placement.row + row, column: column), "\(row), \(column)")
                }
            }
            XCTAssertEqual(placement.marker != nil, known)
            XCTAssertEqual(placement.cursor == nil, known)
            repeat { state.cursorX += 1 } while pane().placement.marker == placement.marker && known
            let after = pane().placement
            XCTAssertEqual(placement.key == after.key, known, "cell size known: \(known)")
            if let marker = placement.marker {
                XCTAssertEqual(after.marker, .init(column: marker.column + 1, row: marker.row))
                XCTAssertEqual(after.restoredCells(since: placement)?.map { [$0.column, $0.row] },
                               [[after.column + marker.column, after.row + marker.row]])
            }
        }
    }

    /// The cells under images look blank, are never spaces, and make every screen row that holds
    /// them unlike every other, as ncurses compares lines (by their characters) to find scrolls.
    func testRowsUnderImagesAreBlankToTheEyeAndUnlikeEachOther() {
        let rows = (0..<169).map { row in (0..<4).map { Cell.underImage(row: row, column: $0).glyph } }
        XCTAssertEqual(Set(rows).count, rows.count)
        for glyph in Set(rows.joined()) {
            let scalar = Unicode.Scalar(glyph)!
            XCTAssertNotEqual(glyph, 32)
            // Spaces of one column (not U+3000, the ideographic space of two), or the braille blank.
            XCTAssertTrue(scalar.properties.generalCategory == .spaceSeparator && glyph != 0x3000 || glyph == 0x2800)
        }
        let renderer = pixelRenderer(.sixel)
        let grid = renderer.render(scene(width: 53, height: 37), ViewState(), rows: 40, cols: 160, palette: truecolor)
        let paneRows = Set(renderer.placements.flatMap { $0.row..<$0.row + ($0.height + 16) / 17 })
        let texts = paneRows.map { y in (0..<grid.cols).map { grid[y, $0].glyph } }
        XCTAssertEqual(Set(texts).count, paneRows.count, "rows under images alike")
    }

    /// With a graphics protocol a pane's pixels are the cells' pixels: a click still lands on the
    /// pixel drawn in that cell (the one at its centre).
    func testAClickOnAGraphicsPaneLandsOnThePixelDrawnThere() {
        let renderer = pixelRenderer(.kitty)
        let scene = scene(width: 53, height: 37)
        var state = ViewState()
        _ = renderer.render(scene, state, rows: 40, cols: 160, palette: truecolor)
        let pane = renderer.screenMap.panes[1]
        let placement = renderer.placements.first { $0.pane == 1 }!
        XCTAssertEqual([pane.gridWidth, pane.gridHeight], [placement.width, placement.height])
        for (col, row) in [(0, 0), (5, 3), ((pane.gridWidth - 1) / 9, (pane.gridHeight - 1) / 17)] {
            _ = KeyMap.apply(.mouse(.init(row: pane.y + row, col: pane.x + col, action: .press)), to: &state,
                             context(scene, renderer))
            // The image pixel under the centre of that cell's 9x17 pixels.
            let centre = (x: (Double(col) + 0.5) * 9, y: (Double(row) + 0.5) * 17)
            XCTAssertEqual(state.cursorX, min(52, Int(centre.x * 53 / Double(pane.gridWidth))), "column \(col)")
            XCTAssertEqual(state.cursorY, min(36, Int(centre.y * 37 / Double(pane.gridHeight))), "row \(row)")
        }
    }

    func testTheWheelZoomsAroundThePixelUnderThePointer() {
        let renderer = Renderer()
        let scene = scene(width: 53, height: 37)
        var state = ViewState()
        _ = renderer.render(scene, state, rows: 40, cols: 160, palette: truecolor)
        let pane = renderer.screenMap.panes[0]
        let under = pane.pixel(row: pane.y + 2, col: pane.x + 4)!
        _ = KeyMap.apply(.mouse(.init(row: pane.y + 2, col: pane.x + 4, action: .wheelUp)), to: &state,
                         context(scene, renderer))
        XCTAssertEqual(state.zoom, 1)
        XCTAssertTrue((state.cursorX, state.cursorY) == under)
        XCTAssertEqual(state.focusedPane, 0)
        for _ in 0..<10 {
            _ = KeyMap.apply(.mouse(.init(row: 0, col: 0, action: .wheelUp)), to: &state, context(scene, renderer))
        }
        XCTAssertEqual(state.zoom, KeyMap.maximumZoom)
        _ = KeyMap.apply(.mouse(.init(row: 0, col: 0, action: .wheelDown)), to: &state, context(scene, renderer))
        XCTAssertEqual(state.zoom, KeyMap.maximumZoom - 1)
    }

    func testTheListShowsScoresAroundTheCurrentImageAndAClickShowsOne() {
        var scene = scene(width: 20, height: 10)
        let entries = (0..<50).map { ImageListing.Entry(image: 49 - $0, name: "frame\($0).png", score: "\($0).0%") }
        scene.listing = ImageListing(title: "mIoU, lowest first", entries: entries, current: 30)
        var state = ViewState()
        state.showList = true
        let renderer = Renderer()
        let grid = renderer.render(scene, state, rows: 24, cols: 120, palette: truecolor)
        let panel = (0..<23).map { String(grid.line($0).dropFirst(120 - Renderer.panelWidth)) }
        XCTAssertTrue(panel[0].hasPrefix("Images: mIoU, lowest first"), panel[0])
        let current = try! XCTUnwrap(panel.firstIndex { $0.hasPrefix(">31 frame30.png") })
        XCTAssertTrue(panel[current].trimmingCharacters(in: .whitespaces).hasSuffix("30.0%"), panel[current])
        XCTAssertEqual(current, 12, "the current image is kept in the middle of the list")
        XCTAssertEqual(renderer.screenMap.listEntries[current], 19)
        let effect = KeyMap.apply(.mouse(.init(row: current + 1, col: 100, action: .press)), to: &state,
                                  context(scene, renderer))
        XCTAssertEqual(effect, .showImage(18))
        // On the list, the wheel and the title belong to it: the state under it stays as it is.
        let unchanged = state
        for (row, action) in [(current, Terminal.Mouse.Action.wheelUp), (0, .press)] {
            XCTAssertEqual(KeyMap.apply(.mouse(.init(row: row, col: 100, action: action)), to: &state,
                                       context(scene, renderer)), .none)
        }
        XCTAssertEqual(state, unchanged)
    }

    func testSavedPanesAreWhatTheyShowAtImageResolution() throws {
        var scene = scene(width: 53, height: 37)
        let renderer = Renderer()
        var state = ViewState()
        let image = try XCTUnwrap(renderer.picture(ofPane: 0, scene, state))
        XCTAssertEqual(image.name, "image")
        XCTAssertEqual(image.image.pixels, scene.image.pixels, "the photo is saved as it is, not dithered")
        let mask = try XCTUnwrap(renderer.picture(ofPane: 1, scene, state))
        XCTAssertEqual(mask.name, "mask")
        XCTAssertEqual([mask.image.width, mask.image.height], [53, 37])
        let expected = scene.result!.labels.flatMap { [colors[Int($0)].r, colors[Int($0)].g, colors[Int($0)].b] }
        XCTAssertEqual(mask.image.pixels, expected, "exact class colours at every pixel")
        state.maskView = .entropy
        XCTAssertEqual(renderer.picture(ofPane: 1, scene, state)?.name, "entropy")
        XCTAssertNil(renderer.picture(ofPane: 3, scene, state), "no fourth pane outside compare")
        // Compare: B and where A and B differ (magenta).
        let labelsB = (0..<53 * 37).map { $0 < 100 ? 2 : $0 % 53 / 3 % 3 }
        scene.comparison = result(labelsB, classes: 3, width: 53, height: 37)
        scene.comparisonTitle = "test B"
        state.compare = true
        state.maskView = .mask
        XCTAssertEqual(renderer.picture(ofPane: 2, scene, state)?.name, "B-mask")
        let differences = try XCTUnwrap(renderer.picture(ofPane: 3, scene, state))
        XCTAssertEqual(differences.name, "disagreement")
        let magenta = (0..<53 * 37).filter { differences.image.pixels[3 * $0 ..< 3 * $0 + 3] == [255, 0, 255] }
        let differing = zip(scene.result!.labels, scene.comparison!.labels).enumerated()
            .filter { $1.0 != $1.1 }.map(\.offset)
        XCTAssertEqual(magenta, differing)
    }

    func testTheFocusedPaneIsMarkedAndNarrowTerminalsReachTheLegend() {
        let scene = scene(width: 53, height: 37)
        let renderer = Renderer()
        var state = ViewState()
        var grid = renderer.render(scene, state, rows: 40, cols: 160, palette: truecolor)
        XCTAssertTrue(grid.line(0).contains("▶ mask: test"), grid.line(0))
        // 40x12: one pane at a time, and after the panes the panel with the legend.
        grid = renderer.render(scene, state, rows: 12, cols: 40, palette: truecolor)
        XCTAssertTrue(renderer.screenMap.panelInPanes)
        var shown: [String] = []
        for _ in 0..<4 {
            _ = KeyMap.apply(.character("w"), to: &state, context(scene, renderer))
            grid = renderer.render(scene, state, rows: 12, cols: 40, palette: truecolor)
            shown.append(grid.line(0).trimmingCharacters(in: .whitespaces))
        }
        XCTAssertEqual(shown.map { String($0.prefix(9)) }, ["boundarie", "Inspector", "image 53x", "mask: tes"])
        // 80x24, three panes and no panel at the side: the legend is one `w` past the panes.
        state.focusedPane = 3
        grid = renderer.render(scene, state, rows: 24, cols: 80, palette: truecolor)
        XCTAssertTrue((0..<21).contains { grid.line($0).contains("Legend") })
        XCTAssertTrue((0..<21).contains { grid.line($0).contains(" 2 c") }, "every class of the legend")
    }

    func testMapViewsHaveAColourScale() {
        let scene = scene(width: 20, height: 10)
        var state = ViewState()
        for (view, meaning) in [(MaskView.heatmap, "probability of a"), (.confidence, "top-class probability"),
                                (.entropy, "entropy: 0 sure, 1 uniform")] {
            state.maskView = view
            let grid = Renderer().render(scene, state, rows: 40, cols: 160, palette: truecolor)
            guard let row = (0..<40).first(where: { grid.line($0).contains(meaning) }) else {
                return XCTFail("no scale for \(view)")
            }
            let x = 160 - Renderer.panelWidth
            XCTAssertEqual(grid[row + 1, x + 3].bg, truecolor.color(Colormap.heat(0)))
            XCTAssertEqual(grid[row + 1, x + 3 + 23].bg, truecolor.color(Colormap.heat(1)))
        }
        state.maskView = .mask
        let grid = Renderer().render(scene, state, rows: 40, cols: 160, palette: truecolor)
        XCTAssertFalse((0..<40).contains { grid.line($0).contains("Colour scale") })
    }

    func testDisagreementOrderNeedsCompareAndGoesWithIt() {
        let context = KeyContext(imageWidth: 4, imageHeight: 4, classCounts: [3, 3], strides: [[8], [8]],
                                 comparable: [[1], [0]], hasTruth: false, hasLabels: true, scales: [.auto])
        var state = ViewState()
        var orders: [ImageOrder] = []
        for _ in 0..<3 {
            _ = KeyMap.apply(.character("O"), to: &state, context)
            orders.append(state.order)
        }
        XCTAssertEqual(orders, [.worstFirst, .leastConfident, .name])
        _ = KeyMap.apply(.character("c"), to: &state, context)
        for _ in 0..<3 { _ = KeyMap.apply(.character("O"), to: &state, context) }
        XCTAssertEqual(state.order, .mostDisagreement)
        _ = KeyMap.apply(.character("c"), to: &state, context)
        XCTAssertEqual(state.order, .name, "compare off: the order by disagreement goes")
    }

    /// SGR mouse reports, which the viewer reads itself where ncurses reads only X10 (tmux, screen).
    func testSGRMouseReports() {
        func mouse(_ row: Int, _ col: Int, _ action: Terminal.Mouse.Action) -> Terminal.Key {
            .mouse(.init(row: row, col: col, action: action))
        }
        XCTAssertEqual(Terminal.sgrMouse("<0;300;12", final: "M"), mouse(11, 299, .press))
        XCTAssertEqual(Terminal.sgrMouse("<4;1;1", final: "M"), mouse(0, 0, .press), "shift-click is a click")
        XCTAssertEqual(Terminal.sgrMouse("<64;5;6", final: "M"), mouse(5, 4, .wheelUp))
        XCTAssertEqual(Terminal.sgrMouse("<65;5;6", final: "M"), mouse(5, 4, .wheelDown))
        let ignored: [(String, Unicode.Scalar)] = [
            ("<0;300;12", "m"), ("<32;3;3", "M"), ("<2;3;3", "M"), ("<0;0;3", "M"), ("<0;3", "M"), ("0;3;3", "M"),
            ("<0;x;3", "M"), ("<0;3;3", "~"),
        ]
        for (parameters, final) in ignored {
            XCTAssertNil(Terminal.sgrMouse(parameters, final: final), "\(parameters)\(final)")
        }
    }
}
