import Foundation
import SegEngine
@testable import SegModels
import XCTest

/// `ModelQuantizer` on every architecture: the file it writes loads in int8 with the same layers
/// and results as the quantizer's model, and in float32 as the original.
final class QuantizationTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    let files = ["tiny_deeplabv3", "tiny_fcn", "arch/deeplabv3plus_mobilenetv2", "arch/deeplabv3plus_resnet",
                 "arch/deeplabv3plus_xception", "arch/dfn", "arch/fcn8s", "arch/refinenet"]

    /// A seeded picture-like input: smooth gradients and a little noise.
    func input(_ context: EngineContext, seed: Int) -> Tensor {
        let (h, w) = (37, 45)
        let values = (0..<3 * h * w).map { i -> Float in
            let c = i / (h * w), y = i / w % h, x = i % w
            let noise = Float((i * 7919 + seed) % 13) / 26
            return sin(Float(x * (c + 1) + seed) / 7) + cos(Float(y + 3 * seed) / 5) + noise
        }
        return Tensor(channels: 3, height: h, width: w, values: values, in: context)
    }

    func testQuantizedFilesLoadInInt8AndInFloat32() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-int8-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for name in files {
            let path = fixtures.appendingPathComponent("\(name).safetensors").path
            let quantizer = try ModelQuantizer(SafeTensorsFile(path: path))
            let stride = quantizer.model.metadata.outputStride
            let ranges = Calibration(.ranges)
            for seed in 0..<2 {
                _ = quantizer.model.predict(input(EngineContext(calibration: ranges), seed: seed), outputStride: stride)
            }
            let quantized = quantizer.quantize(from: ranges)
            XCTAssertEqual(quantized, quantizer.candidates, "\(name): every dense convolution ran")
            let errors = Calibration(.errors)
            _ = quantizer.model.predict(input(EngineContext(calibration: errors), seed: 2), outputStride: stride)
            let reports = quantizer.keepFloat32(where: errors, maximumError: 0.05)
            XCTAssertEqual(reports.count, quantizer.candidates)
            XCTAssertTrue(reports.allSatisfy { $0.error != nil }, "\(name): every int8 layer was compared")
            let int8Layers = reports.filter(\.int8).count
            XCTAssertGreaterThan(int8Layers, quantizer.candidates / 2, "\(name): most layers stay int8 at 5 %")

            let written = scratch.appendingPathComponent("int8.safetensors")
            try quantizer.encoded(calibrationNote: "test").write(to: written)
            let file = try SafeTensorsFile(path: written.path)
            XCTAssertEqual(file.metadata["precision"], "int8")
            XCTAssertEqual(file.entries.keys.filter { $0.hasSuffix(".int8_input") }.count, int8Layers, name)

            let context = EngineContext()
            let x = input(context, seed: 3)
            let expected = quantizer.model.predict(x, outputStride: stride).scores.toArray()
            let (loaded, reader) = try ModelLoader.build(file)
            XCTAssertEqual(reader.layers.filter { $0.int8 != nil }.count, int8Layers, "\(name): int8 by default")
            XCTAssertEqual(loaded.predict(x, outputStride: stride).scores.toArray(), expected, name)

            let original = try ModelLoader.load(path: path).predict(x, outputStride: stride).scores.toArray()
            let asFloat32 = try ModelLoader.load(file, precision: .fp32).predict(x, outputStride: stride).scores
            XCTAssertEqual(asFloat32.toArray(), original, "\(name): --precision fp32 is the original model")
            XCTAssertNotEqual(expected, original, "\(name): int8 changes the scores a little")
        }
    }

    func testBadInt8ScalesAreRefusedByName() throws {
        let path = fixtures.appendingPathComponent("tiny_deeplabv3.safetensors").path
        let quantizer = try ModelQuantizer(SafeTensorsFile(path: path))
        let ranges = Calibration(.ranges)
        _ = quantizer.model.predict(input(EngineContext(calibration: ranges), seed: 0), outputStride: 8)
        quantizer.quantize(from: ranges)
        var builder = try SafeTensorsBuilder(copying: SafeTensorsFile(
            contents: quantizer.encoded(calibrationNote: "test"), path: "int8.safetensors"))
        let index = try XCTUnwrap(builder.items.firstIndex { $0.name.hasSuffix(".int8_weight_scale") })
        let (broken, item) = builder.items.remove(at: index)
        builder.add(broken, shape: item.shape, floats: [-1] + Array(repeating: 1, count: item.shape[0] - 1))
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-int8-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try builder.write(to: scratch)
        XCTAssertThrowsError(try ModelLoader.load(path: scratch.path)) { error in
            XCTAssertTrue("\(error)".contains(broken), "\(error)")
        }
        XCTAssertNoThrow(try ModelLoader.load(path: scratch.path, precision: .fp32), "float32 never reads the scales")
        // A hostile input quantization: each is refused, naming the tensor, instead of running garbage.
        let inputIndex = try XCTUnwrap(builder.items.firstIndex { $0.name.hasSuffix(".int8_input") })
        let inputName = builder.items[inputIndex].name
        for (values, shape) in [([0, 0], [2]), ([Float.infinity, 0], [2]), ([1e-39, 0], [2]), ([0.1, 256], [2]),
                                ([0.1, 1.5], [2]), ([0.1, 0, 0], [3])] as [([Float], [Int])] {
            var hostile = builder
            hostile.items.removeAll { $0.name == broken || $0.name == inputName }
            hostile.add(inputName, shape: shape, floats: values)
            hostile.add(broken, shape: item.shape, floats: Array(repeating: 0.01, count: item.shape[0]))
            try hostile.write(to: scratch)
            XCTAssertThrowsError(try ModelLoader.load(path: scratch.path), "\(values)") { error in
                XCTAssertTrue("\(error)".contains(inputName), "\(values): \(error)")
            }
        }
        XCTAssertThrowsError(try ModelLoader.load(path: path, precision: .int8)) { error in
            XCTAssertTrue("\(error)".contains("segview quantize"), "\(error)")
        }
        var claiming = try SafeTensorsBuilder(copying: SafeTensorsFile(path: path))
        claiming.metadata["precision"] = "int8"
        try claiming.write(to: scratch)
        XCTAssertThrowsError(try ModelLoader.load(path: scratch.path), "int8 in name only") { error in
            XCTAssertTrue("\(error)".contains("no convolution has int8 scales"), "\(error)")
        }
    }
}
