import Foundation
import SegEngine
import XCTest

/// `segview quantize` end to end on a bundled model, and `--precision` in the commands that run one.
final class QuantizeCommandTests: XCTestCase {
    let bundled = repositoryRoot.appendingPathComponent("samples/models/camvid_deeplabv3plus.safetensors").path
    let samples = repositoryRoot.appendingPathComponent("samples")
    /// The bundled model's float32 figure on the sample scenes (BundledModelTests.recorded).
    let recordedSamples = 76.34

    func meanIoU(_ model: String, _ extra: [String] = []) throws -> (value: Double, report: [String: Any]) {
        let (status, output) = try runSegview(["eval", "--model", model, "--images", samples.path, "--labels",
                                               samples.appendingPathComponent("labels").path, "--ignore", "11",
                                               "--json"] + extra)
        XCTAssertEqual(status, 0, output)
        let json = try XCTUnwrap(output.firstIndex(of: "{").map { output[$0...] }, output)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        return (try XCTUnwrap(report["mean_iou"] as? Double) * 100, report)
    }

    func testAQuantizedBundledModelKeepsItsScore() throws {
        let scratch = try makeScratchDirectory("segview-quantize")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("int8.safetensors").path
        let arguments = ["quantize", bundled, "--images", samples.path, "--limit", "2", "--out", out]
        let (status, output) = try runSegview(arguments)
        XCTAssertEqual(status, 0, output)
        let counts = try XCTUnwrap(output.firstMatch(of: try Regex("([0-9]+) of ([0-9]+) dense convolutions in int8")),
                                   output)
        let (int8, dense) = (Int(counts.output[1].substring!)!, Int(counts.output[2].substring!)!)
        XCTAssertGreaterThan(int8, dense * 3 / 4, "most layers in int8: \(output)")
        let agreement = try XCTUnwrap(output.firstMatch(of: try Regex("agree on ([0-9.]+) %")), output)
        XCTAssertGreaterThanOrEqual(Double(agreement.output[1].substring!)!, 98, output)

        let int8Run = try meanIoU(out, ["--precision", "int8"]), fp32Run = try meanIoU(out, ["--precision", "fp32"])
        XCTAssertEqual(int8Run.value, recordedSamples, accuracy: 0.5)
        XCTAssertEqual(fp32Run.value, recordedSamples, accuracy: 0.01, "in float32 the int8 file is the original model")
        XCTAssertEqual(int8Run.report["precision"] as? String, "int8", "eval says what the model ran in")
        XCTAssertEqual(fp32Run.report["precision"] as? String, "fp32")
        let text = try runSegview(["eval", "--model", out, "--images", samples.path, "--labels",
                                   samples.appendingPathComponent("labels").path, "--precision", "int8"])
        XCTAssertTrue(text.output.contains("deeplabv3plus resnet int8, output stride 16"), text.output)
        let (_, byDefault) = try runSegview(["predict", samples.appendingPathComponent("scene1.png").path,
                                             "--model", out, "--out", scratch.appendingPathComponent("mask.png").path])
        XCTAssertEqual(byDefault.contains("no AVX-512 VNNI"), !Int8Kernels.available,
                       "without VNNI an int8 file runs in float32, with a note: \(byDefault)")

        let again = try runSegview(arguments)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.output.contains("already exists (use --force"), again.output)
    }

    func testABrokenImageStopsQuantizeBeforeAnythingIsWritten() throws {
        let scratch = try makeScratchDirectory("segview-quantize")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let images = scratch.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: samples.appendingPathComponent("scene1.png"),
                                         to: images.appendingPathComponent("a.png"))
        try Data("\u{89}PNG\r\n\u{1a}\nnot really".utf8).write(to: images.appendingPathComponent("b.png"))
        let out = scratch.appendingPathComponent("int8.safetensors")
        let (status, output) = try runSegview(["quantize", bundled, "--images", images.path, "--out", out.path])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("b.png"), "the message names the file: \(output)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))

        // No layer within the error allowed: no file that says int8 and runs float32.
        try FileManager.default.removeItem(at: images.appendingPathComponent("b.png"))
        let strict = try runSegview(["quantize", bundled, "--images", images.path, "--max-error", "1e-9",
                                     "--out", out.path])
        XCTAssertEqual(strict.status, 1, strict.output)
        XCTAssertTrue(strict.output.contains("no convolution stays within --max-error"), strict.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))

        // The pixel budget every command that reads images has: the sample scenes are 480x360.
        let budget = try runSegview(["quantize", bundled, "--images", images.path, "--max-pixels", "100000",
                                     "--out", out.path])
        XCTAssertEqual(budget.status, 1, budget.output)
        XCTAssertTrue(budget.output.contains("a.png") && budget.output.contains("(raise it with --max-pixels)"),
                      budget.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func testInt8IsRefusedForAFloat32File() throws {
        let scratch = try makeScratchDirectory("segview-quantize")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("mask.png")
        let (status, output) = try runSegview(["predict", samples.appendingPathComponent("scene1.png").path, "--model",
                                               bundled, "--precision", "int8", "--out", out.path])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("\(bundled): the file is float32 only"), "names the file: \(output)")
        XCTAssertTrue(output.contains("segview quantize"), output)
        XCTAssertFalse(output.contains("VNNI"), "no note about running it: \(output)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }
}
