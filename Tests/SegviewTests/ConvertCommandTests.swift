import Foundation
import SegEngine
import XCTest

/// `segview convert` and checkpoints given straight to `--model`.
final class ConvertCommandTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("convert") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    let checkpoint = modelFixtures.appendingPathComponent("checkpoints/fcn8s_wkentaro.pth").path
    let hostileFixtures = modelFixtures.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TorchCheckpointTests/Fixtures")

    func segview(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runSegview(arguments, in: scratch)
    }

    func testConvertWritesAModelFileAndOverwritesOnlyWithForce() throws {
        let first = try segview(["convert", checkpoint, "--out", "fcn8s.safetensors"])
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("wrote fcn8s.safetensors: fcn8s vgg16, 5 classes (numbered: no preset has "
                                            + "5 classes, --classes names them), output stride 8"), first.output)
        let written = scratch.appendingPathComponent("fcn8s.safetensors")
        let bytes = try Data(contentsOf: written)

        let again = try segview(["convert", checkpoint, "--out", "fcn8s.safetensors", "--classes", "camvid"])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.output.contains("fcn8s.safetensors already exists (use --force to overwrite)"),
                      again.output)
        XCTAssertEqual(try Data(contentsOf: written), bytes, "refused without --force, the file is untouched")

        let names = scratch.appendingPathComponent("names.txt")
        try "void\nsky\nroad\ncar\ntree\n".write(to: names, atomically: true, encoding: .utf8)
        let forced = try segview(["convert", checkpoint, "--out", "fcn8s.safetensors", "--classes", names.path,
                                  "--force"])
        XCTAssertEqual(forced.status, 0, forced.output)
        let info = try segview(["info", "fcn8s.safetensors"])
        XCTAssertTrue(info.output.contains("tree"), info.output)
    }

    /// No command writes over its own input, even with --force, or names one file as two outputs
    /// (convert and quantize replaced their input; eval wrote its partial into --csv, then failed).
    func testNoCommandWritesOverItsInput() throws {
        let (images, labels) = try makeLabelledDataset(in: scratch)
        let input = scratch.appendingPathComponent("in.pth")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: checkpoint), to: input)
        let model = scratch.appendingPathComponent("model.safetensors")
        try FileManager.default.copyItem(at: modelFixtures.appendingPathComponent("tiny_five_classes.safetensors"),
                                         to: model)
        let partial = scratch.appendingPathComponent("part.json")
        let scored = try segview(["eval", "--model", model.path, "--images", images.path, "--labels", labels.path,
                                  "--save-partial", partial.path])
        XCTAssertEqual(scored.status, 0, scored.output)
        let before = try [input, model, partial].map { try Data(contentsOf: $0) }
        let runs: [([String], String)] = [
            (["convert", "in.pth", "--out", "./in.pth", "--force"], "./in.pth is the checkpoint to convert"),
            (["quantize", "model.safetensors", "--images", images.path, "--out", "model.safetensors", "--force"],
             "model.safetensors is the model to quantize"),
            (["eval", "--model", "model.safetensors", "--images", images.path, "--labels", labels.path,
              "--csv", "model.safetensors", "--force"], "model.safetensors is a model to score"),
            (["eval", "--model", "model.safetensors", "--images", images.path, "--labels", labels.path,
              "--csv", "x.json", "--save-partial", "x.json"], "two outputs name the same file; give --csv and "
             + "--save-partial each their own"),
            (["eval", "merge", "part.json", "--csv", "part.json", "--force"],
             "part.json is a partial result to merge"),
        ]
        for (arguments, message) in runs {
            let (status, output) = try segview(arguments)
            XCTAssertEqual(status, 1, output)
            XCTAssertTrue(output.contains(message), "expected \(message): \(output)")
        }
        XCTAssertEqual(try [input, model, partial].map { try Data(contentsOf: $0) }, before)
        let again = try segview(["convert", "model.safetensors", "--out", "again.safetensors"])
        XCTAssertEqual(again.status, 1, again.output)
        XCTAssertTrue(again.output.contains("model.safetensors is a .safetensors model file already"), again.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("x.json").path))
    }

    func testAHostileCheckpointIsRefusedNamingTheGlobalAndWritesNothing() throws {
        for (file, global) in [("runs_system.pt", "posix.system"), ("runs_eval_legacy.pt", "__builtin__.eval")] {
            let path = hostileFixtures.appendingPathComponent(file).path
            let (status, output) = try segview(["convert", path, "--arch", "fcn8s", "--out", "out.safetensors"])
            XCTAssertEqual(status, 1, output)
            XCTAssertTrue(output.contains(file) && output.contains(global), output)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [],
                           "no output and no temporary file")
        }
    }

    func testACheckpointAsModelPredictsWhatItsModelFilePredicts() throws {
        let image = modelFixtures.appendingPathComponent("arch/street_51x67.png").path
        let model = modelFixtures.appendingPathComponent("arch/fcn8s.safetensors").path
        let direct = try segview(["predict", image, "--model", checkpoint, "--save-logits", "direct.npy"])
        XCTAssertEqual(direct.status, 0, direct.output)
        XCTAssertTrue(direct.output.contains("fcn8s vgg16"), direct.output)
        let reference = try segview(["predict", image, "--model", model, "--save-logits", "reference.npy"])
        XCTAssertEqual(reference.status, 0, reference.output)
        let (ours, shape) = try NumPyFile.decode(Data(contentsOf: scratch.appendingPathComponent("direct.npy")))
        let (expected, _) = try NumPyFile.decode(Data(contentsOf: scratch.appendingPathComponent("reference.npy")))
        XCTAssertEqual(shape, [5, 51, 67])
        XCTAssertEqual(ours, expected)
        XCTAssertGreaterThan(Set(expected).count, 100, "scores that vary over the picture")
    }

    func testEvalScoresACheckpointAsItsModelFile() throws {
        let folder = modelFixtures.appendingPathComponent("eval")
        var confusions: [[[Int]]] = []
        for model in [checkpoint, modelFixtures.appendingPathComponent("arch/fcn8s.safetensors").path] {
            let (status, output) = try segview(["eval", "--model", model, "--json",
                                                "--images", folder.appendingPathComponent("images").path,
                                                "--labels", folder.appendingPathComponent("labels").path])
            XCTAssertEqual(status, 0, output)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
            confusions.append(try XCTUnwrap(report["confusion"] as? [[Int]]))
        }
        XCTAssertEqual(confusions[0], confusions[1])
        XCTAssertEqual(confusions[0].joined().reduce(0, +), 37 * 53 - 4 * 6)
    }

    func testOptionsThatCannotFitAreRefusedBeforeWriting() throws {
        let wrongArch = try segview(["convert", checkpoint, "--arch", "unet", "--out", "x.safetensors"])
        XCTAssertEqual(wrongArch.status, 64, wrongArch.output)
        XCTAssertTrue(wrongArch.output.contains("--arch must be one of fcn32s"), wrongArch.output)
        let wrongClasses = try segview(["convert", checkpoint, "--classes", "voc", "--out", "x.safetensors"])
        XCTAssertEqual(wrongClasses.status, 1, wrongClasses.output)
        XCTAssertTrue(wrongClasses.output.contains("--classes voc has 21 classes, the weights 5"), wrongClasses.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("x.safetensors").path))
    }
}
