import ArgumentParser
import SegEngine
import SegImage
import SegModels

@main
struct Segview: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segview",
        abstract: "Semantic segmentation in the terminal: FCN, DeepLabV3 and friends on the CPU.",
        subcommands: [View.self, Predict.self, Eval.self, Models.self, Bench.self, BenchView.self, Info.self],
        defaultSubcommand: View.self)
}

/// The model a command runs and the output stride to run it at.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model file (.safetensors).")
    var model: String

    @Option(name: .customLong("output-stride"), help: "8, 16 or 32 (default: the stride the model was trained at).")
    var outputStride: Int?

    /// Loads the model and checks that it can run at the requested stride.
    func load() throws -> (network: SegmentationModel, stride: Int) {
        let network = try ModelLoader.load(path: model)
        let stride = outputStride ?? network.metadata.outputStride
        guard network.outputStrides.contains(stride) else {
            throw ValidationError("output stride \(stride) is not available for \(network.metadata.architecture); choose one of \(network.outputStrides)")
        }
        return (network, stride)
    }
}

/// How pictures are read: PNG or JPEG by content, within a pixel budget.
struct ImageOptions: ParsableArguments {
    @Option(name: .customLong("max-pixels"),
            help: "Refuse images with more pixels than this, before decoding them (default: 100000000).")
    var maxPixels = ImageFile.defaultMaxPixels

    func read(_ path: String) throws -> RGBImage {
        do {
            return try ImageFile.read(path, maxPixels: maxPixels)
        } catch let error as ImageError where error.reason.contains("more than the limit") {
            throw ImageError(path: error.path, reason: error.reason + " (raise it with --max-pixels)")
        }
    }
}

/// Options every command that runs a network shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    func apply() {
        if let threads { Parallel.setThreads(threads) } else { Parallel.setThreads(Parallel.threads) }
    }
}
