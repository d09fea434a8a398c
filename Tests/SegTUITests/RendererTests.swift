import SegEngine
import SegImage
import SegModels
import SegPipeline
@testable import SegTUI
import XCTest

/// The renderer cell by cell: a pure function of scene, state, size and colour mode.
final class RendererTests: XCTestCase {
    let context = EngineContext()

    let red = RGB(255, 0, 0), green = RGB(0, 255, 0), blue = RGB(0, 0, 255), white = RGB(255, 255, 255)
    let truecolor = TerminalPalette(mode: .truecolor, classColors: [RGB(10, 20, 30), RGB(200, 100, 50), RGB(0, 160, 80)])

    func direct(_ c: RGB) -> Int32 { Int32(c.r) << 16 | Int32(c.g) << 8 | Int32(c.b) }

    /// A result whose label at each pixel is `labels[i]` (logits 10 for that class, 0 elsewhere).
    func result(_ labels: [Int], classes: Int, width: Int, height: Int) -> SegmentationResult {
        var scores = [Float](repeating: 0, count: classes * width * height)
        for (i, label) in labels.enumerated() { scores[label * width * height + i] = 10 }
        let tensor = Tensor(channels: classes, height: height, width: width, values: scores, in: context)
        return SegmentationResult(prediction: Prediction(scores: tensor), milliseconds: 1)
    }

    func scene(_ image: RGBImage, labels: [Int]? = nil, classes: Int = 3) -> Scene {
        var scene = Scene(image: image, imageName: "test.png", classNames: (0..<classes).map { "class\($0)" },
                          classColors: [RGB(10, 20, 30), RGB(200, 100, 50), RGB(0, 160, 80)], modelTitle: "test model")
        scene.result = labels.map { result($0, classes: classes, width: image.width, height: image.height) }
        return scene
    }

    func image(_ width: Int, _ height: Int, _ colors: [RGB]) -> RGBImage {
        RGBImage(width: width, height: height, pixels: colors.flatMap { [$0.r, $0.g, $0.b] })
    }

    /// Cells of the first pane (the image), top-left of its drawn area.
    func imagePane(_ grid: CellGrid, layout: Renderer.Layout) -> [[Cell]] {
        let pane = layout.panes[0]
        return (pane.y..<pane.y + pane.height).map { y in (pane.x..<pane.x + pane.width).map { grid[y, $0] } }
    }

    func testMagnifiedImageShowsExactPixelsTopAsForegroundBottomAsBackground() {
        // 2x2 image: red green / blue white, far smaller than the pane: nearest sampling, exact colours.
        let picture = image(2, 2, [red, green, blue, white])
        var state = ViewState()
        state.cursorX = 1; state.cursorY = 1
        let grid = Renderer().render(scene(picture), state, rows: 40, cols: 120, palette: truecolor)
        let layout = Renderer.layout(rows: 40, cols: 120, imageWidth: 2, imageHeight: 2, singlePane: false)
        let cells = imagePane(grid, layout: layout).joined().filter { $0.glyph == Cell.upperHalf }
        XCTAssertFalse(cells.isEmpty)
        // The pane's first drawn cell covers the top-left pixel's upper rows: red over red.
        let first = cells[0]
        XCTAssertEqual(first.fg, direct(red))
        XCTAssertEqual(first.bg, direct(red))
        let colours = Set(cells.flatMap { [$0.fg, $0.bg] })
        // Exactly the four image colours, plus the black cursor drawn on the white pixel.
        XCTAssertEqual(colours, Set([red, green, blue, white].map(direct) + [0x010101]))
    }

