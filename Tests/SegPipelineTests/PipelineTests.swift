import Dispatch
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline
import XCTest

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let modelFixtures = repositoryRoot.appendingPathComponent("Tests/SegModelsTests/Fixtures")

final class WorkingScaleTests: XCTestCase {
    func testAutoShrinksToTheModelsShortSideAndNeverEnlarges() {
        XCTAssertTrue(WorkingScale.auto.workingSize(width: 4000, height: 3000, resizeSize: 360) == (480, 360))
        XCTAssertTrue(WorkingScale.auto.workingSize(width: 3000, height: 4000, resizeSize: 360) == (360, 480))
        XCTAssertTrue(WorkingScale.auto.workingSize(width: 320, height: 240, resizeSize: 360) == (320, 240))
        // Without a recorded size, torchvision's 520.
        XCTAssertTrue(WorkingScale.auto.workingSize(width: 1920, height: 1080, resizeSize: nil) == (924, 520))
    }

    func testNativeAndAnExplicitShortSide() {
        XCTAssertTrue(WorkingScale.native.workingSize(width: 4000, height: 3000, resizeSize: 360) == (4000, 3000))
        XCTAssertTrue(WorkingScale.shortSide(720).workingSize(width: 480, height: 360, resizeSize: 360) == (960, 720))
        XCTAssertTrue(WorkingScale.shortSide(100).workingSize(width: 53, height: 37, resizeSize: nil) == (143, 100))
    }

    func testArgumentsParse() {
        XCTAssertEqual(WorkingScale(scaleArgument: "auto"), .auto)
        XCTAssertEqual(WorkingScale(scaleArgument: "native"), .native)
        XCTAssertEqual(WorkingScale(scaleArgument: "360"), .shortSide(360))
        for bad in ["0", "-5", "big", "99999"] { XCTAssertNil(WorkingScale(scaleArgument: bad), bad) }
    }
}

final class DatasetTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-dataset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func touch(_ names: [String], in folder: String) throws -> String {
        let url = scratch.appendingPathComponent(folder)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for name in names { try Data().write(to: url.appendingPathComponent(name)) }
        return url.path
    }

    func testEveryLabelNameFormPairsWithPNGAndJPEGImages() throws {
        let images = try touch(["a.jpg", "b.png", "c.JPG", "d.jpeg", "notes.txt"], in: "images")
        let labels = try touch(["a.png", "b_L.png", "c_label.png", "e.png"], in: "labels")
        let files = try Dataset.images(inFolder: images)
        XCTAssertEqual(files.map { ($0 as NSString).lastPathComponent }, ["a.jpg", "b.png", "c.JPG", "d.jpeg"])
        let pairs = try Dataset.labels(for: files, from: labels)
        XCTAssertEqual(pairs.count, 3)
        XCTAssertEqual(pairs[files[0]].map { ($0 as NSString).lastPathComponent }, "a.png")
        XCTAssertEqual(pairs[files[1]].map { ($0 as NSString).lastPathComponent }, "b_L.png")
        XCTAssertEqual(pairs[files[2]].map { ($0 as NSString).lastPathComponent }, "c_label.png")
        XCTAssertNil(pairs[files[3]], "d has no label")
    }

    func testTheFirstFormWinsAndAnImageIsNeverItsOwnLabel() throws {
        let folder = try touch(["x.png", "x_L.png"], in: "both")
        XCTAssertEqual(Dataset.label(for: "elsewhere/x.jpg", inFolder: folder).map { ($0 as NSString).lastPathComponent },
                       "x.png")
        XCTAssertEqual(Dataset.label(for: folder + "/x.png", inFolder: folder).map { ($0 as NSString).lastPathComponent },
                       "x_L.png")
    }

    func testFoldersWithoutImagesAndMissingPathsAreErrorsNamingThem() throws {
        let empty = try touch(["readme.txt"], in: "empty")
        XCTAssertThrowsError(try Dataset.images([empty])) {
            XCTAssertEqual("\($0)", "\(empty): has no PNG or JPEG files")
        }
        XCTAssertThrowsError(try Dataset.images([scratch.appendingPathComponent("nope.png").path])) {
            XCTAssertTrue("\($0)".hasSuffix("nope.png: does not exist"), "\($0)")
        }
        // Links that lead nowhere say so (a loop "did not exist").
        let loop = scratch.appendingPathComponent("loop.png").path
        let dangling = scratch.appendingPathComponent("d.png").path
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: loop)
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: "nope.png")
        XCTAssertThrowsError(try Dataset.images([loop])) {
            XCTAssertTrue("\($0)".hasSuffix("loop.png: is a symbolic link that cannot be followed: Too many levels of "
                                           + "symbolic links"), "\($0)")
        }
        XCTAssertThrowsError(try Dataset.images([dangling])) {
            XCTAssertTrue("\($0)".hasSuffix("d.png: is a symbolic link to a file that does not exist"), "\($0)")
        }
        XCTAssertThrowsError(try Dataset.labels(for: ["a.png", "b.png"], from: try touch(["l.png"], in: "one") + "/l.png"))
    }

    /// A folder's FIFOs, devices and folders are not its images or labels, whatever their names: a
    /// FIFO waited for a writer (the viewer froze on it), a folder named x.png was "empty".
    func testOnlyRegularFilesInAFolderAreImagesOrLabels() throws {
        let folder = try touch(["a.png", "b.png"], in: "special")
        XCTAssertEqual(mkfifo(folder + "/c.png", 0o600), 0)
        try FileManager.default.createDirectory(atPath: folder + "/e.png", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: folder + "/f.png", withDestinationPath: folder + "/a.png")
        try FileManager.default.createSymbolicLink(atPath: folder + "/g.png", withDestinationPath: "/dev/zero")
        XCTAssertEqual(try Dataset.images([folder]).map { ($0 as NSString).lastPathComponent },
                       ["a.png", "b.png", "f.png"])
        XCTAssertNil(Dataset.label(for: "elsewhere/c.jpg", inFolder: folder), "a FIFO is no label")
        XCTAssertNil(Dataset.label(for: "elsewhere/e.jpg", inFolder: folder), "a folder is no label")
    }
}

