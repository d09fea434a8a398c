import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline
import SegTUI

@main
struct Segview: ParsableCommand {
    static let version = "0.20.0"

    static let configuration = CommandConfiguration(
        commandName: "segview",
        abstract: "Semantic segmentation in the terminal: FCN, DeepLabV3 and friends on the CPU.",
        version: version,
        subcommands: [View.self, Predict.self, Eval.self, Models.self, Bench.self, BenchView.self, Info.self,
                      Convert.self, Quantize.self],
        defaultSubcommand: View.self)
}

/// A runtime failure: printed as "Error: <description>" with exit status 1 and no usage text
/// (usage errors, thrown as `ValidationError` from `validate()`, exit 64 with usage).
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// `error` about `path`, its message prefixed with the path unless it names it already.
    init(naming path: String, _ error: Error) {
        let message = "\(error)"
        self.init(message.contains(path) ? message : "\(path): \(message)")
    }

    /// Outputs are checked before the work, not after it. A name that is or ends as a folder is
    /// said to be one first: --force would not help it.
    static func refuseExisting(_ paths: [String], force: Bool) throws {
        for path in paths {
            var status = stat()
            let exists = lstat(path, &status) == 0
            if path.hasSuffix("/") || Dataset.isDirectory(path) {  // a link to a folder too
                throw Failure("\(oneLine(path)) names a folder: name a file")
            }
            if exists && !force { throw Failure("\(oneLine(path)) already exists (use --force to overwrite)") }
        }
    }

    /// One file named as two outputs would get the first and then refuse (or, with --force, take)
    /// the second; an input named as an output would be replaced by what is made from it, even with
    /// --force. `options` names the outputs' options, `inputs` the inputs and what each is.
    static func refuseColliding(outputs: [String], options: String, inputs: [(path: String, role: String)]) throws {
        // An output is its folder's real path and its own name: SafeFile replaces a symlink there,
        // it never writes through one.
        let placed = outputs.map { path -> String in
            let parent = SafeFile.folder(of: path)
            let folder = realpath(parent, nil).map { real in
                defer { free(real) }
                return String(cString: real)
            } ?? parent
            return folder + "/" + (path as NSString).lastPathComponent
        }
        if Set(placed).count < placed.count {
            throw Failure("two outputs name the same file; give \(options) each their own")
        }
        for (path, role) in inputs {
            var input = stat(), output = stat()
            let isPipe = path == "-" || path == "/dev/stdin"
            guard (isPipe ? fstat(STDIN_FILENO, &input) : stat(path, &input)) == 0 else { continue }
            if let index = outputs.firstIndex(where: {
                lstat($0, &output) == 0 && (output.st_dev, output.st_ino) == (input.st_dev, input.st_ino)
            }) {
                throw Failure("\(oneLine(outputs[index])) is \(role): the output would replace it; name another file")
            }
        }
    }
}

extension Precision: ExpressibleByArgument {}

extension WorkingScale: ExpressibleByArgument {
    public init?(argument: String) { self.init(scaleArgument: argument) }
    public static var defaultCompletionKind: CompletionKind { .list(["auto", "native", "360", "520"]) }
}

extension TestTimeAugmentation: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public static var defaultCompletionKind: CompletionKind { .list(["none", "flip", "scales", "flip,scales"]) }
    /// As typed: an option set would otherwise show its raw value ("0").
    public var defaultValueDescription: String { description }
}

