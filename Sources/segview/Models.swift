import ArgumentParser
import Foundation
import SegModels

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the model files in a folder and what each one is.")

    @Argument(help: ArgumentHelp("A folder of model files (.safetensors, .pth, .pt, .pth.tar), or files "
                                 + "(default: the bundled samples/models)."))
    var paths: [String] = []

    @Flag(help: "One JSON array on stdout, an object per file.")
    var json = false

    @OptionGroup var checkpoint: CheckpointArguments

    func run() throws {
        let files = try ModelCatalog.files(paths.isEmpty ? [try ModelCatalog.bundledDirectory()] : paths)
        var entries: [[String: Any]] = []
        for file in files {
            let name = URL(fileURLWithPath: file).lastPathComponent
            do {
                let model = try ModelLoader.load(path: file, checkpoint: checkpoint.options())
                let meta = model.metadata
                entries.append(["file": file, "architecture": meta.architecture, "backbone": meta.backbone,
                                "classes": meta.numClasses, "parameters": model.parameterCount,
                                "output_stride": meta.outputStride, "output_strides": model.outputStrides,
                                "resize_size": meta.resizeSize.map { $0 as Any } ?? NSNull(),
                                "precision": meta.precision.rawValue])
                guard !json else { continue }
                let strides = model.outputStrides.map(String.init).joined(separator: "/")
                print("\(name): \(meta.architecture) \(meta.backbone), \(meta.numClasses) classes, "
                      + "\(model.parameterCount) parameters, trained at OS \(meta.outputStride), runs at \(strides)"
                      + (meta.precision == .int8 ? ", int8" : ""))
            } catch {
                entries.append(["file": file, "error": "\(error)"])
                if !json { print("\(name): cannot be loaded: \(error)") }
            }
        }
        if json { try printJSON(entries) }
    }
}