final class SegmenterTests: XCTestCase {
    let context = EngineContext()

    let picture = try! PNG.read(modelFixtures.appendingPathComponent("street_37x53.png").path)

    func model() throws -> SegmentationModel {
        try ModelLoader.load(path: modelFixtures.appendingPathComponent("tiny_deeplabv3.safetensors").path)
    }

    func testNativeScaleIsTheModelOnTheImage() throws {
        let model = try model()
        let result = try Segmenter(model: model, scale: .native).segment(picture)
        let direct = model.predict(Normalization(model.metadata).tensor(from: picture, in: context), outputStride: 8)
        XCTAssertEqual([result.width, result.height], [53, 37])
        XCTAssertEqual(result.scores.toArray(), direct.scores.toArray())
        XCTAssertEqual(result.labels(width: 53, height: 37), argmax(direct.scores))
    }

    func testAWorkingSizeRunsSmallerAndOutputsComeBackAtTheSourceSize() throws {
        let model = try model()
        let segmenter = try Segmenter(model: model, scale: .shortSide(18))
        let result = try segmenter.segment(picture)
        XCTAssertEqual([result.width, result.height], [26, 18])
        XCTAssertEqual([result.sourceWidth, result.sourceHeight], [53, 37])
        let shrunk = picture.downscaled(width: 26, height: 18)
        let direct = model.predict(Normalization(model.metadata).tensor(from: shrunk, in: context), outputStride: 8)
        XCTAssertEqual(result.scores.toArray(), direct.scores.toArray(), "the network sees the area-averaged image")
        let full = resize(direct.scores, height: 37, width: 53, mode: .bilinear(alignCorners: false))
        XCTAssertEqual(result.labels(width: 53, height: 37), argmax(full), "labels of the upsampled scores")
    }

