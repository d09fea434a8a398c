import ArgumentParser
import Foundation
import SegModels
import SegPipeline

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what a model file describes.")

    @Argument(help: "Model file (.safetensors or a PyTorch checkpoint).")
    var model: String

    @OptionGroup var checkpoint: CheckpointArguments

    @Flag(help: "One JSON object on stdout.")
    var json = false

    func run() throws {
        let network = try ModelLoader.load(path: model, checkpoint: checkpoint.options())
        let meta = network.metadata
        let resize = meta.resizeSize.map { "short side \($0) px" }
            ?? "not recorded (auto assumes \(WorkingScale.defaultResizeSize) px)"
        if json {
            try printJSON([
                "file": model, "architecture": meta.architecture, "backbone": meta.backbone,
                "parameters": network.parameterCount, "output_stride": meta.outputStride,
                "output_strides": network.outputStrides, "input_channels": meta.channelOrder.rawValue,
                "input_range": meta.inputRange.rawValue, "input_mean": meta.mean, "input_std": meta.std,
                "resize_size": meta.resizeSize.map { $0 as Any } ?? NSNull(), "precision": meta.precision.rawValue,
                "class_names": meta.classNames, "class_colors": meta.classColors.map { $0.map(Int.init) },
                "extra": meta.extra,
            ] as [String: Any])
            return
        }
        print("\(model)")
        print("  architecture     \(meta.architecture) (\(meta.backbone))")
        print("  parameters       \(network.parameterCount) (BatchNorm folded, auxiliary heads left out)")
        print("  output stride    trained at \(meta.outputStride); runs at "
              + network.outputStrides.map(String.init).joined(separator: ", "))
        print("  input            \(meta.channelOrder.rawValue) \(meta.inputRange.rawValue), mean \(meta.mean), std \(meta.std)")
        print("  resize size      \(resize)")
        print("  precision        \(meta.precision == .int8 ? "int8 (made by segview quantize)" : "fp32")")
        print("  classes          \(meta.numClasses): \(meta.classNames.joined(separator: ", "))")
        for (key, value) in meta.extra.sorted(by: { $0.key < $1.key }) {
            print("  \(key.padding(toLength: 16, withPad: " ", startingAt: 0)) \(value)")
        }
    }
}
