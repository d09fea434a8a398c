import SegEngine
import SegImage
import SegModels
import SegPipeline
@testable import SegTUI
import XCTest

/// The viewer never traps, whatever the keys, the terminal size and the image (`+` five times once
/// divided by zero): 100,000 seeded random key sequences through the key handler on images from
/// 1x1 to 6000x4000 (at their display size, as the viewer draws them), the view state's invariants
/// checked after every key, and every 2500th sequence's end state rendered at a terminal from 1x1 to
/// 300x100 (rendering is what takes the time in a debug build; the edge sizes are rendered apart).
final class KeyFuzzTests: XCTestCase {
    let engine = EngineContext()

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state ^ (state >> 29)
        }
    }

    static let keys: [Terminal.Key] = [.up, .down, .left, .right, .shiftLeft, .shiftRight, .shiftUp, .shiftDown, .backTab,
                                       .resize]
        + "hjklHJKLmMOovcb[]\t SnprwsS+=-?qxgit\u{1b}\r09".map { .character($0) }

    /// A screen map as a frame may have left it, stale ones included (panes showing more or other
    /// than the image, list rows anywhere).
    static func randomScreen(_ image: (width: Int, height: Int), _ random: inout Generator) -> ScreenMap {
        var screen = ScreenMap()
        screen.panelInPanes = Bool.random(using: &random)
        for pane in 0..<Int.random(in: 0...4, using: &random) {
            let viewport = Viewport(x: Double.random(in: -2...Double(image.width), using: &random),
                                    y: Double.random(in: -2...Double(image.height), using: &random),
                                    width: Double.random(in: 0.01...Double(2 * image.width), using: &random),
                                    height: Double.random(in: 0.01...Double(2 * image.height), using: &random))
            screen.panes.append(PaneGeometry(pane: pane, x: Int.random(in: 0...300, using: &random),
                                             y: Int.random(in: 0...100, using: &random),
                                             gridWidth: Int.random(in: 1...300, using: &random),
                                             gridHeight: Int.random(in: 1...200, using: &random),
                                             pixelColumnsPerCell: Int.random(in: 1...20, using: &random),
                                             pixelRowsPerCell: Int.random(in: 1...40, using: &random),
                                             viewport: viewport))
        }
        for row in 0..<Int.random(in: 0...30, using: &random) {
            screen.listEntries[row] = Int.random(in: 0...500, using: &random)
        }
        screen.listColumns = 0..<Int.random(in: 0...300, using: &random)
        return screen
    }

    static func randomMouse(_ random: inout Generator) -> Terminal.Key {
        let actions: [Terminal.Mouse.Action] = [.press, .wheelUp, .wheelDown]
        let (row, col) = (Int.random(in: -2...102, using: &random), Int.random(in: -2...302, using: &random))
        return .mouse(.init(row: row, col: col, action: actions.randomElement(using: &random)!))
    }

    /// The first broken invariant of `state`, or nil.
    static func violation(_ state: ViewState, width: Int, height: Int, classCounts: [Int], comparable: [[Int]])
        -> String? {
        if !(0..<width).contains(state.cursorX) || !(0..<height).contains(state.cursorY) { return "cursor outside the image" }
        if !(0...KeyMap.maximumZoom).contains(state.zoom) { return "zoom \(state.zoom)" }
        if !(0...1).contains(state.opacity) { return "opacity \(state.opacity)" }
        if !(0...4).contains(state.focusedPane) { return "focused pane \(state.focusedPane)" }
        if state.order == .mostDisagreement && !state.compare { return "order by disagreement outside compare" }
        if !classCounts.indices.contains(state.modelIndex) { return "model \(state.modelIndex)" }
        if !(0..<classCounts[state.modelIndex]).contains(state.selectedClass) { return "class \(state.selectedClass)" }
        if let model = state.comparisonModel, !comparable[state.modelIndex].contains(model) {
            return "model B \(model)"
        }
        return nil
    }

    func testRandomKeysNeverTrapAndKeepTheStateValid() {
        var random = Generator(state: 20261206)
        let palette = TerminalPalette(mode: .palette256, classColors: (0..<11).map { RGB(UInt8($0 * 20), 90, 200) })
        for sequence in 0..<100_000 {
            let source = sequence % 10 == 0
                ? (width: Int.random(in: 1...6000, using: &random), height: Int.random(in: 1...4000, using: &random))
                : (width: Int.random(in: 1...120, using: &random), height: Int.random(in: 1...90, using: &random))
            let display = DisplayPicture.size(source: source, workingSizes: [source])
            let models = Int.random(in: 1...3, using: &random)
            let classCounts = (0..<models).map { _ in Int.random(in: 1...11, using: &random) }
            let context = KeyContext(
                imageWidth: display.width, imageHeight: display.height,
                classCounts: classCounts,
                strides: (0..<models).map { _ in [[8, 16, 32], [32], [8, 16]].randomElement(using: &random)! },
                comparable: (0..<models).map { index in
                    (1..<models).map { (index + $0) % models }.filter { _ in Bool.random(using: &random) }
                },
                hasTruth: Bool.random(using: &random), hasLabels: Bool.random(using: &random), scales: [.auto, .native],
                screen: Self.randomScreen(display, &random))
            var state = ViewState()
            state.cursorX = display.width / 2
            state.cursorY = display.height / 2
            for _ in 0..<Int.random(in: 1...20, using: &random) {
                let key = Int.random(in: 0..<5, using: &random) == 0 ? Self.randomMouse(&random)
                    : Self.keys.randomElement(using: &random)!
                _ = KeyMap.apply(key, to: &state, context)
                if let broken = Self.violation(state, width: display.width, height: display.height,
                                               classCounts: classCounts, comparable: context.comparable) {
                    return XCTFail("sequence \(sequence), after \(key): \(broken)")
                }
            }
            guard sequence % 2500 == 0 else { continue }
            // What the viewer would draw for that state, at a random terminal size.
            state.outputStride = context.strides[state.modelIndex][0]
            var picture = RGBImage(width: display.width, height: display.height, filledWith: 90)
            for i in stride(from: 0, to: picture.pixels.count, by: 7) { picture.pixels[i] = UInt8(truncatingIfNeeded: i) }
            let classes = classCounts[state.modelIndex]
            var scene = Scene(image: picture, imageName: "fuzz.png", classNames: (0..<classes).map { "class \($0)" },
                              classColors: (0..<classes).map { RGB(UInt8($0 * 20), 90, 200) }, modelTitle: "fuzz")
            if state.compare { scene.comparisonTitle = "fuzz B" }  // B's result may not be in yet
            if display.width * display.height <= 120 * 90 {
                let scores = Tensor(channels: classes, height: display.height, width: display.width,
                                    values: (0..<classes * display.width * display.height).map { Float(($0 * 7919) % 13) },
                                    in: engine)
                scene.result = SegmentationResult(prediction: Prediction(scores: scores), milliseconds: 1)
                if state.compare { scene.comparison = scene.result }
                if context.hasTruth { scene.truth = (0..<display.width * display.height).map { UInt8($0 % (classes + 1)) } }
                if context.hasTruth && state.compare { scene.comparisonAgreement = ConfusionMatrix(classes: classes) }
            }
            let (cols, rows) = (Int.random(in: 1...300, using: &random), Int.random(in: 1...100, using: &random))
            let renderer = Renderer()
            renderer.graphics = [.halfBlocks, GraphicsSupport(graphicsProtocol: .kitty),
                                 GraphicsSupport(graphicsProtocol: .sixel, cellWidth: 7, cellHeight: 15)][sequence % 3]
            let grid = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
            XCTAssertEqual(grid.cells.count, rows * cols)
        }
    }

    /// The edge sizes of the terminal, each with the cursor in a corner, zoomed all the way in.
    func testEdgeTerminalSizesRender() {
        let picture = RGBImage(width: 7, height: 3, filledWith: 120)
        let scores = Tensor(channels: 2, height: 3, width: 7, values: (0..<42).map { Float($0 % 5) }, in: engine)
        var scene = Scene(image: picture, imageName: "edge.png", classNames: ["a", "b"], classColors: [RGB(1, 2, 3), RGB(200, 0, 0)],
                          modelTitle: "edge")
        scene.result = SegmentationResult(prediction: Prediction(scores: scores), milliseconds: 1)
        var state = ViewState()
        (state.cursorX, state.cursorY, state.zoom) = (6, 2, KeyMap.maximumZoom)
        for (cols, rows) in [(1, 1), (1, 100), (300, 1), (39, 11), (40, 12), (80, 24), (300, 100)] {
            for mode in [ColorMode.truecolor, .ansi8] {
                let grid = Renderer().render(scene, state, rows: rows, cols: cols,
                                             palette: TerminalPalette(mode: mode, classColors: scene.classColors))
                XCTAssertEqual(grid.cells.count, rows * cols)
            }
        }
    }

    func testJumpPromptEditing() {
        let context = KeyContext(imageWidth: 10, imageHeight: 10, classCounts: [3], strides: [[8]],
                                 comparable: [[]], hasTruth: false, hasLabels: false, scales: [.auto])
        var state = ViewState()
        XCTAssertEqual(KeyMap.apply(.character("g"), to: &state, context), .none)
        for key in "12\u{7f}3x" { _ = KeyMap.apply(.character(key), to: &state, context) }
        XCTAssertEqual(state.jumpPrompt, "13x")
        XCTAssertEqual(KeyMap.apply(.character("q"), to: &state, context), .none, "q is typed, it does not quit")
        XCTAssertEqual(KeyMap.apply(.character("\r"), to: &state, context), .jump("13xq"))
        XCTAssertNil(state.jumpPrompt)
        _ = KeyMap.apply(.character("g"), to: &state, context)
        XCTAssertEqual(KeyMap.apply(.character("\u{1b}"), to: &state, context), .none)
        XCTAssertNil(state.jumpPrompt)
    }
}