    func largestDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.toArray(), b.toArray()).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// With `flip` the probabilities are the mean of the plain pass and the mirrored one mirrored
    /// back, so that the result is mirror-symmetric where the network alone is not.
    func testFlipAugmentationAveragesTheMirroredPass() throws {
        let mirroredPicture = RGBImage(width: 53, height: 37, pixels: (0..<37 * 53).flatMap { i -> [UInt8] in
            let (y, x) = i.quotientAndRemainder(dividingBy: 53)
            let source = 3 * (y * 53 + 52 - x)
            return Array(picture.pixels[source..<source + 3])
        })
        var segmenter = try Segmenter(model: try model(), scale: .native, context: context)
        let plain = try segmenter.segment(picture).probabilities
        let plainMirrored = try segmenter.segment(mirroredPicture).probabilities
        XCTAssertGreaterThan(largestDifference(plain, mirrored(plainMirrored)), 1e-3,
                             "the network alone is not symmetric")
        segmenter.augmentation = .flip
        let flipped = try segmenter.segment(picture).probabilities
        let halves = zip(plain.toArray(), mirrored(plainMirrored).toArray()).map { ($0 + $1) / 2 }
        let mean = Tensor(channels: plain.channels, height: 37, width: 53, values: halves, in: context)
        XCTAssertLessThan(largestDifference(flipped, mean), 1e-5)
        let flippedMirror = try segmenter.segment(mirroredPicture).probabilities
        XCTAssertLessThan(largestDifference(flipped, mirrored(flippedMirror)), 1e-5)
    }

    /// With `scales` the probabilities of the passes at 0.75x, 1x and 1.25x the working size (the
    /// normalised input resized bilinearly) are brought back to the working size and averaged.
    func testScalesAugmentationAveragesThreeSizes() throws {
        let model = try model()
        var segmenter = try Segmenter(model: model, scale: .native, context: context)
        segmenter.augmentation = .scales
        let result = try segmenter.segment(picture)
        XCTAssertEqual([result.width, result.height], [53, 37])
        let input = Normalization(model.metadata).tensor(from: picture, in: context)
        var sum = [Float](repeating: 0, count: input.plane * model.metadata.numClasses)
        for (height, width) in [(37, 53), (28, 40), (46, 66)] {
            let scaled = height == 37 ? input
                : resize(input, height: height, width: width, mode: .bilinear(alignCorners: false))
            let probabilities = resize(softmax(model.predict(scaled, outputStride: 8).scores), height: 37, width: 53,
                                       mode: .bilinear(alignCorners: false))
            for (i, p) in probabilities.toArray().enumerated() { sum[i] += p / 3 }
        }
        let expected = Tensor(channels: model.metadata.numClasses, height: 37, width: 53, values: sum, in: context)
        XCTAssertLessThan(largestDifference(result.probabilities, expected), 1e-5)
        let plain = try Segmenter(model: model, scale: .native).segment(picture).probabilities
        XCTAssertGreaterThan(largestDifference(result.probabilities, plain), 1e-4, "the other sizes change the result")
        XCTAssertEqual(TestTimeAugmentation("flip,scales")?.passes, 6)
        XCTAssertEqual(TestTimeAugmentation("scales,flip"), [.flip, .scales])
        XCTAssertEqual(TestTimeAugmentation("none"), [])
        for bad in ["", "flip,", "mirror", "none,flip"] { XCTAssertNil(TestTimeAugmentation(bad), bad) }
    }

    func testAWorkingSizeOverTheBudgetIsRefusedNamingTheImage() throws {
        let segmenter = try Segmenter(model: try model(), scale: .shortSide(1000), maxPixels: 1_000_000)
        XCTAssertThrowsError(try segmenter.segment(picture, name: "street.png")) {
            XCTAssertEqual("\($0)", "street.png: working size 1432x1000 is more than the limit of 1000000 pixels")
        }
    }

    /// Finite but absurd metadata (a std of 1e-38) overflows the network; that is an error, not a mask,
    /// naming the first layer whose output overflowed (the backbone's stay finite, if huge).
    func testNonFiniteScoresAreAnError() throws {
        let path = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        var header = try SafeTensorsFile(path: path).metadata
        header["input_std"] = "1e-38,1e-38,1e-38"
        let model = try ModelLoader.load(path: path)
        let broken = try Segmenter(model: BrokenMetadata(model, try ModelMetadata(header)), scale: .native)
        XCTAssertThrowsError(try broken.segment(picture, name: "street.png")) {
            XCTAssertTrue("\($0)".hasPrefix("street.png: the network's score for class "), "\($0)")
            XCTAssertTrue("\($0)".hasSuffix("; the first layer with a non-finite output is classifier.1: "
                                             + "the model's weights or metadata are broken"), "\($0)")
        }
        // A std of 1e-45 (a denormal) would make the normalised input itself infinite, and the first
        // ReLU would turn that into zeros: a silent, collapsed mask. Refused at load.
        header["input_std"] = "1e-45,1e-45,1e-45"
        XCTAssertThrowsError(try ModelMetadata(header)) {
            XCTAssertEqual("\($0)", "model metadata 'input_std': too small: normalised pixels would overflow")
        }
    }

    /// A pass beyond --max-memory is refused before it starts (a 10000x10000 PNG used to abort the
    /// process allocating gigabytes), from an estimate that follows the pass's measured peak.
    func testPassesBeyondTheMemoryLimitAreRefusedBeforeTheyRun() throws {
        var segmenter = try Segmenter(model: try model(), scale: .shortSide(1100))
        segmenter.maxMemory = 50_000_000
        XCTAssertThrowsError(try segmenter.segment(picture, name: "street.png")) {
            XCTAssertTrue("\($0)".hasPrefix("street.png: working size 1576x1100 would need about "), "\($0)")
            XCTAssertTrue("\($0)".contains("more than the limit of 0.1 GB (--max-memory)"), "\($0)")
        }
        // The short side the refusal offers fits (the viewer shrinks to it), a tenth more does not.
        // (Working sizes under a megapixel are not estimated: a limit that lets through more.)
        var fitting = 0
        segmenter = try Segmenter(model: try model(), scale: .shortSide(3000))
        segmenter.maxMemory = 400_000_000
        XCTAssertThrowsError(try segmenter.input(for: picture, sourceWidth: 53, sourceHeight: 37)) {
            fitting = ($0 as? MemoryLimitExceeded)?.fittingShortSide ?? 0
        }
        XCTAssertGreaterThan(fitting * fitting * 53 / 37, 1 << 20)
        for (side, fits) in [(fitting, true), (fitting * 11 / 10, false)] {
            let smaller = segmenter.at(.shortSide(side))
            XCTAssertEqual((try? smaller.input(for: picture, sourceWidth: 53, sourceHeight: 37)) != nil, fits,
                           "short side \(side)")
        }
        let network = try model()
        let estimate = try Segmenter(model: network, scale: .native).estimatedPassCost(width: 384, height: 256)
            .bytes(pixels: 384 * 256)
        let kept = 384 * 256 * 4 * (3 + 2 * network.metadata.numClasses + 1)
        let fresh = EngineContext()
        _ = network.predict(Tensor(channels: 3, height: 256, width: 384, repeating: 0.3, in: fresh), outputStride: 8)
        let measured = fresh.pool.peakBytes
        let ratio = Double(estimate - kept) / Double(measured)
        XCTAssertTrue((0.8...3).contains(ratio), "estimated \(estimate - kept) bytes of activations, measured \(measured)")
    }

    /// A thin working size is estimated at its own short side: FCN's 100 pixels of padding make a
    /// 24x4000 pass cost what a 224x4000 one would, which square probes (and no estimate at all below
    /// a megapixel) missed; a 1x999999 PNG of 2 KB took 18 GB. The short side a refusal offers fits.
    func testThinWorkingSizesAreEstimatedAtTheirShortSide() throws {
        let fcn8s = try ModelLoader.load(path: modelFixtures.appendingPathComponent("arch/fcn8s.safetensors").path)
        let (width, height) = (24, 4000)
        let thin = RGBImage(width: width, height: height, pixels: [UInt8](repeating: 90, count: width * height * 3))
        var segmenter = try Segmenter(model: fcn8s, scale: .native)
        let estimate = segmenter.estimatedPassCost(width: width, height: height).bytes(pixels: width * height)
        let kept = width * height * 4 * (3 + 2 * fcn8s.metadata.numClasses + 1)
        let fresh = EngineContext()
        _ = fcn8s.predict(Tensor(channels: 3, height: height, width: width, repeating: 0.3, in: fresh), outputStride: 8)
        let measured = fresh.pool.peakBytes
        // Thin passes are over-estimated on purpose (the larger cost per pixel of the two probes
        // bounds them); how far depends on the kernels' scratch: 1.2-1.8x on OpenBLAS's paths,
        // 4.0x with the AVX-512 kernels, where this pass's peak hardly grows past the probes'.
        XCTAssertTrue((0.8...5).contains(Double(estimate - kept) / Double(measured)),
                      "estimated \(estimate - kept) bytes of activations, measured \(measured)")
        segmenter.maxMemory = measured / 2
        var offered = 0
        XCTAssertThrowsError(try segmenter.input(for: thin, sourceWidth: width, sourceHeight: height, name: "t.png")) {
            XCTAssertTrue("\($0)".hasPrefix("t.png: working size 24x4000 would need about "), "\($0)")
            offered = ($0 as? MemoryLimitExceeded)?.fittingShortSide ?? 0
        }
        XCTAssertGreaterThan(offered, 0)
        for (side, fits) in [(offered, true), (offered + 1, false)] {
            let smaller = segmenter.at(.shortSide(side))
            XCTAssertEqual((try? smaller.input(for: thin, sourceWidth: width, sourceHeight: height)) != nil, fits,
                           "short side \(side)")
        }
        segmenter.maxMemory = estimate + 1
        XCTAssertNoThrow(try segmenter.input(for: thin, sourceWidth: width, sourceHeight: height))
        // One pixel across: no smaller short side to offer.
        segmenter.maxMemory = 1000
        let line = RGBImage(width: 1, height: 3000, pixels: [UInt8](repeating: 90, count: 3000 * 3))
        XCTAssertThrowsError(try segmenter.input(for: line, sourceWidth: 1, sourceHeight: 3000, name: "l.png")) {
            XCTAssertTrue("\($0)".hasSuffix("no --scale fits an image of this shape: crop it"), "\($0)")
        }
    }

    func testAStrideTheModelCannotRunIsRefused() throws {
        let fcn8s = try ModelLoader.load(path: modelFixtures.appendingPathComponent("arch/fcn8s.safetensors").path)
        XCTAssertThrowsError(try Segmenter(model: fcn8s, outputStride: 4))
    }

    /// Two models in flight at once (the viewer's compare mode) give what each gives alone.
    func testTwoModelsAtOnceGiveTheirResultsAlone() throws {
        let first = try Segmenter(model: try model(), scale: .native)
        let second = try Segmenter(model: try ModelLoader.load(path: modelFixtures.appendingPathComponent(
            "tiny_fcn.safetensors").path), scale: .native)
        let alone = [try first.segment(picture).scores.toArray(), try second.segment(picture).scores.toArray()]
        for _ in 0..<3 {
            var together: [[Float]] = [[], []]
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let scores = try! (i == 0 ? first : second).segment(picture).scores.toArray()
                lock.lock()
                together[i] = scores
                lock.unlock()
            }
            XCTAssertEqual(together, alone)
        }
    }
}

