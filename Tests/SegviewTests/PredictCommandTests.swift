import Foundation
import SegEngine
import SegImage
import SegModels
import XCTest

/// `segview predict` as a user runs it: the built binary, real files, exit codes and messages.
final class PredictCommandTests: XCTestCase {
    let context = EngineContext()

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
        XCTAssertTrue(output.contains("3 images, deeplabv3 resnet at output stride 8, scale auto: 2 segmented, 1 failed"),
                      output)
        XCTAssertTrue(output.contains("failed: photos/c.png: not a PNG or JPEG image"), output)
        // Where the time went, as for one image: the stages' means over the images segmented.
        let time = try XCTUnwrap(output.split(separator: "\n").first { $0.hasPrefix("time: ") }, output)
        let stages = time.split(separator: " ").compactMap { Double($0) }
        XCTAssertTrue(time.contains("per image segmented (mean of 2): read "), String(time))
        XCTAssertEqual(stages.count, 4, String(time))
        XCTAssertTrue(stages.count == 4 && stages[0] > 0 && stages[2] > 0,
                      "loading and the forward pass take time: \(time)")
        XCTAssertTrue(output.contains("memory: weights "), output)
        for name in ["masks/a.png", "masks/b.png", "borders/a.png", "borders/b.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent(name).path), name)
        }
        let mask = try PNG.read(scratch.appendingPathComponent("masks/b.png").path)
        XCTAssertEqual([mask.width, mask.height], [23, 17], "the JPEG was segmented at its own size")
        let again = try segview(["predict", "photos", "--model", model, "--out", "masks"])
        XCTAssertTrue(again.output.contains("masks/a.png already exists (use --force to overwrite)"), again.output)
    }

    /// A folder run that was stopped goes on with --skip-existing: images whose outputs all exist
    /// are left as they are, the others are made (without it every existing output is a failure).
    func testSkipExistingGoesOnWithAStoppedRun() throws {
        _ = try makePhotoFolder(in: scratch, ["a.png", "b.jpg", "c.png"])
        let first = try segview(["predict", "photos", "--model", model, "--out", "masks"])
        XCTAssertEqual(first.status, 0, first.output)
        let masks = scratch.appendingPathComponent("masks")
        try FileManager.default.removeItem(at: masks.appendingPathComponent("b.png"))
        try Data("kept".utf8).write(to: masks.appendingPathComponent("a.png"))
        let again = try segview(["predict", "photos", "--model", model, "--out", "masks", "--skip-existing"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("3 images, deeplabv3 resnet at output stride 8, scale auto: 1 segmented, "
                                            + "2 skipped (their outputs exist), 0 failed"), again.output)
        XCTAssertEqual(try Data(contentsOf: masks.appendingPathComponent("a.png")), Data("kept".utf8))
        XCTAssertEqual(try PNG.read(masks.appendingPathComponent("b.png").path).width, 23)
        // A set a stopped run left half written (or a new output option) is made whole again.
        let more = try segview(["predict", "photos", "--model", model, "--out", "masks", "--ids", "ids",
                                "--skip-existing"])
        XCTAssertEqual(more.status, 0, more.output)
        XCTAssertTrue(more.output.contains("3 segmented, 0 skipped (their outputs exist), 0 failed"), more.output)
        XCTAssertEqual(try PNG.read(masks.appendingPathComponent("a.png").path).width, 53, "the stray a.png replaced")
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("ids/c.png").path))
        let both = try segview(["predict", "photos", "--model", model, "--out", "masks", "--skip-existing", "--force"])
        XCTAssertEqual(both.status, 64, both.output)
    }

    /// `predict DIR --shard K/N` segments the images `eval --shard K/N` scores: every image once over the shards.
    func testShardsSplitAFolderAsEvalDoes() throws {
        let names = (0..<8).map { "frame\($0).png" }
        let folder = try makePhotoFolder(in: scratch, names)
        let labels = scratch.appendingPathComponent("labels")
        try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
        for name in names {
            let label = RGBImage(width: 53, height: 37, channels: 1, filledWith: 2)
            try PNG.write(label, to: labels.appendingPathComponent(name).path)
        }
        var written: [String] = []
        for k in 1...3 {
            let (status, output) = try segview(["predict", "photos", "--model", model, "--out", "masks\(k)",
                                                "--shard", "\(k)/3"])
            let masks = scratch.appendingPathComponent("masks\(k)").path
            let files = (try? FileManager.default.contentsOfDirectory(atPath: masks)) ?? []
            XCTAssertEqual(status, files.isEmpty ? 1 : 0, output)
            let eval = try segview(["eval", "--model", model, "--images", "photos", "--labels", labels.path,
                                    "--shard", "\(k)/3", "--json"])
            let scored = (try? JSONSerialization.jsonObject(with: Data(eval.output.utf8)) as? [String: Any])
                .flatMap { $0["per_image"] as? [[String: Any]] }?.compactMap { $0["image"] as? String } ?? []
            XCTAssertEqual(files.sorted(), scored.sorted(), "shard \(k)/3: predict and eval take the same images")
            written += files
        }
        XCTAssertEqual(written.sorted(), names.sorted(), "every image in exactly one shard")
        XCTAssertGreaterThan(Set(written).count, 0)
        let single = try segview(["predict", image, "--model", model, "--shard", "1/2"])
        XCTAssertEqual(single.status, 1)
        XCTAssertTrue(single.output.contains("--shard 1/2 splits a folder"), single.output)
    }

    func testPixelBudgetRefusesBigImagesAndNamesTheOption() throws {
        let (status, output) = try segview(["predict", image, "--model", model, "--max-pixels", "1000"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("image is 53x37, more than the limit of 1000 pixels (raise it with --max-pixels)"), output)
    }

    /// A full disk, simulated by a file-size limit: segview ignores SIGXFSZ itself (it used to die
    /// of it, leaving its temporary file), so the write fails with EFBIG and is cleaned up.
    func testFailedWriteLeavesNoPartialFileAndSaysWhy() throws {
        let (status, output) = try runSegview(["predict", image, "--model", model, "--out", "mask.png",
                                               "--save-logits", "logits.npy"], in: scratch, shellPrefix: "ulimit -f 4;")
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("logits.npy: write failed: File too large"), output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [],
                       "no partial or temporary file is left, and the mask written before goes again")
    }

    /// Output paths as a user types them: one letter (corelibs Foundation's path functions trap on
    /// those: the process died of SIGILL), through `..`, with a trailing slash.
    func testOutputPathsOfOneLetterOrThroughDotDot() throws {
        try makePhotoFolder(in: scratch, ["a.png"])
        for arguments in [[image, "--out", "m"], ["photos", "--out", "h"], ["photos", "--out", "x/y"],
                          ["photos", "--out", "new/../b"], ["photos", "--out", "c/"]] {
            let (status, output) = try segview(["predict"] + arguments + ["--model", model])
            XCTAssertEqual(status, 0, "\(arguments): \(output)")
        }
        let written = ["m", "h/a.png", "x/y/a.png", "b/a.png", "c/a.png"]
        let missing = written.filter { name in
            !FileManager.default.fileExists(atPath: scratch.appendingPathComponent(name).path)
        }
        XCTAssertEqual(missing, [])
        let converted = try segview(["convert", fixtures.appendingPathComponent("checkpoints/fcn8s_wkentaro.pth").path,
                                     "--out", "o"])
        XCTAssertEqual(converted.status, 0, converted.output)
    }

    /// The outputs of one image are a set: one that cannot be written (a missing folder, a folder
    /// in its place) is found before any is written. They were written up to the bad one.
    func testAnOutputSetIsWrittenWholeOrNotAtAll() throws {
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("taken.png"),
                                                withIntermediateDirectories: false)
        let cases = [("missing/overlay.png", false, "missing/overlay.png: its folder missing does not exist"),
                     ("taken.png", true, "taken.png names a folder: name a file")]
        for (overlay, force, message) in cases {
            let (status, output) = try segview(["predict", image, "--model", model, "--out", "mask.png", "--overlay",
                                                overlay] + (force ? ["--force"] : []))
            XCTAssertEqual(status, 1, output)
            XCTAssertTrue(output.contains(message), output)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["taken.png"], output)
        }
        // A folder's output folders: one that cannot be made is named, and none is left behind.
        try makePhotoFolder(in: scratch, ["a.png"])
        try Data().write(to: scratch.appendingPathComponent("notes.txt"))
        let (status, output) = try segview(["predict", "photos", "--model", model, "--out", "masks/all", "--overlay",
                                            "notes.txt/overlays"])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("notes.txt/overlays: cannot make the folder: Not a directory"), output)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: scratch.path)),
                       ["taken.png", "photos", "notes.txt"])
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

    /// Two outputs to one file, or the input as an output, are refused before anything is written,
    /// with --force too.
    func testOutputsThatCollideWithEachOtherOrTheInputAreRefused() throws {
        let twice = try segview(["predict", image, "--model", model, "--out", "same.png", "--overlay", "./same.png"])
        XCTAssertEqual(twice.status, 1, twice.output)
        XCTAssertTrue(twice.output.contains("two outputs name the same file"), twice.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("same.png").path))
        let input = scratch.appendingPathComponent("input.png")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: image), to: input)
        let original = try Data(contentsOf: input)
        let hardLink = scratch.appendingPathComponent("hard.png")
        try FileManager.default.linkItem(at: input, to: hardLink)
        let cases = [["input.png", "--ids", input.path], ["input.png", "--out", "hard.png"], ["-", "--out", "hard.png"]]
        for arguments in cases {
            let replace = try runSegview(["predict"] + arguments + ["--model", model, "--force"], in: scratch,
                                         shellPrefix: "exec 0<input.png;")
            XCTAssertEqual(replace.status, 1, "\(arguments): \(replace.output)")
            XCTAssertTrue(replace.output.contains("is the input image"), replace.output)
            XCTAssertEqual(try Data(contentsOf: input), original)
        }
        // A symlink to the input is replaced, not written through: that is no collision.
        try FileManager.default.createSymbolicLink(at: scratch.appendingPathComponent("link.png"),
                                                   withDestinationURL: input)
        let link = try segview(["predict", "input.png", "--model", model, "--out", "link.png", "--force"])
        XCTAssertEqual(link.status, 0, link.output)
        XCTAssertEqual(try Data(contentsOf: input), original)
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
        XCTAssertEqual(result.status, 64, "a usage error")
        XCTAssertTrue(result.output.contains("--output-stride must be 8, 16 or 32"), result.output)

        let xception = fixtures.appendingPathComponent("arch/deeplabv3plus_xception.safetensors").path
        result = try segview(["predict", image, "--model", xception, "--output-stride", "32"])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("output stride 32 is not available for deeplabv3plus; choose one of [8, 16]"),
                      result.output)
    }

    /// An output named as another format (`--out mask.jpg`, which held PNG bytes) or `-` (a file
    /// named "-") is a usage error; a folder run's output folders may be called anything.
    func testOutputsNamedForAnotherFormatOrStandardOutputAreRefused() throws {
        let cases = [
            ("--out", "mask.jpg", "--out mask.jpg: segview writes PNG there; name the file .png"),
            ("--ids", "ids.NPY", "--ids ids.NPY: segview writes PNG there; name the file .png"),
            ("--save-logits", "s.png", "--save-logits s.png: segview writes NumPy .npy there; name the file .npy"),
            ("--out", "-", "--out -: segview writes files, not standard output; give a file name"),
        ]
        for (option, path, message) in cases {
            let result = try segview(["predict", image, "--model", model, option, path])
            XCTAssertEqual(result.status, 64, result.output)
            XCTAssertTrue(result.output.contains(message), result.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent(path).path), path)
        }
        // A folder, or a name ending as one: --force was suggested, then refused.
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("existing"),
                                                withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: scratch.appendingPathComponent("linked").path,
                                                   withDestinationPath: "existing")
        for path in ["existing", "new/", "linked"] {
            let result = try segview(["predict", image, "--model", model, "--out", path])
            XCTAssertEqual(result.status, 1, result.output)
            XCTAssertTrue(result.output.contains("\(path) names a folder: name a file"), result.output)
        }
        _ = try makePhotoFolder(in: scratch, ["a.png"])
        let folder = try segview(["predict", "photos", "--model", model, "--out", "masks.png"])
        XCTAssertEqual(folder.status, 0, folder.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("masks.png/a.png").path))
    }

    /// Outputs never land on each other or on the inputs (a.jpg and a.png both made masks/a.png).
    func testFolderOutputsThatWouldCollideAreRefusedBeforeAnyWork() throws {
        let folder = try makePhotoFolder(in: scratch, ["a.png", "a.jpg"])
        var result = try segview(["predict", "photos", "--model", model, "--out", "masks"])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("photos/a.jpg and photos/a.png would write the same output files (a.png)"),
                      result.output)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("a.jpg"))
        result = try segview(["predict", "photos", "--model", model, "--out", "masks", "--overlay", "masks"])
        XCTAssertTrue(result.output.contains("two outputs name the same folder"), result.output)
        result = try segview(["predict", "photos", "--model", model, "--out", "photos/", "--force"])
        XCTAssertTrue(result.output.contains("is the input folder"), result.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["a.png"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("masks").path))
    }

    /// A pipe is read once: `-` and /dev/stdin used to fail with "bad signature" (opened twice).
    func testImagesFromAPipe() throws {
        let jpeg = imageFixtures.appendingPathComponent("jpeg/baseline.jpg").path
        for (source, input, expected) in [(image, "/dev/stdin", [53, 37]), (jpeg, "-", [23, 17])] {
            let (status, output) = try runSegview(["predict", input, "--model", model, "--ids", "ids.png", "--force"],
                                                  in: scratch, shellPrefix: "cat '\(source)' |")
            XCTAssertEqual(status, 0, output)
            let ids = try PNG.readLabels(scratch.appendingPathComponent("ids.png").path)
            XCTAssertEqual([ids.width, ids.height], expected, input)
        }
        let piped = try runSegview(["predict", "-", "--model", model], in: scratch, shellPrefix: "cat '\(image)' |")
        XCTAssertEqual(piped.status, 0, piped.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("stdin.mask.png").path))
        let empty = try runSegview(["predict", "-", "--model", model, "--out", "empty.png"], in: scratch,
                                   shellPrefix: "true |")
        XCTAssertEqual(empty.status, 1)
        XCTAssertTrue(empty.output.contains("-: the file is empty"), empty.output)
    }

    /// SIGTERM while an output is being written removes the temporary file (it used to stay behind)
    /// and the process still ends by the signal.
    func testATerminatedWriteLeavesNoTemporaryFile() throws {
        // Noise compresses slowly, so the overlay takes a while to write.
        var seed: UInt32 = 12345
        let pixels = (0..<1200 * 800 * 3).map { _ -> UInt8 in
            seed = seed &* 1_103_515_245 &+ 12345
            return UInt8(truncatingIfNeeded: seed >> 16)
        }
        try PNG.write(RGBImage(width: 1200, height: 800, pixels: pixels), to: scratch.appendingPathComponent("noise.png").path)
        let process = Process()
        process.executableURL = segviewBinary
        process.arguments = ["predict", "noise.png", "--model", model, "--overlay", "overlay.png"]
        process.currentDirectoryURL = scratch
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        var seen = false
        while process.isRunning && Date() < deadline {
            let names = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
            if names.contains(where: { $0.hasSuffix(".partial") }) {
                seen = true
                break
            }
            usleep(2000)
        }
        XCTAssertTrue(seen, "the overlay's temporary file was never seen")
        process.terminate()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertEqual(process.terminationStatus, SIGTERM)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["noise.png"])
    }

    /// A JPEG cut short is refused (it used to give a mask and exit 0); --allow-truncated keeps it.
    func testTruncatedJPEGIsAnErrorUnlessAllowed() throws {
        let whole = try Data(contentsOf: imageFixtures.appendingPathComponent("jpeg/baseline.jpg"))
        try whole.prefix(whole.count - 40).write(to: scratch.appendingPathComponent("cut.jpg"))
        let refused = try segview(["predict", "cut.jpg", "--model", model, "--out", "mask.png"])
        XCTAssertEqual(refused.status, 1, refused.output)
        XCTAssertTrue(refused.output.contains("cut.jpg: truncated or corrupt JPEG (Premature end of JPEG file)"),
                      refused.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("mask.png").path))
        let allowed = try segview(["predict", "cut.jpg", "--model", model, "--out", "mask.png", "--allow-truncated"])
        XCTAssertEqual(allowed.status, 0, allowed.output)
    }

    /// Runtime failures exit 1 with the message alone; usage errors exit 64 with the usage.
    func testExitCodesSeparateRuntimeFailuresFromUsageErrors() throws {
        try Data("mine".utf8).write(to: scratch.appendingPathComponent("mask.png"))
        let exists = try segview(["predict", image, "--model", model, "--out", "mask.png"])
        XCTAssertEqual(exists.status, 1, exists.output)
        XCTAssertEqual(exists.output, "Error: mask.png already exists (use --force to overwrite)\n")
        for arguments in [["--max-pixels=-1"], ["--threads", "0"], ["--scale", "0"], ["--scale", "huge"],
                          ["--out", ""], ["--overlay", ""]] {
            let usage = try segview(["predict", image, "--model", model] + arguments)
            XCTAssertEqual(usage.status, 64, "\(arguments): \(usage.output)")
            XCTAssertTrue(usage.output.contains("Usage: segview predict"), usage.output)
        }
        let folder = try segview(["predict", ".", "--model", model])  // a folder with nowhere to write
        XCTAssertEqual(folder.status, 64, folder.output)
        XCTAssertTrue(folder.output.contains(". is a folder: name an output folder with --out"), folder.output)
        let version = try segview(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.output.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, version.output)
    }

    /// Defaults in the help read as the user types them: `--tta`'s is "none", not its raw value.
    func testHelpShowsTheDefaultTestTimeAugmentationAsTyped() throws {
        for command in [["view"], ["predict"], ["eval", "run"], ["bench"]] {
            let help = try segview(command + ["--help"])
            XCTAssertEqual(help.status, 0, help.output)
            let tta = try XCTUnwrap(help.output.components(separatedBy: "--tta <").dropFirst().first, help.output)
                .components(separatedBy: "\n  -")[0]
            XCTAssertTrue(tta.contains("(default: none)"), "\(command): \(tta)")
        }
    }

    /// `--ids`: one byte per pixel, the class index, the same labels as the colour mask.
    func testIdsAreTheClassIndicesOfTheMask() throws {
        let (status, output) = try segview(["predict", image, "--model", model, "--ids", "ids.png", "--out", "mask.png",
                                            "--save-logits", "scores.npy"])
        XCTAssertEqual(status, 0, output)
        let ids = try PNG.readLabels(scratch.appendingPathComponent("ids.png").path)
        XCTAssertEqual([ids.width, ids.height, ids.channels], [53, 37, 1])
        let (scores, shape) = try NumPyFile.decode(Data(contentsOf: scratch.appendingPathComponent("scores.npy")))
        let expected = argmax(Tensor(channels: shape[0], height: shape[1], width: shape[2], values: scores, in: context))
        XCTAssertEqual(ids.pixels.map(Int32.init), expected)
        XCTAssertGreaterThan(Set(ids.pixels).count, 1)
        let mask = try PNG.read(scratch.appendingPathComponent("mask.png").path)
        let palette = Palette(colors: ClassPreset.vocColors(count: 21))
        for i in stride(from: 0, to: ids.pixels.count, by: 97) {
            XCTAssertEqual(Array(mask.pixels[i * 3..<i * 3 + 3]), palette.color(Int(ids.pixels[i])))
        }
    }

    /// The working resolution: a short side of 18 runs the network on 26x18 and writes 53x37;
    /// native runs on 53x37. The two differ, and auto (no resize_size: 520) equals native here.
    func testScaleRunsSmallerAndWritesAtTheInputSize() throws {
        var outputs: [String: [UInt8]] = [:]
        for scale in ["18", "native", "auto"] {
            let (status, output) = try segview(["predict", image, "--model", model, "--scale", scale,
                                                "--ids", "ids-\(scale).png"])
            XCTAssertEqual(status, 0, output)
            let ids = try PNG.readLabels(scratch.appendingPathComponent("ids-\(scale).png").path)
            XCTAssertEqual([ids.width, ids.height], [53, 37], scale)
            outputs[scale] = ids.pixels
            let working = scale == "18" ? "(26x18)" : "(53x37)"
            XCTAssertTrue(output.contains("scale \(scale) \(working)"), output)
        }
        XCTAssertEqual(outputs["auto"], outputs["native"])
        XCTAssertNotEqual(outputs["18"], outputs["native"])
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

    /// `segview` found on PATH, run outside the checkout, still finds the bundled models (they were
    /// looked for beside argv[0], which then has no folder, and in the current directory).
    func testTheBundledModelsAreFoundFromAnyFolder() throws {
        let folder = try makeScratchDirectory("segview-elsewhere")
        defer { try? FileManager.default.removeItem(at: folder) }
        let onPath = "PATH='\(segviewBinary.deletingLastPathComponent().path)':$PATH; cd '\(folder.path)'; exec segview"
        let (status, output) = try runShell("\(onPath) models")
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.hasPrefix("camvid_deeplabv3.safetensors: deeplabv3 resnet, 11 classes"), output)
        try FileManager.default.copyItem(at: segviewBinary, to: folder.appendingPathComponent("segview"))
        let copied = try runShell("cd '\(folder.path)'; exec ./segview models")
        XCTAssertEqual(copied.status, 1, copied.output)
        XCTAssertTrue(copied.output.contains("no --model given, and no bundled models in ./samples/models or in the "
                                             + "checkout this segview was built in: give --model FILE|DIR"),
                      copied.output)
    }
}
