import Foundation
import SegImage
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

    /// JPEG images with PNG labels, each label name form; a label of the wrong size is reported
    /// and the other images are still scored (exit 1).
    func testJPEGImagesPairWithPNGLabelsInEveryNameForm() throws {
        let scratch = try makeScratchDirectory("segview-eval-jpeg")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let images = try makePhotoFolder(in: scratch, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
        let labels = scratch.appendingPathComponent("labels")
        try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
        // baseline.jpg is 23x17: a label map of class 0 on the left half, 1 on the right.
        let map = RGBImage(width: 23, height: 17, channels: 1, pixels: (0..<23 * 17).map { UInt8($0 % 23 < 11 ? 0 : 1) })
        for name in ["a.png", "b_L.png", "c_label.png"] { try PNG.write(map, to: labels.appendingPathComponent(name).path) }
        let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        var result = try runSegview(["eval", "--model", model, "--images", images.path, "--labels", labels.path, "--json"])
        XCTAssertEqual(result.status, 0, result.output)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        XCTAssertEqual(report["images"] as? Int, 3, "d.jpg has no label")
        XCTAssertEqual(report["labelled_pixels"] as? Int, 3 * 23 * 17)
        XCTAssertFalse(result.output.contains("\\/"), "slashes are not escaped")

        try PNG.write(RGBImage(width: 5, height: 5, channels: 1), to: labels.appendingPathComponent("d.png").path)
        result = try runSegview(["eval", "--model", model, "--images", images.path, "--labels", labels.path])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("3 images, \(3 * 23 * 17) labelled pixels"), result.output)
        XCTAssertTrue(result.output.contains("1 of 4 images failed"), result.output)
        XCTAssertTrue(result.output.contains("failed: \(labels.path)/d.png is 5x5, \(images.path)/d.jpg 23x17"), result.output)
    }
}