/// The model a command runs, the output stride and the working resolution.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"),
            help: "Model file (.safetensors or a PyTorch checkpoint), or a folder holding one (eval: one or two).")
    var models: [String] = []

    /// The one model of the commands that run one (their `validate()` says so).
    var model: String { models[0] }

    @OptionGroup var checkpoint: CheckpointArguments

    @Option(name: .customLong("output-stride"), help: "8, 16 or 32 (default: the stride the model was trained at).")
    var outputStride: Int?

    @Option(help: ArgumentHelp(
        "Working resolution: auto (shrink to the model's resize_size), native (the image's own size) or a short side "
        + "in pixels.", valueName: "auto|native|N"))
    var scale: WorkingScale = .auto

    @Option(help: ArgumentHelp("Test-time augmentation: also run the mirrored image (flip) and/or 0.75x and 1.25x the "
                               + "working size (scales), averaging the probabilities; each pass costs a forward pass.",
                               valueName: "none|flip|scales|flip,scales"))
    var tta: TestTimeAugmentation = []

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("Missing expected argument '--model <model>'") }
        if let outputStride, ![8, 16, 32].contains(outputStride) {
            throw ValidationError("--output-stride must be 8, 16 or 32")
        }
    }

    /// For the commands that run one model.
    func requireOne(_ command: String) throws {
        guard models.count == 1 else { throw ValidationError("\(command) runs one model: give --model once") }
    }

    /// Loads the model (the first, or `path`) and checks that it can run at the requested stride.
    func segmenter(_ images: ImageOptions, _ engine: EngineOptions, kernels: KernelChoices = KernelChoices(),
                   path: String? = nil) throws -> Segmenter {
        let model = path ?? self.model
        let files = try ModelCatalog.files([model])
        guard files.count == 1 else {
            throw Failure("\(model) holds \(files.count) model files; name one of them with --model")
        }
        do {
            let model = try engine.load(files[0], checkpoint: checkpoint.options())
            var segmenter = try Segmenter(model: model, outputStride: outputStride, scale: scale,
                                          context: engine.context(kernels: kernels))
            images.apply(to: &segmenter)
            segmenter.augmentation = tta
            return segmenter
        } catch let error as UnsupportedStride {
            throw Failure("\(files[0]): \(error)")
        }
    }
}

/// How pictures are read: PNG or JPEG by content, within a pixel budget.
struct ImageOptions: ParsableArguments {
    @Option(name: .customLong("max-pixels"),
            help: "Refuse images (and working sizes) with more pixels than this, before decoding them.")
    var maxPixels = ImageFile.defaultMaxPixels

    @Option(name: .customLong("max-memory"),
            help: "Refuse forward passes estimated to need more than this many MB (default: 3/4 of physical memory).")
    var maxMemory: Int?

    @Flag(name: .customLong("allow-truncated"),
          help: "Keep what a truncated or corrupt JPEG decodes to (grey where data is missing) instead of refusing it.")
    var allowTruncated = false

    func validate() throws {
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
        if let maxMemory, !(1...1_000_000_000).contains(maxMemory) {
            throw ValidationError("--max-memory must be 1 to 1000000000 (MB)")
        }
    }

    var maxMemoryBytes: Int? { maxMemory.map { $0 * 1_000_000 } }

    /// The pixel and memory budgets and the truncated-JPEG choice, given to `segmenter`.
    func apply(to segmenter: inout Segmenter) {
        segmenter.maxPixels = maxPixels
        segmenter.allowTruncated = allowTruncated
        if let maxMemoryBytes { segmenter.maxMemory = maxMemoryBytes }
    }

    /// An image error with the flag that raises the limit named.
    func explain(_ error: Error) -> Error {
        if let error = error as? ImageError, error.reason.contains("more than the limit") {
            return ImageError(path: error.path, reason: error.reason + " (raise it with --max-pixels)")
        }
        return error
    }
}

