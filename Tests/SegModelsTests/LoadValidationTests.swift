import Foundation
import SegEngine
@testable import SegModels
import XCTest

/// A model that loads can run: with any one module's tensors deleted, every architecture either
/// refuses the file at load, naming what is missing, or predicts at every output stride it offers.
/// (Without its downsample, a ResNet block used to load and then trap in the forward pass.)
final class LoadValidationTests: XCTestCase {
    let context = EngineContext()

    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func testDeletingAnyModuleRefusesAtLoadOrStillPredicts() throws {
        let files = ["tiny_deeplabv3", "tiny_fcn", "arch/deeplabv3plus_mobilenetv2", "arch/deeplabv3plus_resnet",
                     "arch/deeplabv3plus_xception", "arch/dfn", "arch/fcn8s", "arch/refinenet"]
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-modules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let input = Tensor(channels: 3, height: 19, width: 23, repeating: 0.5, in: context)
        for name in files {
            let original = try SafeTensorsBuilder(copying: SafeTensorsFile(path: fixtures.appendingPathComponent(
                "\(name).safetensors").path))
            let modules = Set(original.items.map { ($0.name as NSString).deletingPathExtension }).sorted()
            var refused = 0
            for module in modules {
                var builder = original
                builder.items.removeAll { $0.name.hasPrefix(module + ".") }
                let path = scratch.appendingPathComponent("without.safetensors")
                try builder.write(to: path)
                do {
                    let model = try ModelLoader.load(path: path.path)
                    for stride in model.outputStrides {
                        let scores = model.predict(input, outputStride: stride).scores
                        XCTAssertEqual([scores.height, scores.width], [19, 23], "\(name) without \(module)")
                    }
                } catch {
                    refused += 1
                    XCTAssertTrue("\(error)".contains("'"), "\(name) without \(module): \(error) names nothing")
                }
            }
            XCTAssertGreaterThan(refused, modules.count / 2, "\(name): most modules are required")
        }
    }
}
