import Dispatch
import Foundation
import SegEngine
import SegModels
@testable import SegPipeline
@testable import SegTUI
import XCTest

private let modelFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("SegModelsTests/Fixtures")

/// The image orderings' background scores: one pass gives every measure it can, kept for each order.
final class DatasetScoresTests: XCTestCase {
    /// Ordering worst mIoU first and then least confident first ran every labelled image's pass twice;
    /// the first pass's mean confidence is kept for the second ordering.
    func testTheMeanIoUPassGivesTheConfidenceOrderingToo() throws {
        let model = try ModelLoader.load(path: modelFixtures.appendingPathComponent("tiny_five_classes.safetensors")
            .path)
        let segmenter = try Segmenter(model: model, context: EngineContext(threads: 1))
        let images = [modelFixtures.appendingPathComponent("eval/images/street_37x53.png").path,
                      modelFixtures.appendingPathComponent("street_37x53.png").path]
        let labels = [images[0]: modelFixtures.appendingPathComponent("eval/labels/street_37x53.png").path]
        let worst = DatasetScores.Run(model: 0, stride: 8, scale: .auto, augmentation: [], order: .worstFirst)
        var confident = worst
        confident.order = .leastConfident
        let scores = DatasetScores()
        let scorer = ImageScorer(order: .worstFirst, model: segmenter, images: images, labels: labels, ignoreLabel: 255)
        let scored = expectation(description: "the labelled image scored")
        scores.pump(worst, scored: [0], queue: DispatchQueue(label: "scores"), score: { scorer.score($0) },
                    done: { scored.fulfill() })
        wait(for: [scored], timeout: 120)
        let meanIoU = try XCTUnwrap(scores.known(worst)[0] ?? nil)
        XCTAssertTrue((0...1).contains(meanIoU))
        let confidence = try XCTUnwrap(scores.known(confident)[0] ?? nil, "kept for the confidence ordering")
        var alone = scorer
        alone.order = .leastConfident
        XCTAssertEqual(confidence, try XCTUnwrap(alone.score(0)[.leastConfident] ?? nil), accuracy: 1e-12)
        XCTAssertEqual(scores.progress(confident, scored: [0, 1]), 1, "the unlabelled image is still to score")
    }
}

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