final class OutputWriterTests: XCTestCase {
    let context = EngineContext()

    func testIdsAreTheLabelsAsGreyAndMasksAreWrittenAtTheSourceSize() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Three classes over a 2x3 working grid, written at 4x6.
        let scores = Tensor(channels: 3, height: 2, width: 3, values: [
            5, 0, 0, 0, 0, 0,
            0, 5, 0, 0, 5, 0,
            0, 0, 5, 5, 0, 5,
        ], in: context)
        let result = SegmentationResult(prediction: Prediction(scores: scores), milliseconds: 0, sourceWidth: 6, sourceHeight: 4)
        XCTAssertEqual(result.labels, [0, 1, 2, 2, 1, 2])
        let files = OutputFiles(mask: scratch.appendingPathComponent("mask.png").path,
                                ids: scratch.appendingPathComponent("ids.png").path)
        let palette = Palette(colors: [[10, 20, 30], [40, 50, 60], [70, 80, 90]])
        try OutputWriter(palette: palette).write(result, image: nil, to: files)
        let ids = try PNG.readLabels(files.ids!)
        XCTAssertEqual([ids.width, ids.height, ids.channels], [6, 4, 1])
        XCTAssertEqual(ids.pixels, result.labels(width: 6, height: 4).map(UInt8.init))
        XCTAssertEqual(Set(ids.pixels), [0, 1, 2])
        let mask = try PNG.read(files.mask!)
        XCTAssertEqual(Array(mask.pixels.prefix(3)), [10, 20, 30])
        XCTAssertThrowsError(try OutputWriter(palette: palette).write(result, image: nil, to: files)) {
            XCTAssertTrue("\($0)".hasSuffix("mask.png: already exists"), "\($0)")
        }
    }
}

/// A model with other metadata (the preprocessing the pipeline reads from it).
private final class BrokenMetadata: SegmentationModel {
    let base: SegmentationModel
    let metadata: ModelMetadata
    init(_ base: SegmentationModel, _ metadata: ModelMetadata) {
        self.base = base
        self.metadata = metadata
    }
    var outputStrides: [Int] { base.outputStrides }
    var parameterCount: Int { base.parameterCount }
    func predict(_ image: Tensor, outputStride: Int) -> Prediction { base.predict(image, outputStride: outputStride) }
}
