import SegImage
import SegTUI
import XCTest

final class DisplayPictureTests: XCTestCase {
    func testTheLargestWorkingSizeCappedByTheSourceAndTheMaximumSide() {
        let sizes = [(width: 480, height: 360), (width: 693, height: 520)]
        XCTAssertTrue(DisplayPicture.size(source: (4000, 3000), workingSizes: sizes) == (693, 520))
        XCTAssertTrue(DisplayPicture.size(source: (400, 300), workingSizes: [(960, 720)]) == (400, 300),
                      "a working size that enlarges is drawn at the source's size")
        XCTAssertTrue(DisplayPicture.size(source: (6000, 4000), workingSizes: [(6000, 4000)]) == (2048, 1365),
                      "native on a 24-megapixel photo draws from 2048 pixels at most")
    }

    func testPicturesAreShrunkByAreaAverageAndNeverEnlarged() {
        let picture = RGBImage(width: 4, height: 2, pixels: [0, 0, 0, 100, 100, 100, 10, 10, 10, 30, 30, 30,
                                                             0, 0, 0, 100, 100, 100, 10, 10, 10, 30, 30, 30])
        XCTAssertEqual(DisplayPicture.make(picture, size: (2, 1)).pixels, [50, 50, 50, 20, 20, 20])
        XCTAssertEqual(DisplayPicture.make(picture, size: (8, 4)), picture)
    }
}
