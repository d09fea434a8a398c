import Foundation
import XCTest

/// `segview eval` against numpy's computation on PyTorch's prediction (tools/make_fixtures.py).
final class EvalCommandTests: XCTestCase {
    let fixtures = modelFixtures.appendingPathComponent("eval")

    func testMatchesTheIndependentComputationExactly() throws {
        let (status, output) = try runSegview(["eval", "--model", modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path,
                                        "--images", fixtures.appendingPathComponent("images").path,
                                        "--labels", fixtures.appendingPathComponent("labels").path, "--json"])
        XCTAssertEqual(status, 0, output)
        let ours = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("expected.json"))) as? [String: Any])
        XCTAssertEqual(ours["confusion"] as? [[Int]], expected["confusion"] as? [[Int]])
        XCTAssertEqual(ours["pixel_accuracy"] as! Double, expected["pixel_accuracy"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(ours["mean_iou"] as! Double, expected["mean_iou"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(ours["labelled_pixels"] as? Int, 37 * 53 - 4 * 6, "the void corner is not scored")
    }

    func testTextReportAndMissingLabels() throws {
        let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        let (status, output) = try runSegview(["eval", "--model", model, "--images", fixtures.appendingPathComponent("images").path,
                                        "--labels", fixtures.appendingPathComponent("labels").path])
        XCTAssertEqual(status, 0, output)
        for text in ["pixel accuracy 83.79%", "mean IoU 77.41%", "boundary F1", " 3 car", "confusion (rows: truth"] {
            XCTAssertTrue(output.contains(text), "missing '\(text)' in:\n\(output)")
        }
        let folder = try makeScratchDirectory("segview-eval")
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = try runSegview(["eval", "--model", model, "--images", fixtures.appendingPathComponent("images").path,
                             "--labels", folder.path])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.output.contains("has a label file"), empty.output)
        // A colour image where a label map belongs is named, with the reason.
        try FileManager.default.copyItem(at: modelFixtures.appendingPathComponent("street_37x53.png"),
                                         to: folder.appendingPathComponent("street_37x53.png"))
        let colour = try runSegview(["eval", "--model", model, "--images", fixtures.appendingPathComponent("images").path,
                              "--labels", folder.path])
        XCTAssertNotEqual(colour.status, 0)
        XCTAssertTrue(colour.output.contains("a label map must be a gray or palette PNG"), colour.output)
    }
}