    func testAreaAverageIsAnExactBoxFilter() {
        // 4x2 -> 2x1: each output pixel is the mean of a 2x2 block.
        let pixels: [UInt8] = [0, 0, 0, 100, 100, 100, 10, 20, 30, 30, 40, 50,
                               200, 200, 200, 100, 100, 100, 50, 60, 70, 70, 80, 90]
        let out = Sampling.averageRGB(pixels, width: 4, height: 2, viewport: Viewport(x: 0, y: 0, width: 4, height: 2),
                                      gridWidth: 2, gridHeight: 1)
        XCTAssertEqual(out, [RGB(100, 100, 100), RGB(40, 50, 60)])
        // Fractional coverage: 3 -> 2 weighs the middle pixel half to each side.
        let row = Sampling.average([0, 30, 90], width: 3, height: 1, viewport: Viewport(x: 0, y: 0, width: 3, height: 1),
                                   gridWidth: 2, gridHeight: 1)
        XCTAssertEqual(row[0], (0 * 1 + 30 * 0.5) / 1.5, accuracy: 1e-5)
        XCTAssertEqual(row[1], (30 * 0.5 + 90 * 1) / 1.5, accuracy: 1e-5)
    }

    func testMaskDownscalingNeverInventsAColour() {
        // A fine checkerboard of three classes shrunk 8x: every mask cell must be a class colour.
        let (w, h) = (96, 64)
        let labels = (0..<w * h).map { i in ((i % w) / 3 + (i / w) / 2) % 3 }
        let picture = image(w, h, Array(repeating: RGB(128, 128, 128), count: w * h))
        let grid = Renderer().render(scene(picture, labels: labels), ViewState(), rows: 20, cols: 110, palette: truecolor)
        let layout = Renderer.layout(rows: 20, cols: 110, imageWidth: w, imageHeight: h, singlePane: false)
        let mask = layout.panes[1]
        let allowed = Set(truecolor.classColors + [0x010101, direct(white)])  // classes, plus the cursor
        var seen = Set<Int32>()
        for y in mask.y..<mask.y + mask.height {
            for x in mask.x..<mask.x + mask.width where grid[y, x].glyph == Cell.upperHalf {
                seen.insert(grid[y, x].fg)
                if grid[y, x].bg != -1 { seen.insert(grid[y, x].bg) }
            }
        }
        XCTAssertTrue(seen.isSubset(of: allowed), "colours that are no class: \(seen.subtracting(allowed))")
        XCTAssertGreaterThanOrEqual(seen.intersection(Set(truecolor.classColors)).count, 2)
    }

    /// The ground-truth view draws the labels, not the prediction; unlabelled pixels show the image dimmed.
    func testTruthViewDrawsTheLabels() {
        let (w, h) = (32, 16)
        let picture = image(w, h, Array(repeating: white, count: w * h))
        var scene = scene(picture, labels: (0..<w * h).map { $0 % 2 })  // the prediction: classes 0 and 1
        scene.truth = (0..<w * h).map { $0 % w < w / 2 ? 2 : 255 }  // truth: class 2 left, unlabelled right
        var state = ViewState()
        state.maskView = .truth
        let grid = Renderer().render(scene, state, rows: 20, cols: 110, palette: truecolor)
        let mask = Renderer.layout(rows: 20, cols: 110, imageWidth: w, imageHeight: h, singlePane: false).panes[1]
        var seen = Set<Int32>()
        for y in mask.y..<mask.y + mask.height {
            for x in mask.x..<mask.x + mask.width where grid[y, x].glyph == Cell.upperHalf {
                seen.formUnion([grid[y, x].fg, grid[y, x].bg].filter { $0 != -1 })
            }
        }
        let dimmedWhite = direct(white.mixed(with: RGB(0, 0, 0), 0.6))
        XCTAssertTrue(seen.contains(truecolor.classColors[2]) && seen.contains(dimmedWhite), "\(seen)")
        XCTAssertFalse(seen.contains(truecolor.classColors[0]) || seen.contains(truecolor.classColors[1]),
                       "the prediction's classes are not drawn")
        XCTAssertTrue((0..<20).map(grid.line).joined().contains("ground truth: test model"))
    }

