import SegImage
import XCTest

/// Metrics on hand-made cases, every number worked out by hand.
final class MetricsTests: XCTestCase {
    func testConfusionAccuracyAndIoU() {
        // truth 0 0 1 1 255 2; prediction 0 1 1 1 0 2:
        // labelled 5 pixels, 4 correct; IoU(0) = 1/2, IoU(1) = 2/3, IoU(2) = 1.
        var matrix = ConfusionMatrix(classes: 3)
        matrix.add(prediction: [0, 1, 1, 1, 0, 2], truth: [0, 0, 1, 1, 255, 2], ignore: 255)
        XCTAssertEqual(matrix.labelledPixels, 5)
        XCTAssertEqual(matrix[0, 1], 1)
        XCTAssertEqual(matrix.pixelAccuracy, 0.8, accuracy: 1e-12)
        XCTAssertEqual(matrix.classIoU[0]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(matrix.classIoU[1]!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(matrix.meanIoU, (0.5 + 2.0 / 3 + 1) / 3, accuracy: 1e-12)
    }

    func testAbsentClassesDoNotCountInTheMean() {
        var matrix = ConfusionMatrix(classes: 4)
        matrix.add(prediction: [0, 0], truth: [0, 0], ignore: 255)
        XCTAssertNil(matrix.classIoU[3])
        XCTAssertEqual(matrix.meanIoU, 1)
    }

    func testBoundaryScoreMatchesWithinTolerance() {
        // 6x1 strips: truth changes between x=2 and x=3, prediction between x=3 and x=4.
        let truth: [UInt8] = [0, 0, 0, 1, 1, 1]
        let prediction: [Int32] = [0, 0, 0, 0, 1, 1]
        var exact = BoundaryScore(tolerance: 0)
        exact.add(prediction: prediction, truth: truth, width: 6, height: 1, ignore: 255, classes: 2)
        // Boundary pixels: truth {2, 3}, prediction {3, 4}; exact matches: pixel 3 only.
        XCTAssertEqual(exact.precision, 0.5)
        XCTAssertEqual(exact.recall, 0.5)
        var near = BoundaryScore(tolerance: 1)
        near.add(prediction: prediction, truth: truth, width: 6, height: 1, ignore: 255, classes: 2)
        XCTAssertEqual(near.f1, 1)
    }

    /// Truth values past the class count are unlabelled, as in the confusion matrix: the score is
    /// the same whether `ignore` names them or not (CamVid's void, 11, with the default 255).
    func testBoundaryScoreLeavesOutTruthPastTheClasses() {
        let truth: [UInt8] = [0, 0, 11, 11, 1, 1, 1, 0]
        let prediction: [Int32] = [0, 0, 0, 1, 1, 1, 0, 0]
        var named = BoundaryScore(tolerance: 0), past = BoundaryScore(tolerance: 0)
        named.add(prediction: prediction, truth: truth, width: 8, height: 1, ignore: 11, classes: 2)
        past.add(prediction: prediction, truth: truth, width: 8, height: 1, ignore: 255, classes: 2)
        XCTAssertEqual(past, named)
        // Truth boundary: pixels 6 and 7 only; predicted, among the labelled: 5 and 6.
        XCTAssertEqual([past.truthBoundary, past.truthMatched, past.predictedBoundary, past.predictedMatched],
                       [2, 1, 2, 1])
    }
}
