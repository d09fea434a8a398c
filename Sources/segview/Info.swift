import ArgumentParser
import SegModels

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what a model file describes.")

    @Argument(help: "Model file (.safetensors).")
    var model: String

    func run() throws {
        let network = try ModelLoader.load(path: model)
        let meta = network.metadata
        print("\(model)")
        print("  architecture     \(meta.architecture) (\(meta.backbone))")
        print("  parameters       \(network.parameterCount) (BatchNorm folded, auxiliary heads left out)")
        print("  output stride    trained at \(meta.outputStride); runs at \(network.outputStrides.map(String.init).joined(separator: ", "))")
        print("  input            \(meta.channelOrder.rawValue) \(meta.inputRange.rawValue), mean \(meta.mean), std \(meta.std)")
        print("  classes          \(meta.numClasses): \(meta.classNames.joined(separator: ", "))")
        for (key, value) in meta.extra.sorted(by: { $0.key < $1.key }) { print("  \(key.padding(toLength: 16, withPad: " ", startingAt: 0)) \(value)") }
    }
}
