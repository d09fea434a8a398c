import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline
@testable import SegTUI
import XCTest

/// CJK and emoji take two terminal columns: text, padding and the legend count columns, not characters.
final class WideTextTests: XCTestCase {
    let context = EngineContext()

    override func setUp() { setlocale(LC_CTYPE, "C.UTF-8") }

    func testWideCharactersTakeTwoCells() {
        var grid = CellGrid(rows: 1, cols: 8)
        grid.text("道路 car", y: 0, x: 0)
        XCTAssertEqual(grid.cells.map(\.glyph), [0x9053, Cell.continuation, 0x8DEF, Cell.continuation, 32, 99, 97, 114])
        XCTAssertEqual(grid.line(0), "道路 car")
        // A wide character that does not fit is not cut in half.
        var narrow = CellGrid(rows: 1, cols: 3)
        narrow.text("a道路", y: 0, x: 0)
        XCTAssertEqual(narrow.cells.map(\.glyph), [97, 0x9053, Cell.continuation])
    }

    func testPaddingCountsColumns() {
        XCTAssertEqual(CellGrid.padded("道路", to: 6), "道路  ")
        XCTAssertEqual(CellGrid.padded("🚗car", to: 4), "🚗ca")
        XCTAssertEqual(CellGrid.padded("road", to: 6), "road  ")
    }

    /// The shares in the legend line up whatever the width of the class names before them.
    func testLegendColumnsAlignWithWideNames() {
        let picture = RGBImage(width: 8, height: 4, pixels: [UInt8](repeating: 120, count: 8 * 4 * 3))
        var scene = Scene(image: picture, imageName: "x.png", classNames: ["道路", "road", "🚗"],
                          classColors: [RGB(10, 20, 30), RGB(200, 100, 50), RGB(0, 160, 80)], modelTitle: "m")
        var scores = [Float](repeating: 0, count: 3 * 32)
        for i in 0..<32 { scores[(i % 3) * 32 + i] = 5 }
        scene.result = SegmentationResult(prediction: Prediction(scores: Tensor(channels: 3, height: 4, width: 8,
                                                                                values: scores, in: context)), milliseconds: 1)
        let palette = TerminalPalette(mode: .truecolor, classColors: scene.classColors)
        let grid = Renderer().render(scene, ViewState(), rows: 30, cols: 120, palette: palette)
        // The column (in cells) where each legend row's share ends.
        let ends = (0..<grid.rows).compactMap { y -> Int? in
            let glyphs = (0..<grid.cols).map { grid[y, $0].glyph }
            guard let percent = glyphs.lastIndex(of: 37), glyphs.contains(where: { [0x9053, 114, 0x1F697].contains($0) })
            else { return nil }
            return percent
        }
        XCTAssertGreaterThanOrEqual(ends.count, 3, "three legend rows with shares")
        XCTAssertEqual(Set(ends.suffix(3)).count, 1, "shares end in the same column: \(ends)")
    }
}
