import Foundation
import SegModels
@testable import SegPipeline
@testable import SegTUI
import XCTest

private let modelFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("SegModelsTests/Fixtures")

/// The viewer's passes of one model and stride share one segmenter, whatever the scale or
/// augmentation: a thin or large working size is probed for its memory estimate once, not at
/// every model switch, scale change or ordering.
final class ViewerSegmenterTests: XCTestCase {
    func testRequestsOfAModelAndStrideShareTheirEstimates() throws {
        let model = try ModelLoader.load(path: modelFixtures.appendingPathComponent("tiny_fcn.safetensors").path)
        let viewer = Viewer(options: .init(images: [], models: [("tiny_fcn", model)], labels: [:], ignoreLabel: 255,
                                           colors: nil))
        let first = try viewer.segmenter(model: 0, stride: 8, scale: .native, augmentation: [])
        _ = first.estimatedPassCost(width: 3000, height: 20)
        XCTAssertEqual(first.measuredEstimates, 1)
        let later = try viewer.segmenter(model: 0, stride: 8, scale: .shortSide(10), augmentation: [.flip])
        XCTAssertEqual(later.measuredEstimates, 1, "a later request at the same stride has the first one's estimate")
        XCTAssertEqual(later.augmentation, [.flip])
        XCTAssertEqual(later.scale, .shortSide(10))
        XCTAssertEqual(try viewer.segmenter(model: 0, stride: 16, scale: .native, augmentation: []).measuredEstimates,
                       0, "another stride has estimates of its own")
    }
}
