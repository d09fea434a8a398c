import Foundation
import SegEngine
import SegImage
@testable import SegModels
import SegPipeline
import XCTest

/// Every architecture of tools/reference against PyTorch: narrow models with random weights and
/// randomised BatchNorm statistics, PyTorch's logits (and DFN's border map) on an odd-sized picture
/// at every output stride the model supports; made by tools/make_architecture_fixtures.py.
final class ArchitectureParityTests: XCTestCase {
    let context = EngineContext()

    func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/arch")!.path
    }

    func run(_ name: String, outputStride: Int) throws -> (Prediction, SegmentationModel) {
        let model = try ModelLoader.load(path: fixture(name + ".safetensors"))
        let input = Normalization(model.metadata).tensor(from: try PNG.read(fixture("street_51x67.png")), in: context)
        return (model.predict(input, outputStride: outputStride), model)
    }

    func assertClose(_ ours: Tensor, _ referenceFile: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (expected, shape) = try NumPyFile.decode(Data(contentsOf: URL(fileURLWithPath: fixture(referenceFile))))
        XCTAssertEqual(ours.shape, shape, referenceFile, file: file, line: line)
        guard ours.shape == shape else { return }
        let scale = expected.map(abs).max()!
        let worst = zip(ours.toArray(), expected).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst / scale, 1e-4, "\(referenceFile): max |diff| \(worst) of max \(scale)", file: file, line: line)
        if shape[0] > 1 {
            let reference = Tensor(channels: shape[0], height: shape[1], width: shape[2], values: expected, in: context)
            let agreement = zip(argmax(ours), argmax(reference)).filter { $0 == $1 }.count
            XCTAssertGreaterThanOrEqual(Double(agreement) / Double(ours.plane), 0.999, "\(referenceFile): argmax agreement",
                                        file: file, line: line)
        }
    }

    /// A model's parameter count is the weights and biases of the layers it loaded, which the file's
    /// shapes give independently: every convolution or linear weight and one bias (or folded
    /// BatchNorm shift) per output, leaving out what the architectures do not load (FCN's fixed
    /// upsampling kernels; DFN's unused border_aft_rrbs.0 and its heads for deep supervision).
    func testParameterCountsAreTheWeightsOfTheLoadedLayers() throws {
        for name in ["deeplabv3plus_mobilenetv2", "deeplabv3plus_resnet", "deeplabv3plus_xception", "dfn", "fcn32s",
                     "fcn8s", "refinenet"] {
            let path = fixture(name + ".safetensors")
            let file = try SafeTensorsFile(path: path)
            let expected = file.entries.filter { name, entry in
                name.hasSuffix(".weight") && entry.shape.count >= 2 && !name.hasPrefix("upscore")
                    && !["border_aft_rrbs.0.", "smooth_heads.0", "smooth_heads.1", "smooth_heads.2", "border_heads.0",
                         "border_heads.1", "border_heads.2"].contains { name.hasPrefix($0) }
            }.reduce(0) { $0 + $1.value.shape.reduce(1, *) + $1.value.shape[0] }
            XCTAssertEqual(try ModelLoader.load(path: path).parameterCount, expected, name)
        }
    }

    func assertParity(_ name: String, strides: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        for stride in strides {
            let (prediction, model) = try run(name, outputStride: stride)
            XCTAssertEqual(model.outputStrides, strides, "\(name) offers exactly the strides it was checked at", file: file, line: line)
            try assertClose(prediction.scores, "\(name)_os\(stride).npy", file: file, line: line)
        }
    }

    func testFCN8sRunsAsFCN8s16sAnd32sLikeTheCaffePort() throws {
        try assertParity("fcn8s", strides: [8, 16, 32])
        let model = try ModelLoader.load(path: fixture("fcn8s.safetensors"))
        XCTAssertEqual([8, 16, 32].map { model.name(outputStride: $0) }, ["fcn8s", "fcn16s", "fcn32s"])
    }

    func testFCN8sAtOnceScalesItsSkips() throws {
        try assertParity("fcn8s_atonce", strides: [8, 16, 32])
    }

    func testFCN32sFileOffersOnlyStride32() throws {
        try assertParity("fcn32s", strides: [32])
    }

    func testDeepLabV3PlusResNetWithMultiGrid() throws {
        try assertParity("deeplabv3plus_resnet", strides: [8, 16, 32])
    }

    func testDeepLabV3PlusAlignedXception() throws {
        try assertParity("deeplabv3plus_xception", strides: [8, 16])
    }

    func testDeepLabV3PlusMobileNetV2() throws {
        try assertParity("deeplabv3plus_mobilenetv2", strides: [8, 16, 32])
    }

    func testRefineNet() throws {
        try assertParity("refinenet", strides: [8, 16, 32])
    }

    func testDFNScoresAndBorderMap() throws {
        try assertParity("dfn", strides: [8, 16, 32])
        for stride in [8, 16, 32] {
            let (prediction, _) = try run("dfn", outputStride: stride)
            let border = try XCTUnwrap(prediction.border, "DFN returns its border map")
            try assertClose(border, "dfn_border_os\(stride).npy")
        }
    }

    func testOnlyDFNReturnsABorderMap() throws {
        for name in ["fcn8s", "deeplabv3plus_mobilenetv2", "refinenet"] {
            XCTAssertNil(try run(name, outputStride: 32).0.border, name)
        }
    }

    func testSwitchingOutputStrideOnOneLoadedModelChangesTheResult() throws {
        for name in ["deeplabv3plus_resnet", "refinenet", "dfn"] {
            let model = try ModelLoader.load(path: fixture(name + ".safetensors"))
            let input = Normalization(model.metadata).tensor(from: try PNG.read(fixture("street_51x67.png")), in: context)
            let at8 = model.predict(input, outputStride: 8).scores.toArray()
            let at32 = model.predict(input, outputStride: 32).scores.toArray()
            XCTAssertEqual(model.predict(input, outputStride: 8).scores.toArray(), at8, "\(name): deterministic")
            XCTAssertGreaterThan(zip(at8, at32).map { abs($0 - $1) }.max()!, 1e-3, name)
        }
    }

    /// jfzhang95's ResNet: every block of a dilated stage uses its dilation; layer4 multi-grid (1, 2, 4).
    func testMultiGridScheduleIsJfzhang95s() {
        func plan(_ stride: Int) -> [[String]] {
            ResNet.plan(blocks: [3, 4, 23, 3], outputStride: stride, schedule: .multiGrid).map { $0.map { "\($0.stride)/\($0.dilation)" } }
        }
        XCTAssertEqual(plan(16)[3], ["1/2", "1/4", "1/8"])
        XCTAssertEqual(plan(16)[2], ["2/1"] + Array(repeating: "1/1", count: 22))
        XCTAssertEqual(plan(8)[2], ["1/2"] + Array(repeating: "1/2", count: 22))
        XCTAssertEqual(plan(8)[3], ["1/4", "1/8", "1/16"])
    }
}
