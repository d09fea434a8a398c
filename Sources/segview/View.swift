import ArgumentParser
import Foundation
import SegImage
import SegModels
import SegPipeline
import SegTUI

struct View: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open the full-screen viewer (the default command): image, class mask and border map side by side.",
        discussion: "Press ? in the viewer for the keys. Models come from --model (files, or folders of .safetensors "
                    + "files and PyTorch checkpoints); without one, the bundled samples/models.")

    @Argument(help: "Images (PNG or JPEG) or folders of them (n/p switch between them).")
    var images: [String] = []

    @Option(name: .customLong("model"), help: "A model file or a folder of them; repeat for more (m switches, c compares).")
    var models: [String] = []

    @Option(help: ArgumentHelp("Ground truth: a label PNG (one image) or a folder with NAME.png, NAME_L.png or "
                               + "NAME_label.png per image."))
    var labels: String?

    @Option(help: "Label value that marks unlabelled pixels.")
    var ignore = 255

    @Option(help: "Colours: auto, 24bit, 256, 16 or 8.")
    var colors = ColorOption.auto

    @Option(name: .customLong("max-size"), help: "Shrink larger images to fit this many pixels on their longest side.")
    var maxSize: Int?

    @Option(help: ArgumentHelp("Working resolution at start (r cycles): auto, native or a short side in pixels.",
                               valueName: "auto|native|N"))
    var scale: WorkingScale = .auto

    @Option(help: ArgumentHelp("Test-time augmentation at start (t cycles none, flip, flip,scales).",
                               valueName: "none|flip|scales|flip,scales"))
    var tta: TestTimeAugmentation = []

    @Option(help: ArgumentHelp("Draw the image panes as real pixels: auto (ask the terminal), kitty, sixel, iterm "
                               + "or none (half blocks).", valueName: "auto|kitty|sixel|iterm|none"))
    var graphics = GraphicsMode.auto

    @Flag(name: .customLong("no-mouse"),
          help: "Leave the mouse to the terminal (text selection) instead of clicks and the wheel.")
    var noMouse = false

    @OptionGroup var checkpoint: CheckpointArguments
    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        guard !images.isEmpty else {
            throw ValidationError("give one or more images, e.g. `segview samples/scene1.png` (see `segview --help`)")
        }
        if let maxSize, maxSize < 8 { throw ValidationError("--max-size must be at least 8") }
        guard (0...255).contains(ignore) else { throw ValidationError("--ignore must be a label value, 0 to 255") }
    }

    mutating func run() throws {
        images = try Dataset.images(images)
        guard isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1 else {
            throw Failure("standard \(isatty(STDOUT_FILENO) == 1 ? "input" : "output") is not a terminal: the viewer "
                          + "needs one.\nTo write masks to files, use `segview predict \(images[0]) --model MODEL "
                          + "--out MASK.png`.")
        }
        _ = try Terminal.capabilities()  // a terminal the viewer cannot use is refused before the models load
        let labelFiles = try labels.map { try Dataset.labels(for: images, from: $0) } ?? [:]
        // Some images without labels are usual (their status line shows no scores); none is a mistake.
        if let labels, Dataset.isDirectory(labels), labelFiles.keys.allSatisfy(ImageFile.isUnopenableName) {
            throw Failure("no image has a label file in \(labels) (\(Dataset.labelNameRule))")
        }
        let paths = models.isEmpty ? [try ModelCatalog.bundledDirectory()] : models
        let (loadedModels, skipped) = try ModelCatalog.load(paths, checkpoint.options(), engine)
        var notices: [String] = []
        if !skipped.isEmpty {
            notices.append("skipped \(skipped.count) model\(skipped.count == 1 ? "" : "s") that do not load: "
                           + skipped.joined(separator: ", ") + " (the reasons are printed on quitting)")
        }
        var options = Viewer.Options(images: images, models: loadedModels, labels: labelFiles,
                                     ignoreLabel: ignore, colors: colors.mode, maxPixels: imageOptions.maxPixels,
                                     maxSide: maxSize, scale: scale)
        options.notice = notices.isEmpty ? nil : notices.joined(separator: "; ")
        options.allowTruncated = imageOptions.allowTruncated
        options.mouse = !noMouse
        options.augmentation = tta
        options.graphics = graphics
        options.context = engine.context()
        if let maxMemoryBytes = imageOptions.maxMemoryBytes { options.maxMemory = maxMemoryBytes }
        let signal = try Viewer(options: options).run()
        // The terminal is restored, but a forward pass or the image scores may still be running in
        // the background: exit(3)'s handlers would free OpenBLAS's buffers under a product that
        // then ends ("BLAS : Bad memory unallocation", a segmentation fault). Nothing is left to
        // flush but the standard streams, so the process ends here, handlers skipped; a signal
        // gives the shell's status for it, 128 + its number (Ctrl-C: 130).
        fflush(stdout)
        fflush(stderr)
        _exit(signal != 0 ? 128 + signal : 0)
    }
}

extension GraphicsMode: ExpressibleByArgument {}

/// Finds and loads model files.
enum ModelCatalog {
    /// samples/models of the checkout the binary was built in (found from the running binary, not
    /// from how it was called: `segview` on PATH has no folder in its argv[0]), else of the
    /// current directory.
    static func bundledDirectory() throws -> String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let checkout = executable.deletingLastPathComponent().appendingPathComponent("../../../samples/models")
            .standardized.path
        for folder in [checkout, "samples/models"] where Dataset.isDirectory(folder) { return folder }
        throw Failure("no --model given, and no bundled models in ./samples/models or in the checkout this segview "
                      + "was built in: give --model FILE|DIR")
    }

    /// What a folder's model files are called: segview's own, and PyTorch checkpoints.
    static let extensions = [".safetensors"] + CheckpointConverter.fileExtensions

    /// Model files named directly, or every model file in a named folder (sorted).
    static func files(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw Failure("model \(path) \(Dataset.absence(path))")
            }
            if isDirectory.boolValue {
                files += try Dataset.files(inFolder: path) { name in extensions.contains { name.hasSuffix($0) } }
            } else {
                files.append(path)
            }
        }
        guard !files.isEmpty else {
            throw Failure("no model files (.safetensors or PyTorch checkpoints) in \(paths.joined(separator: ", "))")
        }
        return files
    }

    /// The viewer's models. A file named on its own must load; in a folder, a file that does not
    /// (a checkpoint still being written, a stray file) is skipped with a note naming it and why.
    /// Returns the models and the names of the files skipped.
    static func load(_ paths: [String], _ checkpoint: CheckpointOptions, _ engine: EngineOptions) throws
        -> (models: [(name: String, model: SegmentationModel)], skipped: [String]) {
        let folders = Set(paths.filter(Dataset.isDirectory).map { URL(fileURLWithPath: $0).path })
        var models: [(name: String, model: SegmentationModel)] = []
        var skipped: [String] = []
        for file in try files(paths) {
            let url = URL(fileURLWithPath: file)
            do {
                models.append((url.lastPathComponent, try engine.load(file, checkpoint: checkpoint)))
            } catch where folders.contains(url.deletingLastPathComponent().path) {
                printToStandardError("segview: skipped a model that does not load: \(error)")
                skipped.append(url.lastPathComponent)
            }
        }
        guard !models.isEmpty else {
            throw Failure("no model in \(paths.joined(separator: ", ")) loads (the reasons are above)")
        }
        return (models, skipped)
    }
}