/// "1 image", "2 images".
func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// Options every command that runs a network shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("The convolutions' number format: int8 needs a file made by `segview quantize` "
                               + "(default: the file's own).", valueName: "fp32|int8"))
    var precision: Precision?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// What model file `path` runs in: the precision asked for, else the file's own. Without AVX-512
    /// VNNI an int8 file runs in float32, and an explicit `--precision int8` on the portable kernel,
    /// each with a note saying so.
    func precision(for path: String) throws -> (precision: Precision, note: String?) {
        let own = ModelLoader.precision(path: path)
        if precision == .int8 && own != .int8 {
            throw Failure("\(path): the file is float32 only: make an int8 one with `segview quantize`")
        }
        let name = (path as NSString).lastPathComponent
        switch (precision, own, Int8Kernels.available) {
        case (.int8, _, false):
            return (.int8, "segview: this CPU has no AVX-512 VNNI: \(name) runs int8 on the portable kernel, "
                        + "slower than float32 (for checking accuracy)")
        case (nil, .int8, false):
            return (.fp32, "segview: this CPU has no AVX-512 VNNI: \(name) runs in float32 "
                        + "(--precision int8 forces int8 on a slower portable kernel)")
        default:
            return (precision ?? own, nil)
        }
    }

    /// Model file `path` in the precision `precision(for:)` gives, its note on standard error.
    func load(_ path: String, checkpoint: CheckpointOptions) throws -> SegmentationModel {
        if ImageFile.isUnopenableName(path) { throw Failure("\(oneLine(path)): \(ImageFile.unopenableNameReason)") }
        let (precision, note) = try precision(for: path)
        if let note { printToStandardError(note) }
        do {
            return try ModelLoader.load(path: path, checkpoint: checkpoint, precision: precision)
        } catch {
            // A tensor's or the metadata's complaint does not say which file (eval may load two);
            // reading and conversion errors do.
            switch error {
            case is CheckpointConversionError, SafeTensorsError.unreadable, SafeTensorsError.notSafeTensors: throw error
            default: throw Failure("\(oneLine(path)): \(error)")
            }
        }
    }

    /// The context forward passes run in, with these threads.
    func context(kernels: KernelChoices = KernelChoices()) -> EngineContext {
        EngineContext(threads: threads ?? 0, kernels: kernels)
    }
}

/// A kernel path `bench --without` turns off.
enum KernelPath: String, ExpressibleByArgument, CaseIterable {
    case winograd, tapwise
    case ownGEMM = "own-gemm"

    func turnOff(_ kernels: inout KernelChoices) {
        switch self {
        case .winograd: kernels.winograd = false
        case .tapwise: kernels.tapwise = false
        case .ownGEMM: kernels.ownGEMM = false
        }
    }
}

/// Two sizes written "AxB": a picture's HxW, a terminal's COLSxROWS.
struct SizeArgument: ExpressibleByArgument, CustomStringConvertible {
    let first: Int
    let second: Int

    init(_ first: Int, _ second: Int) {
        self.first = first
        self.second = second
    }

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let first = parts[0], let second = parts[1] else { return nil }
        self.init(first, second)
    }

    var description: String { "\(first)x\(second)" }

    func within(_ range: ClosedRange<Int>) -> Bool { range.contains(first) && range.contains(second) }
}

/// `--colors`: a colour mode, or auto (what the terminal says it has).
enum ColorOption: String, ExpressibleByArgument, CaseIterable {
    case auto, truecolor = "24bit", palette256 = "256", ansi16 = "16", ansi8 = "8"

    var mode: ColorMode? { ColorMode(rawValue: rawValue) }
}

/// JSON for people and scripts: sorted keys, slashes as they are, and every control character
/// escaped (JSONSerialization leaves DEL and the C1 controls raw, which a terminal would obey), so
/// it is safe on a terminal as it is and printed with `printJSON`, not the escaping `print`.
func jsonLine(_ object: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    let text = String(decoding: data, as: UTF8.self)
    var out = ""
    for scalar in text.unicodeScalars {
        if (0x7F...0x9F).contains(scalar.value) { out += String(format: "\\u%04x", scalar.value) }
        else { out.unicodeScalars.append(scalar) }
    }
    return out
}

func printJSON(_ object: Any) throws { Swift.print(try jsonLine(object)) }
