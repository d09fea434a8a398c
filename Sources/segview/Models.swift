import ArgumentParser
import Foundation
import SegModels

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the model files in a folder and what each one is.")

    @Argument(help: "A folder of .safetensors files, or files (default: the bundled samples/models).")
    var paths: [String] = []

    func run() throws {
        let files = try ModelCatalog.files(paths.isEmpty ? [ModelCatalog.bundledDirectory] : paths)
        for file in files {
            let name = URL(fileURLWithPath: file).lastPathComponent
            do {
                let model = try ModelLoader.load(path: file)
                let meta = model.metadata
                let strides = model.outputStrides.map(String.init).joined(separator: "/")
                print("\(name): \(meta.architecture) \(meta.backbone), \(meta.numClasses) classes, "
                      + "\(model.parameterCount) parameters, trained at OS \(meta.outputStride), runs at \(strides)")
            } catch {
                print("\(name): cannot be loaded: \(error)")
            }
        }
    }
}
