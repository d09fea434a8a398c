import SegImage
import XCTest

final class ValueMapTests: XCTestCase {
    /// The ramps at their stops, between two stops, beyond 0...1 and at NaN; the pictures made of them.
    func testRampsGiveTheirColours() {
        func rgb(_ map: ValueMap, _ v: Float) -> [UInt8] { let c = map.color(v); return [c.r, c.g, c.b] }
        XCTAssertEqual(rgb(.grey, 0.5), [128, 128, 128])
        XCTAssertEqual(rgb(.grey, 2), [255, 255, 255])
        XCTAssertEqual(rgb(.heat, 0), [0, 0, 4])
        XCTAssertEqual(rgb(.heat, 0.5), [188, 55, 84])
        XCTAssertEqual(rgb(.heat, 0.625), [219, 99, 47], "halfway from red to orange")
        XCTAssertEqual(rgb(.heat, 1), [252, 255, 164])
        XCTAssertEqual(rgb(.heat, .nan), [0, 0, 4])
        XCTAssertEqual(rgb(.heat, -1), [0, 0, 4])
        let heat = ValueMap.heat.image([0, 0.625], width: 2, height: 1)
        XCTAssertEqual(heat.pixels, [0, 0, 4, 219, 99, 47])
        let grey = ValueMap.grey.image([0, 0.5, 1], width: 3, height: 1)
        XCTAssertEqual(grey.channels, 1)
        XCTAssertEqual(grey.pixels, [0, 128, 255])
    }
}