    /// The errors view's key shows its colours beside their meanings.
    func testErrorsKeyHasItsSwatches() throws {
        let picture = image(2, 2, [red, green, blue, white])
        var scene = scene(picture, labels: [0, 1, 2, 1])
        scene.truth = [0, 1, 1, 255]
        var state = ViewState()
        state.maskView = .errors
        let grid = Renderer().render(scene, state, rows: 40, cols: 120, palette: truecolor)
        let row = try XCTUnwrap((0..<40).first { grid.line($0).contains("    wrong") })
        let x = try XCTUnwrap(grid.line(row).range(of: "    wrong")).lowerBound.utf16Offset(in: grid.line(row))
        XCTAssertEqual(grid[row, x + 1].bg, direct(RGB(230, 30, 30)))
        XCTAssertEqual(grid[row, x + 2].bg, direct(RGB(230, 30, 30)))
    }

    func testMajorityVoteAndItsTieRule() {
        let labels: [Int32] = [1, 1, 2, 0,   // left block: 1,1,1,2 -> 1; right block: 2,0,0,2 -> tie 0/2
                               1, 2, 0, 2]
        let out = Sampling.majority(labels, width: 4, height: 2, classes: 3, viewport: Viewport(x: 0, y: 0, width: 4, height: 2),
                                    gridWidth: 2, gridHeight: 1)
        XCTAssertEqual(out[0], 1)
        // Tie between 0 and 2: the pixel at the block's centre (row 1, column 3) is 2, so 2 wins.
        XCTAssertEqual(out[1], 2)
    }

    func testOnePixelBordersSurviveDownscaling() {
        // A 1-pixel vertical line in a 300x200 map, shown about 10x smaller, stays fully white.
        var values = [Float](repeating: 0, count: 300 * 200)
        for y in 0..<200 { values[y * 300 + 151] = 1 }
        let out = Sampling.maximum(values, width: 300, height: 200, viewport: Viewport(x: 0, y: 0, width: 300, height: 200),
                                   gridWidth: 30, gridHeight: 20)
        for row in 0..<20 { XCTAssertEqual(out[row * 30 + 15], 1, "row \(row)") }
        XCTAssertEqual(out.filter { $0 > 0 }.count, 20, "and nowhere else")
    }

    func testOddPixelHeightLeavesTheLastLowerHalfDefault() throws {
        // Find an image height whose fitted pixel grid is odd in this terminal, then check its last row.
        let (rows, cols) = (21, 40)
        for height in 3...12 {
            let layout = Renderer.layout(rows: rows, cols: cols, imageWidth: 16, imageHeight: height, singlePane: false)
            let pane = layout.panes[0]
            let size = Viewport(x: 0, y: 0, width: 16, height: Double(height)).gridSize(maxWidth: pane.width, maxHeight: pane.height * 2)
            guard size.height % 2 == 1 else { continue }
            var state = ViewState()
            state.cursorX = 0; state.cursorY = 0
            let grid = Renderer().render(scene(image(16, height, Array(repeating: green, count: 16 * height))), state,
                                         rows: rows, cols: cols, palette: truecolor)
            let lastRow = pane.y + size.height / 2
            let column = pane.x + (pane.width - size.width) / 2 + size.width - 1
            XCTAssertEqual(grid[lastRow, column].glyph, Cell.upperHalf)
            XCTAssertEqual(grid[lastRow, column].fg, direct(green))
            XCTAssertEqual(grid[lastRow, column].bg, -1, "no lower pixel: the terminal's default background")
            XCTAssertEqual(grid[lastRow - 1, column].bg, direct(green))
            return
        }
        XCTFail("no image height gave an odd pixel grid")
    }

