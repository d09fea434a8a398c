import SegEngine
import SegImage
import SegPipeline
import XCTest

final class NormalizationTests: XCTestCase {
    let context = EngineContext(threads: 1)

    func testImageNetNormalisationIsPerChannelInRGBOrder() {
        let image = RGBImage(width: 1, height: 1, pixels: [255, 0, 51])
        let x = Normalization.imagenet.tensor(from: image, in: context).toArray()
        XCTAssertEqual(x[0], (1 - 0.485) / 0.229, accuracy: 1e-6)
        XCTAssertEqual(x[1], (0 - 0.456) / 0.224, accuracy: 1e-6)
        XCTAssertEqual(x[2], (0.2 - 0.406) / 0.225, accuracy: 1e-6)
    }

    func testCaffeStyleBGRWithoutScaling() {
        let caffe = Normalization(mean: [104, 117, 123], std: [1, 1, 1], scale: 1, bgr: true)
        XCTAssertEqual(caffe.tensor(from: RGBImage(width: 1, height: 1, pixels: [10, 20, 30]), in: context).toArray(), [30 - 104, 20 - 117, 10 - 123])
    }
}
