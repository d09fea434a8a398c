import Foundation
import SegEngine
import SegImage
@testable import SegModels
import SegPipeline
import XCTest

/// End-to-end parity with PyTorch: tiny torchvision-layout models (torchvision's own classes, random
/// weights, randomised BatchNorm statistics) and PyTorch's logits, made by tools/make_fixtures.py.
final class ParityTests: XCTestCase {
    let context = EngineContext()

    func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
    }

    func logits(_ modelFile: String, outputStride: Int) throws -> (ours: Tensor, model: SegmentationModel) {
        let model = try ModelLoader.load(path: fixture(modelFile))
        let meta = model.metadata
        let input = Normalization(mean: meta.mean, std: meta.std).tensor(from: try PNG.read(fixture("street_37x53.png")), in: context)
        return (model.predict(input, outputStride: outputStride).scores, model)
    }

    func assertMatchesPyTorch(_ modelFile: String, _ reference: String, outputStride: Int,
                              tolerance: Float = 1e-4, file: StaticString = #filePath, line: UInt = #line) throws {
        let (ours, _) = try logits(modelFile, outputStride: outputStride)
        let (expected, shape) = try NumPyFile.decode(Data(contentsOf: URL(fileURLWithPath: fixture(reference))))
        XCTAssertEqual(ours.shape, shape, file: file, line: line)
        let scale = expected.map(abs).max()!
        let worst = zip(ours.toArray(), expected).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst / scale, tolerance, "\(reference): max |diff| \(worst) of max |logit| \(scale)", file: file, line: line)
        let reference = Tensor(channels: shape[0], height: shape[1], width: shape[2], values: expected, in: context)
        let agreement = zip(argmax(ours), argmax(reference)).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(Double(agreement) / Double(ours.plane), 0.999, "\(reference): argmax agreement", file: file, line: line)
    }

    func testDeepLabV3MatchesTorchvisionAtEveryOutputStride() throws {
        for stride in [8, 16, 32] {
            try assertMatchesPyTorch("tiny_deeplabv3.safetensors", "tiny_deeplabv3_os\(stride).npy", outputStride: stride)
        }
    }

    func testFCNMatchesTorchvisionAtEveryOutputStride() throws {
        for stride in [8, 16, 32] {
            try assertMatchesPyTorch("tiny_fcn.safetensors", "tiny_fcn_os\(stride).npy", outputStride: stride)
        }
    }

    func testFloat16ModelFileMatchesPyTorchOnTheSameRoundedWeights() throws {
        try assertMatchesPyTorch("tiny_deeplabv3_f16.safetensors", "tiny_deeplabv3_f16_os16.npy", outputStride: 16)
    }

    func testSwitchingOutputStrideNeedsNoReloadAndChangesTheResult() throws {
        let (at8, model) = try logits("tiny_deeplabv3.safetensors", outputStride: 8)
        let input = Normalization.imagenet.tensor(from: try PNG.read(fixture("street_37x53.png")), in: context)
        let at16 = model.predict(input, outputStride: 16).scores
        let again8 = model.predict(input, outputStride: 8).scores
        XCTAssertEqual(again8.toArray(), at8.toArray(), "the same stride gives the same scores")
        XCTAssertGreaterThan(zip(at8.toArray(), at16.toArray()).map { abs($0 - $1) }.max()!, 1e-3)
    }

    func testAuxiliaryClassifierIsAcceptedAndIgnored() throws {
        let file = try SafeTensorsFile(path: fixture("tiny_fcn.safetensors"))
        XCTAssertTrue(file.entries.keys.contains { $0.hasPrefix("aux_classifier.") }, "the fixture carries the aux head")
    }

    /// torchvision's `replace_stride_with_dilation`: the first block of a dilated stage keeps the
    /// previous dilation; later blocks use the new one.
    func testResNetDilationScheduleIsTorchvisions() {
        func plan(_ stride: Int) -> [[String]] {
            ResNet.plan(blocks: [3, 4, 6, 3], outputStride: stride, schedule: .torchvision).map { $0.map { "\($0.stride)/\($0.dilation)" } }
        }
        XCTAssertEqual(plan(8)[2], ["1/1"] + Array(repeating: "1/2", count: 5))
        XCTAssertEqual(plan(8)[3], ["1/2", "1/4", "1/4"])
        XCTAssertEqual(plan(16)[2], ["2/1"] + Array(repeating: "1/1", count: 5))
        XCTAssertEqual(plan(16)[3], ["1/1", "1/2", "1/2"])
        XCTAssertEqual(plan(32)[3], ["2/1", "1/1", "1/1"])
        XCTAssertEqual(plan(8)[0], ["1/1", "1/1", "1/1"])
    }

    func testASPPRatesScaleInverselyWithTheOutputStride() throws {
        let model = try XCTUnwrap(try ModelLoader.load(path: fixture("tiny_deeplabv3.safetensors")) as? DeepLabV3)
        XCTAssertEqual(model.aspp.rates(at: 8), [12, 24, 36])
        XCTAssertEqual(model.aspp.rates(at: 16), [6, 12, 18])
        XCTAssertEqual(model.aspp.rates(at: 32), [3, 6, 9])
    }
}