    func testAspectRatioIsKept() {
        // 200x100 into at most 40x80 pixels: 40x20.
        let size = Viewport(x: 0, y: 0, width: 200, height: 100).gridSize(maxWidth: 40, maxHeight: 80)
        XCTAssertEqual(size.width, 40)
        XCTAssertEqual(size.height, 20)
        let tall = Viewport(x: 0, y: 0, width: 100, height: 400).gridSize(maxWidth: 40, maxHeight: 80)
        XCTAssertEqual(tall.width, 20)
        XCTAssertEqual(tall.height, 80)
    }

    func test256ColourQuantisationUsesOnlyTheFixedPaletteAndKeepsClassesDistinct() {
        XCTAssertEqual(TerminalPalette.nearest256(RGB(255, 0, 0)), 196)
        XCTAssertEqual(TerminalPalette.nearest256(RGB(128, 128, 128)), 244)  // grey ramp 8 + 10 * 12
        XCTAssertEqual(TerminalPalette.nearest256(RGB(0, 0, 0)), 16)  // the cube's black, not index 0
        XCTAssertEqual(TerminalPalette.rgb(index256: 67), RGB(95, 135, 175))
        let voc = ClassPreset.vocColors(count: 21).map(RGB.init)
        let palette = TerminalPalette(mode: .palette256, classColors: voc)
        XCTAssertEqual(Set(palette.classColors).count, 21, "every class keeps its own colour")
        XCTAssertTrue(palette.classColors.allSatisfy { $0 >= 16 && $0 <= 255 })
        // Two classes that quantise to the same index get different ones.
        let close = TerminalPalette(mode: .palette256, classColors: [RGB(200, 0, 0), RGB(201, 0, 0)])
        XCTAssertNotEqual(close.classColors[0], close.classColors[1])
        XCTAssertEqual(TerminalPalette(mode: .ansi8, classColors: []).color(RGB(250, 10, 10)), 1)
        // 16 colours keep CamVid's 11 classes apart; 8 colours as many as they can.
        let camvid = ClassPreset.all.first { $0.name == "camvid" }!.classColors.map(RGB.init)
        XCTAssertEqual(Set(TerminalPalette(mode: .ansi16, classColors: camvid).classColors).count, 11)
        XCTAssertEqual(Set(TerminalPalette(mode: .ansi8, classColors: camvid).classColors).count, 8)
    }

    /// The help fits 80x24 whole: every line of it, key and meaning, uncut.
    func testHelpFitsAnEightyByTwentyFourTerminal() {
        var state = ViewState()
        state.showHelp = true
        let grid = Renderer().render(scene(image(2, 2, [red, green, blue, white])), state, rows: 24, cols: 80,
                                     palette: truecolor)
        let screen = (0..<24).map(grid.line)
        for (key, meaning) in Renderer.keys {
            let line = key.padding(toLength: 13, withPad: " ", startingAt: 0) + meaning
            XCTAssertTrue(screen.contains { $0.contains(line) },
                          "'\(key) \(meaning)' is cut or missing:\n\(screen.joined(separator: "\n"))")
        }
    }

    func testTooSmallTerminalSaysSo() {
        let grid = Renderer().render(scene(image(2, 2, [red, green, blue, white])), ViewState(), rows: 10, cols: 20, palette: truecolor)
        XCTAssertTrue((0..<10).map(grid.line).joined().contains("terminal too small"))
    }

    func testStatusLineNamesImageModelStrideAndColourMode() {
        var state = ViewState()
        state.outputStride = 16
        let grid = Renderer().render(scene(image(2, 2, [red, green, blue, white]), labels: [0, 1, 2, 1]), state, rows: 30,
                                     cols: 120, palette: truecolor)
        let status = grid.line(29)
        for part in ["test.png 2x2", "test model", "OS 16", "24-bit"] { XCTAssertTrue(status.contains(part), status) }
    }

