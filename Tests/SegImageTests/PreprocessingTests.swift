import SegEngine
import SegImage
import XCTest

final class PreprocessingTests: XCTestCase {
    func testImageNetNormalisationIsPerChannelInRGBOrder() {
        let image = RGBImage(width: 1, height: 1, pixels: [255, 0, 51])
        let x = Normalization.imagenet.tensor(from: image).toArray()
        XCTAssertEqual(x[0], (1 - 0.485) / 0.229, accuracy: 1e-6)
        XCTAssertEqual(x[1], (0 - 0.456) / 0.224, accuracy: 1e-6)
        XCTAssertEqual(x[2], (0.2 - 0.406) / 0.225, accuracy: 1e-6)
    }

    func testCaffeStyleBGRWithoutScaling() {
        let caffe = Normalization(mean: [104, 117, 123], std: [1, 1, 1], scale: 1, bgr: true)
        XCTAssertEqual(caffe.tensor(from: RGBImage(width: 1, height: 1, pixels: [10, 20, 30])).toArray(), [30 - 104, 20 - 117, 10 - 123])
    }

    func testVOCPaletteFollowsTheBitInterleavingRule() {
        let voc = Palette.pascalVOC()
        XCTAssertEqual(voc.color(0), [0, 0, 0])
        XCTAssertEqual(voc.color(1), [128, 0, 0])
        XCTAssertEqual(voc.color(15), [192, 128, 128])
        XCTAssertEqual(voc.color(20), [0, 64, 128])
        XCTAssertEqual(voc.color(255), [224, 224, 192])
    }

    func testColorizeAndOverlay() {
        let palette = Palette(colors: [[0, 0, 0], [200, 100, 0]])
        let mask = palette.colorize([0, 1], width: 2, height: 1)
        XCTAssertEqual(mask.pixels, [0, 0, 0, 200, 100, 0])
        let picture = RGBImage(width: 2, height: 1, pixels: [100, 100, 100, 0, 0, 0])
        XCTAssertEqual(palette.overlay([0, 1], on: picture, opacity: 0.5).pixels, [50, 50, 50, 100, 50, 0])
    }
}
