import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment a PNG or JPEG (or a folder of them) and write the colour mask, an overlay, the border map, "
            + "the class ids and/or the raw class scores.",
        discussion: """
            The network runs at the working resolution (--scale) and every output is written at the input's own size. \
            With no output option, the mask goes to ./<image name>.mask.png. Given a folder, every PNG and JPEG in it \
            is segmented and the output options name folders (created if needed) that receive <image name>.png (.npy \
            for scores); a file that fails is reported and the rest go on.
            """)

    @Argument(help: "Input image (PNG or JPEG, told apart by content; - or /dev/stdin for a pipe) or a folder of them.")
    var image: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Colour mask PNG to write (a folder when the input is one).")
    var out: String?

    @Option(help: "Mask blended over the image, PNG (a folder when the input is one).")
    var overlay: String?

    @Option(help: "Class ids as an 8-bit grey PNG (a folder when the input is one).")
    var ids: String?

    @Option(name: .customLong("save-logits"),
            help: "Class scores at input resolution, float32 .npy of shape [C, H, W] (a folder when the input is one).")
    var saveLogits: String?

    @Option(help: ArgumentHelp("Border map PNG: DFN's border network, or for other models the boundaries of the mask "
                               + "(a folder when the input is one).", valueName: "png"))
    var border: String?

    @Option(name: .customLong("border-colors"), help: "Border map colours: grey or heat.")
    var borderColors: ValueMap = .grey

    @Flag(help: "Overwrite existing output files.")
    var force = false

    @Flag(name: .customLong("skip-existing"),
          help: ArgumentHelp("Given a folder, leave out the images whose outputs all exist and make the others "
                             + "whole (go on with a stopped run)."))
    var skipExisting = false

    @Option(help: ArgumentHelp("Given a folder, segment only share K of N of its images (K from 1 to N; the "
                               + "split eval --shard makes).", valueName: "K/N"))
    var shard: Shard?

    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        try modelOptions.requireOne("predict")
        if requested.all.contains("") {
            throw ValidationError("--out, --overlay, --border, --ids and --save-logits must name a file or folder")
        }
        if Dataset.isDirectory(image) && requested.all.isEmpty {
            throw ValidationError("\(image) is a folder: name an output folder with --out (and/or --overlay, --border, "
                                  + "--ids, --save-logits)")
        }
        if skipExisting && force {
            throw ValidationError("--skip-existing keeps outputs that --force replaces: give one")
        }
        if skipExisting && !Dataset.isDirectory(image) {
            throw ValidationError("--skip-existing goes with a folder of images; \(image) is one image")
        }
        let named = [("--out", out, "png"), ("--overlay", overlay, "png"), ("--border", border, "png"),
                     ("--ids", ids, "png"), ("--save-logits", saveLogits, "npy")]
        for case let (option, path?, format) in named {
            if path == "-" {
                throw ValidationError("\(option) -: segview writes files, not standard output; give a file name")
            }
            // A picture's name that says another format would hold PNG or NumPy bytes all the same.
            let suffix = (path as NSString).pathExtension.lowercased()
            if !Dataset.isDirectory(image) && suffix != format && Self.otherFormats.contains(suffix) {
                throw ValidationError("\(option) \(path): segview writes \(format == "png" ? "PNG" : "NumPy .npy") "
                                      + "there; name the file .\(format)")
            }
        }
    }

    private static let otherFormats: Set<String> = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp",
                                                    "npy", "npz", "pt", "pth"]

    private var requested: OutputFiles {
        OutputFiles(mask: out, overlay: overlay, border: border, ids: ids, logits: saveLogits)
    }

    mutating func run() throws {
        if Dataset.isDirectory(image) { return try runFolder() }
        if let shard { throw Failure("--shard \(shard) splits a folder; \(image) is one image") }
        var files = requested
        if files.all.isEmpty {
            let stem = image == "-" ? "stdin" : URL(fileURLWithPath: image).deletingPathExtension().lastPathComponent
            files.mask = stem + ".mask.png"
        }
        try Failure.refuseColliding(outputs: files.all, options: "--out, --overlay, --border, --ids and --save-logits",
                                    inputs: [(image, "the input image")])
        try Failure.refuseExisting(files.all, force: force)  // before any work, not after a long forward pass

        var clock = Stopwatch()
        let segmenter = try modelOptions.segmenter(imageOptions, engine)
        let loadTime = clock.lap()
        segmenter.context.pool.resetPeak()
        let report = try segment(image, with: segmenter, to: files, overwrite: force)
        let working = report.result
        print("\(image): \(working.sourceWidth)x\(working.sourceHeight), \(segmenter.title), output stride "
              + "\(segmenter.outputStride), scale \(segmenter.scale) (\(working.width)x\(working.height)), "
              + (segmenter.augmentation.isEmpty ? "" : "test-time augmentation \(segmenter.augmentation), ")
              + "\(segmenter.context.threads) threads")
        print(String(format: "time: load %.1f ms, read %.1f ms, forward %.1f ms, write %.1f ms",
                     loadTime, report.read, working.inferenceMilliseconds, report.write))
        print(memoryLine(segmenter))
        if files.border != nil && !working.hasModelBorder {
            print("note: \(segmenter.model.metadata.architecture) has no border network; "
                  + "\(files.border!) shows the boundaries of the mask")
        }
        for path in files.all { print("wrote \(oneLine(path))") }
    }

    /// Reads, segments and writes one image; times in milliseconds.
    private func segment(_ path: String, with segmenter: Segmenter, to files: OutputFiles, overwrite: Bool) throws
        -> (result: SegmentationResult, read: Double, write: Double) {
        var clock = Stopwatch()
        let decoded: (image: RGBImage, sourceWidth: Int, sourceHeight: Int)
        do {
            decoded = try segmenter.read(path, fullSize: files.overlay != nil)
        } catch {
            throw imageOptions.explain(error)
        }
        let read = clock.lap()
        let result = try segmenter.segment(decoded.image, sourceWidth: decoded.sourceWidth,
                                           sourceHeight: decoded.sourceHeight, name: path)
        _ = clock.lap()
        let writer = OutputWriter(palette: Palette(colors: segmenter.model.metadata.classColors),
                                  borderColors: borderColors, overwrite: overwrite)
        try writer.write(result, image: decoded.image, to: files)
        return (result, read, clock.lap())
    }

    /// Outputs that would land on each other or on the inputs: `a.jpg` and `a.png` both make
    /// `a.png`, two kinds of PNG in one folder share names, and the input folder holds the images.
    private func refuseCollisions(_ paths: [String]) throws {
        let standard = { (path: String) in URL(fileURLWithPath: path).standardizedFileURL.path }
        let pngFolders = [out, overlay, border, ids].compactMap { $0 }.map(standard)
        let folders = pngFolders + [saveLogits].compactMap { $0 }.map(standard)
        if let folder = folders.first(where: { $0 == standard(image) }) {
            throw Failure("\(folder) is the input folder: outputs there would replace the images; name another folder")
        }
        if Set(pngFolders).count < pngFolders.count {
            throw Failure("two outputs name the same folder; give --out, --overlay, --border and --ids each their own")
        }
        var seen: [String: String] = [:]
        for path in paths where !ImageFile.isUnopenableName(path) {
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            if let other = seen[stem] {
                throw Failure("\(other) and \(path) would write the same output files (\(stem).png); rename one")
            }
            seen[stem] = path
        }
    }

    /// The output folders, made (with their missing parents) before any image is read. One that
    /// cannot be made, or takes no files, is named with the reason, and those made here are removed.
    private func makeFolders(_ folders: [String]) throws {
        var made: [String] = []
        func fail(_ folder: String, _ reason: String) -> Failure {
            for folder in made.reversed() { rmdir(folder) }
            return Failure("\(oneLine(folder)): \(reason)")
        }
        for folder in folders {
            // The folders to make, walked up as written: "~" and ".." are the shell's and the
            // file system's to resolve.
            var missing: [String] = []
            var current = folder
            var status = stat()
            while lstat(current, &status) != 0 {
                guard errno == ENOENT else {
                    throw fail(folder, "cannot make the folder: \(String(cString: strerror(errno)))")
                }
                missing.append(current)
                let parent = SafeFile.folder(of: current)
                if parent == current { break }
                current = parent
            }
            for path in missing.reversed() {
                if mkdir(path, 0o777) == 0 {
                    made.append(path)
                    continue
                }
                let failure = errno
                // Another run (a shard beside this one) may have made it meanwhile.
                guard failure == EEXIST && Dataset.isDirectory(path) else {
                    throw fail(path, "cannot make the folder: \(String(cString: strerror(failure)))")
                }
            }
            guard Dataset.isDirectory(folder) else { throw fail(folder, "is not a folder") }
            guard access(folder, W_OK | X_OK) == 0 else {
                throw fail(folder, "takes no new files: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Every image of a folder; failures are collected, reported at the end and make the exit status 1.
    private func runFolder() throws {
        let paths = try Dataset.images(inFolder: image).filter { shard?.contains($0) ?? true }
        if paths.isEmpty, let shard { throw Failure("shard \(shard) of \(image) holds no image") }
        try refuseCollisions(paths)
        try makeFolders(requested.all)
        var clock = Stopwatch()
        let segmenter = try modelOptions.segmenter(imageOptions, engine)
        let loadTime = clock.lap()
        segmenter.context.pool.resetPeak()
        var failures: [(String, String)] = []
        var written = 0, skipped = 0
        var spent = (read: 0.0, forward: 0.0, write: 0.0)  // milliseconds, over the images segmented
        let progress = ProgressBar(total: paths.count, label: "predict")
        for (index, path) in paths.enumerated() {
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            func inside(_ folder: String?, _ suffix: String) -> String? {
                folder.map { ($0 as NSString).appendingPathComponent(stem + suffix) }
            }
            let files = OutputFiles(mask: inside(out, ".png"), overlay: inside(overlay, ".png"),
                                    border: inside(border, ".png"), ids: inside(ids, ".png"),
                                    logits: inside(saveLogits, ".npy"))
            // With --skip-existing an image's set is kept whole or made whole: a set that a stopped run
            // (or a new output option) left incomplete is made again, over the part that exists.
            if skipExisting && files.all.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
                skipped += 1
                progress.update(index + 1)
                continue
            }
            do {
                try Failure.refuseExisting(files.all, force: force || skipExisting)
                let report = try segment(path, with: segmenter, to: files, overwrite: force || skipExisting)
                written += 1
                spent.read += report.read
                spent.forward += report.result.inferenceMilliseconds
                spent.write += report.write
            } catch {
                failures.append((path, "\(error)"))
            }
            progress.update(index + 1)
        }
        progress.finish()
        print("\(counted(paths.count, "image")), \(segmenter.title) at output stride \(segmenter.outputStride), scale "
              + "\(segmenter.scale): \(written) segmented, "
              + (skipExisting ? "\(skipped) skipped (their outputs exist), " : "") + "\(failures.count) failed")
        if written > 0 {
            let mean = 1 / Double(written)
            print(String(format: "time: load %.1f ms; per image segmented (mean of %d): read %.1f ms, "
                         + "forward %.1f ms, write %.1f ms", loadTime, written, spent.read * mean,
                         spent.forward * mean, spent.write * mean))
            print(memoryLine(segmenter))
        }
        for (path, reason) in failures {
            let detail = reason.hasPrefix(path + ": ") ? String(reason.dropFirst(path.count + 2)) : reason
            print("  failed: \(oneLine(path)): \(detail)")
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// "memory: weights ..., activation peak ..., process peak RSS ...": what predict's passes held.
private func memoryLine(_ segmenter: Segmenter) -> String {
    "memory: \(weightsAndActivationPeak(segmenter.model, segmenter.context.pool)), "
        + String(format: "process peak RSS %.1f MB", Double(peakResidentBytes()) / 1e6)
}

extension ValueMap: ExpressibleByArgument {}