    /// A 2x2 picture labelled 0 1 / 2 1: A gets it right, B calls the 2 a 1; both scored, compare on.
    func comparedScene(titleB: String) -> (scene: Scene, state: ViewState) {
        var scene = scene(image(2, 2, [red, green, blue, white]), labels: [0, 1, 2, 1])
        scene.comparisonTitle = titleB
        scene.comparison = result([0, 1, 1, 1], classes: 3, width: 2, height: 2)
        var (truthA, truthB) = (ConfusionMatrix(classes: 3), ConfusionMatrix(classes: 3))
        truthA.add(prediction: scene.result!.labels, truth: [0, 1, 2, 1], ignore: 255)
        truthB.add(prediction: scene.comparison!.labels, truth: [0, 1, 2, 1], ignore: 255)
        (scene.agreement, scene.comparisonAgreement) = (truthA, truthB)
        var state = ViewState()
        state.compare = true
        return (scene, state)
    }

    /// Compare keeps the input in view, names both files, counts the differing pixels and shows B's
    /// metrics beside A's.
    func testCompareShowsTheInputBothFilesTheDifferenceAndBothScores() {
        var (scene, state) = comparedScene(titleB: "test model")
        scene.modelFile = "first.safetensors"
        scene.comparisonFile = "second.safetensors"
        let grid = Renderer().render(scene, state, rows: 40, cols: 200, palette: truecolor)
        let screen = (0..<40).map(grid.line).joined(separator: "\n")
        for title in ["image 2x2", "A first.safetensors: mask, test model", "B second.safetensors: mask, test model",
                      "A ≠ B: 1 px (25.0%)"] {
            XCTAssertTrue(screen.contains(title), "missing '\(title)' in:\n\(screen)")
        }
        let status = grid.line(39)
        XCTAssertTrue(status.contains("acc 100.0% mIoU 100.0%"), status)
        XCTAssertTrue(status.contains("B acc 75.0% mIoU 55.6%"), status)
    }

    /// At 80 columns compare's status line still ends with the help hint: both models' metrics
    /// take their short form ("90.6/64.2%") once everything that may go has gone.
    func testCompareStatusAt80ColumnsShortensWordsAndKeepsTheHelpHint() {
        var (scene, state) = comparedScene(titleB: "refinenet resnet")
        scene.imageName = "0001TP_008550.png"
        scene.position = "12/233"
        scene.modelTitle = "deeplabv3plus resnet"
        let status = Renderer().render(scene, state, rows: 24, cols: 80, palette: truecolor).line(23)
        for part in ["12/233 0001TP_008550.png", "OS 8", "100.0/100.0%", "B 75.0/55.6%"] {
            XCTAssertTrue(status.contains(part), "'\(part)' missing from: \(status)")
        }
        XCTAssertTrue(status.trimmingCharacters(in: .whitespaces).hasSuffix("? help"), status)
        XCTAssertLessThanOrEqual(status.count, 80)
    }

    func testBPicksTheComparedModelAmongThoseWithTheSameClasses() {
        let context = KeyContext(imageWidth: 4, imageHeight: 4, classCounts: [3, 3, 5, 3],
                                 strides: [[8], [8], [8], [8]],
                                 comparable: [[1, 3], [3, 0], [], [0, 1]], hasTruth: false, hasLabels: false,
                                 scales: [.auto])
        var state = ViewState()
        XCTAssertEqual(KeyMap.apply(.character("b"), to: &state, context),
                       .message("b picks compare's model B: press c first"))
        _ = KeyMap.apply(.character("c"), to: &state, context)
        _ = KeyMap.apply(.character("b"), to: &state, context)
        XCTAssertEqual(state.comparisonModel, 3)
        _ = KeyMap.apply(.character("b"), to: &state, context)
        XCTAssertEqual(state.comparisonModel, 1)
        _ = KeyMap.apply(.character("m"), to: &state, context)
        XCTAssertEqual(state.modelIndex, 1)
        XCTAssertNil(state.comparisonModel, "A became the model B was: B goes back to the default")
        _ = KeyMap.apply(.character("m"), to: &state, context)
        XCTAssertFalse(state.compare, "model 2 has nothing to compare with")
    }
}
