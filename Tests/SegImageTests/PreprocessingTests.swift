import SegImage
import XCTest

final class PreprocessingTests: XCTestCase {
    func testColorizeAndOverlay() {
        let palette = Palette(colors: [[0, 0, 0], [200, 100, 0]])
        let mask = palette.colorize([0, 1], width: 2, height: 1)
        XCTAssertEqual(mask.pixels, [0, 0, 0, 200, 100, 0])
        let picture = RGBImage(width: 2, height: 1, pixels: [100, 100, 100, 0, 0, 0])
        XCTAssertEqual(palette.overlay([0, 1], on: picture, opacity: 0.5).pixels, [50, 50, 50, 100, 50, 0])
    }
}
