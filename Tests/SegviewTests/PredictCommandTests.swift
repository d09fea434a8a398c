import Foundation
import SegEngine
import SegImage
import XCTest

/// `segview predict` as a user runs it: the built binary, real files, exit codes and messages.
final class PredictCommandTests: XCTestCase {
    var scratch: URL!
    var fixtures: URL { modelFixtures }

    override func setUpWithError() throws {
        scratch = try makeScratchDirectory("segview-cli")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    func segview(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runSegview(arguments, in: scratch)
    }

    var image: String { fixtures.appendingPathComponent("street_37x53.png").path }
    var model: String { fixtures.appendingPathComponent("tiny_deeplabv3.safetensors").path }

    func testPredictWritesMaskOverlayAndLogitsMatchingPyTorch() throws {
        let (status, output) = try segview(["predict", image, "--model", model, "--output-stride", "16",
                                            "--out", "mask.png", "--overlay", "overlay.png", "--save-logits", "logits.npy"])
        XCTAssertEqual(status, 0, output)
        for line in ["53x37", "output stride 16", "forward", "activation peak", "wrote mask.png"] {
            XCTAssertTrue(output.contains(line), "missing '\(line)' in:\n\(output)")
        }
        let (ours, shape) = try NumPyFile.decode(Data(contentsOf: scratch.appendingPathComponent("logits.npy")))
        let (expected, _) = try NumPyFile.decode(Data(contentsOf: fixtures.appendingPathComponent("tiny_deeplabv3_os16.npy")))
        XCTAssertEqual(shape, [21, 37, 53])
        XCTAssertLessThan(zip(ours, expected).map { abs($0 - $1) }.max()!, 1e-4 * expected.map(abs).max()!)
        for name in ["mask.png", "overlay.png"] {
            let data = try Data(contentsOf: scratch.appendingPathComponent(name))
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47], name)
        }
    }

    func testBorderWritesDFNsBorderMapAsGreyOrHeat() throws {
        let dfn = fixtures.appendingPathComponent("arch/dfn.safetensors").path
        let picture = fixtures.appendingPathComponent("arch/street_51x67.png").path
        let (status, output) = try segview(["predict", picture, "--model", dfn, "--output-stride", "16",
                                            "--border", "border.png", "--save-logits", "scores.npy"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("dfn resnet101, output stride 16"), output)
        let grey = try PNG.readLabels(scratch.appendingPathComponent("border.png").path)
        let (expected, shape) = try NumPyFile.decode(Data(contentsOf: fixtures.appendingPathComponent("arch/dfn_border_os16.npy")))
        XCTAssertEqual([1, grey.height, grey.width], shape)
        let worst = zip(grey.pixels, expected).map { abs(Float($0) - $1 * 255) }.max()!
        XCTAssertLessThanOrEqual(worst, 0.51, "the grey levels are the border probabilities x 255, rounded")

        let heat = try segview(["predict", picture, "--model", dfn, "--border", "heat.png", "--border-colors", "heat"])
        XCTAssertEqual(heat.status, 0, heat.output)
        let colours = try PNG.read(scratch.appendingPathComponent("heat.png").path)
        XCTAssertEqual(colours.channels, 3)
        XCTAssertGreaterThan(Set(stride(from: 0, to: colours.pixels.count, by: 3).map { colours.pixels[$0] }).count, 3)
    }

    func testBorderOfAModelWithoutBorderNetworkIsTheMaskBoundaries() throws {
        let (status, output) = try segview(["predict", image, "--model", model, "--border", "edges.png"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("deeplabv3 has no border network; edges.png shows the boundaries of the mask"), output)
        let edges = try PNG.readLabels(scratch.appendingPathComponent("edges.png").path)
        XCTAssertEqual(Set(edges.pixels), [0, 255], "boundaries are on or off")
    }

    func testFolderOfImagesGoesOnPastABadFileAndReportsIt() throws {
        let folder = try makePhotoFolder(in: scratch, ["a.png", "b.jpg"])
        try Data("not an image".utf8).write(to: folder.appendingPathComponent("c.png"))
        try Data("ignored".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        let (status, output) = try segview(["predict", "photos", "--model", model, "--out", "masks", "--border", "borders"])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("3 images, deeplabv3 at output stride 8: 2 segmented, 1 failed"), output)
        XCTAssertTrue(output.contains("failed: photos/c.png: not a PNG or JPEG image"), output)
        for name in ["masks/a.png", "masks/b.png", "borders/a.png", "borders/b.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent(name).path), name)
        }
        let mask = try PNG.read(scratch.appendingPathComponent("masks/b.png").path)
        XCTAssertEqual([mask.width, mask.height], [23, 17], "the JPEG was segmented at its own size")
        let again = try segview(["predict", "photos", "--model", model, "--out", "masks"])
        XCTAssertTrue(again.output.contains("masks/a.png already exists (use --force to overwrite)"), again.output)
    }

    func testPixelBudgetRefusesBigImagesAndNamesTheOption() throws {
        let (status, output) = try segview(["predict", image, "--model", model, "--max-pixels", "1000"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("image is 53x37, more than the limit of 1000 pixels (raise it with --max-pixels)"), output)
    }

    /// A full disk, simulated by a file-size limit (SIGXFSZ ignored, so writes fail with EFBIG).
    func testFailedWriteLeavesNoPartialFileAndSaysWhy() throws {
        let (status, output) = try runSegview(["predict", image, "--model", model, "--save-logits", "logits.npy"],
                                              in: scratch, shellPrefix: "trap '' XFSZ; ulimit -f 4;")
        XCTAssertNotEqual(status, 0, output)
        XCTAssertTrue(output.contains("logits.npy: write failed"), output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [], "no partial or temporary file is left")
    }

    func testDefaultOutputIsTheMaskInTheCurrentDirectory() throws {
        let (status, output) = try segview(["predict", image, "--model", model])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("street_37x53.mask.png").path))
    }

    func testRefusesToOverwriteWithoutForce() throws {
        let existing = scratch.appendingPathComponent("mask.png")
        try Data("mine".utf8).write(to: existing)
        let (status, output) = try segview(["predict", image, "--model", model, "--out", "mask.png"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("mask.png already exists (use --force to overwrite)"), output)
        XCTAssertEqual(try String(contentsOf: existing, encoding: .utf8), "mine")
        let forced = try segview(["predict", image, "--model", model, "--out", "mask.png", "--force"])
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertNotEqual(try Data(contentsOf: existing), Data("mine".utf8))
    }

    func testBadInputsGiveMessagesAndNoOutput() throws {
        let notPNG = scratch.appendingPathComponent("photo.png")
        try Data("GIF89a".utf8).write(to: notPNG)
        var result = try segview(["predict", notPNG.path, "--model", model, "--out", "mask.png"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("photo.png: a GIF image; segview reads PNG and JPEG (convert it first)"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("mask.png").path))

        result = try segview(["predict", image, "--model", image])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("is not a valid .safetensors file"), result.output)

        result = try segview(["predict", image, "--model", model, "--output-stride", "4"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("output stride 4 is not available"), result.output)
    }
}

/// `segview models`: every file in a folder, what it is, and which ones cannot be loaded.
final class ModelsCommandTests: XCTestCase {
    func testListsModelsAndNamesBrokenFiles() throws {
        let folder = try makeScratchDirectory("segview-models")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: modelFixtures.appendingPathComponent("tiny_fcn.safetensors"),
                                         to: folder.appendingPathComponent("a_fcn.safetensors"))
        try Data("not a model".utf8).write(to: folder.appendingPathComponent("b_broken.safetensors"))
        let (status, output) = try runSegview(["models", folder.path])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, output)
        XCTAssertEqual(lines[0], "a_fcn.safetensors: fcn resnet, 21 classes, 293669 parameters, trained at OS 8, runs at 8/16/32")
        XCTAssertTrue(lines[1].hasPrefix("b_broken.safetensors: cannot be loaded:"), lines[1])
    }
}
