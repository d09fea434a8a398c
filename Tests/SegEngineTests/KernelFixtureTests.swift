import Foundation
import SegEngine
import XCTest

/// Every engine kernel against PyTorch on small cases (tools/make_fixtures.py writes them:
/// inputs, weights and torch.nn.functional's output per case, parameters as JSON metadata).
final class KernelFixtureTests: XCTestCase {
    let context = EngineContext()

    struct Case: Decodable {
        let op: String
        var cin: Int?, cout: Int?, k: Int?, stride: Int?, padding: Int?, dilation: Int?, groups: Int?
        var h: Int?, w: Int?, oh: Int?, ow: Int?
        var ceil: Bool?, mode: String?, align_corners: Bool?, scale: Float?, activation: String?
    }

    func testEveryKernelMatchesPyTorch() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "kernels", withExtension: "safetensors", subdirectory: "Fixtures"))
        let file = try SafeTensorsFile(path: url.path)
        XCTAssertGreaterThan(file.metadata.count, 30, "fixture file lost its cases")
        for (name, json) in file.metadata.sorted(by: { $0.key < $1.key }) {
            let spec = try JSONDecoder().decode(Case.self, from: Data(json.utf8))
            let expected = file.entries["\(name).output"]!
            let output = try run(spec, name: name, file: file)
            let reference = try file.floats("\(name).output", shape: expected.shape)
            XCTAssertEqual(output.count, reference.count, "\(name): output size")
            guard output.count == reference.count else { continue }
            let worst = zip(output, reference).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-5, "\(name): max abs difference \(worst)")
        }
    }

    private func tensor(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
        let shape = file.entries[name]!.shape
        return Tensor(channels: shape[0], height: shape[1], width: shape[2], values: try file.floats(name, shape: shape), in: context)
    }

    private func run(_ spec: Case, name: String, file: SafeTensorsFile) throws -> [Float] {
        let input = try tensor(file, "\(name).input")
        switch spec.op {
        case "conv":
            let k = spec.k!, cin = spec.cin!, cout = spec.cout!, groups = spec.groups!
            let weights = ConvWeights(outChannels: cout, inChannels: cin, kernelH: k, kernelW: k, groups: groups,
                                      weights: try file.floats("\(name).weight", shape: [cout, cin / groups, k, k]),
                                      bias: try file.floats("\(name).bias", shape: [cout]))
            let geometry = ConvGeometry(stride: spec.stride!, padding: spec.padding!, dilation: spec.dilation!)
            return conv2d(input, weights, geometry).toArray()
        case "deconv":
            let k = spec.k!, cin = spec.cin!, cout = spec.cout!
            let weights = TransposedConvWeights(inChannels: cin, outChannels: cout, kernelH: k, kernelW: k,
                                                weights: try file.floats("\(name).weight", shape: [cin, cout, k, k]),
                                                bias: try file.floats("\(name).bias", shape: [cout]))
            return convTranspose2d(input, weights, ConvGeometry(stride: spec.stride!, padding: spec.padding!)).toArray()
        case "maxpool":
            return maxPool2d(input, kernel: spec.k!, stride: spec.stride!, padding: spec.padding!, ceilMode: spec.ceil!).toArray()
        case "avgpool":
            return avgPool2d(input, kernel: spec.k!, stride: spec.stride!, padding: spec.padding!, ceilMode: spec.ceil!).toArray()
        case "adaptive_avgpool":
            return adaptiveAvgPool2d(input, height: spec.oh!, width: spec.ow!).toArray()
        case "resize":
            let mode: ResizeMode = spec.mode == "nearest" ? .nearest : .bilinear(alignCorners: spec.align_corners!)
            return resize(input, height: spec.oh!, width: spec.ow!, mode: mode, scale: spec.scale.map { ($0, $0) }).toArray()
        case "activation":
            return activate(input, Activation(rawValue: spec.activation!)!).toArray()
        case "softmax":
            return softmax(input).toArray()
        case "argmax":
            return argmax(input).map(Float.init)
        default:
            XCTFail("\(name): unknown op \(spec.op)")
            return []
        }
    }
}
