import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels

/// What a PyTorch checkpoint used as a model cannot say about itself (every command's --model).
struct CheckpointArguments: ParsableArguments {
    @Option(help: ArgumentHelp("For a PyTorch checkpoint: its architecture (default: told from the tensor names).",
                               valueName: CheckpointConverter.architectureNames.joined(separator: "|")))
    var arch: String?

    @Option(help: ArgumentHelp("For a checkpoint: its backbone (default: told from the names where they say).",
                               valueName: CheckpointConverter.backbones.joined(separator: "|")))
    var backbone: String?

    @Option(help: ArgumentHelp("For a checkpoint: class names, a preset or a file with one name per line (default: "
                               + "the preset with the weights' class count).",
                               valueName: (ClassPreset.all.map(\.name) + ["FILE"]).joined(separator: "|")))
    var classes: String?

    @Flag(name: .customLong("at-once"), help: "For an FCN-8s checkpoint: weights trained at once (scaled skip inputs).")
    var atOnce = false

    func validate() throws {
        if let arch, !CheckpointConverter.architectureNames.contains(arch) {
            let names = CheckpointConverter.architectureNames.joined(separator: ", ")
            throw ValidationError("--arch must be one of \(names)")
        }
        if let backbone, !CheckpointConverter.backbones.contains(backbone) {
            throw ValidationError("--backbone must be one of \(CheckpointConverter.backbones.joined(separator: ", "))")
        }
    }

    func options(trainedStride: Int? = nil) -> CheckpointOptions {
        var options = CheckpointOptions()
        options.architecture = arch
        options.backbone = backbone
        options.classes = classes
        options.outputStride = trainedStride
        options.atOnce = atOnce
        return options
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a PyTorch checkpoint (.pth, .pth.tar, .pt) to a segview model file, without Python.",
        discussion: """
            Reads the zip format of torch >= 1.6 and the legacy format before it, inside the wrappers training \
            scripts save (state_dict, model_state_dict, model, net; DataParallel's module. prefix). Nothing in \
            the file is executed: a pickle naming anything but tensors and plain data is refused. The result \
            holds the same tensors (float32) and metadata as tools/export.py writes.
            """)

    @Argument(help: "The checkpoint.")
    var checkpoint: String

    @OptionGroup var arguments: CheckpointArguments

    @Option(name: .customLong("output-stride"),
            help: "The stride the weights were trained at (DeepLabV3+: 16 or 8; default: the reference's).")
    var outputStride: Int?

    @Option(help: "The model file to write (.safetensors).")
    var out: String

    @Flag(help: "Overwrite --out.")
    var force = false

    func validate() throws {
        guard !out.isEmpty else { throw ValidationError("--out must name a file") }
        if let outputStride, ![8, 16, 32].contains(outputStride) {
            throw ValidationError("--output-stride must be 8, 16 or 32")
        }
    }

    func run() throws {
        try Failure.refuseColliding(outputs: [out], options: "--out",
                                    inputs: [(checkpoint, "the checkpoint to convert")])
        try Failure.refuseExisting([out], force: force)
        if !CheckpointConverter.isCheckpoint(checkpoint), (try? SafeTensorsFile(path: checkpoint)) != nil {
            throw Failure("\(checkpoint) is a .safetensors model file already: segview reads it as it is "
                          + "(convert reads PyTorch checkpoints)")
        }
        let converted: (contents: Data, summary: String)
        do {
            converted = try CheckpointConverter.modelFile(checkpoint, arguments.options(trainedStride: outputStride))
        } catch let error as CheckpointConversionError {
            throw Failure(error.description)
        }
        try SafeFile.write(converted.contents, to: out, overwrite: force)
        print("wrote \(oneLine(out)): \(converted.summary)")
    }
}
