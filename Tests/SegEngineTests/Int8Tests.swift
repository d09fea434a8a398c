@testable import SegEngine
import XCTest

/// The int8 convolution against a plain reference that does the same integer arithmetic one
/// output at a time, and against float32 within what 8 bits allow.
final class Int8Tests: XCTestCase {
    func values(_ count: Int, _ range: ClosedRange<Float>, _ random: inout SeededGenerator) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &random) }
    }

    /// `conv(x)` as the int8 kernel defines it, one output at a time: bytes of the input and the
    /// weights, an exact integer sum, then scale, shift, residual, activation.
    func reference(_ x: Tensor, _ weights: ConvWeights, _ int8: Int8ConvWeights, _ geometry: ConvGeometry,
                   _ activation: Activation, _ residual: Tensor?) -> [Float] {
        let q = int8.input
        let outH = geometry.outputSize(x.height, kernel: weights.kernelH)
        let outW = geometry.outputSize(x.width, kernel: weights.kernelW)
        let cin = weights.inChannels, k = weights.kernelW
        var out = [Float](repeating: 0, count: weights.outChannels * outH * outW)
        for o in 0..<weights.outChannels {
            let row = weights.matrixRow(o).map { Int(($0 / int8.weightScales[o]).rounded(.toNearestOrEven)) }
            for oy in 0..<outH {
                for ox in 0..<outW {
                    var sum = 0
                    for t in 0..<weights.taps {
                        let iy = oy * geometry.stride - geometry.padding + t / k * geometry.dilation
                        let ix = ox * geometry.stride - geometry.padding + t % k * geometry.dilation
                        guard (0..<x.height).contains(iy) && (0..<x.width).contains(ix) else { continue }
                        for c in 0..<cin {
                            let level = Int((x[c, iy, ix] / q.scale).rounded(.toNearestOrEven)) + q.zeroPoint
                            let byte = min(max(level, 0), 255)
                            sum += row[t * cin + c] * (byte - q.zeroPoint)
                        }
                    }
                    let at = (o * outH + oy) * outW + ox
                    var value = q.scale * int8.weightScales[o] * Float(sum) + weights.bias[o]
                        + (residual?.data[at] ?? 0)
                    activation.apply(&value, count: 1, bias: 0)
                    out[at] = value
                }
            }
        }
        return out
    }

    /// Both kernels where the CPU has VNNI, the portable one elsewhere.
    var kernelChoices: [KernelChoices] {
        var portable = KernelChoices()
        portable.int8VNNI = false
        return Int8Kernels.available ? [KernelChoices(), portable] : [portable]
    }

    func testInt8ConvolutionMatchesThePlainReference() {
        for var kernels in kernelChoices {
            for tapwise in [true, false] {
                kernels.tapwise = tapwise
                checkAgainstTheReference(EngineContext(threads: 2, kernels: kernels, profile: Profile()))
            }
        }
    }

    func checkAgainstTheReference(_ context: EngineContext) {
        var random = SeededGenerator(state: 21)
        let kernelName = (context.kernels.int8VNNI ? "VNNI" : "portable") + (context.kernels.tapwise ? "" : " im2col")
        // (cin, cout, kernel, h, w, stride, padding, dilation, activation, residual, input low):
        // pointwise in place (a map wide enough for tiles, and a small one split by channels), a
        // channel count not a multiple of 4, strides, dilation past the map, a depth over one block
        // (3x3 on 256 channels: 576 quads), inputs below zero (a zero point), unfused activations,
        // tiles wider than one block of the VNNI kernel's columns (3x3 on 16 channels over 64x64);
        // mostly padding, which goes tap by tap: with a zero point, a residual, threads sharing the
        // output channels of one band (41: a last panel of one) or taking bands (40x60), a tap deeper
        // than one block (2056 channels: 514 quads).
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Activation, Bool, Float)] = [
            (16, 24, 1, 20, 30, 1, 0, 1, .relu, true, 0),
            (40, 20, 1, 5, 6, 1, 0, 1, .identity, false, -1),
            (3, 13, 7, 23, 19, 2, 3, 1, .relu, false, -2),
            (12, 9, 3, 17, 21, 1, 4, 4, .relu6, true, 0),
            (256, 16, 3, 9, 11, 1, 1, 1, .sigmoid, false, -0.5),
            (8, 17, 1, 13, 15, 2, 0, 1, .hardswish, true, -1),
            (6, 8, 3, 7, 6, 1, 12, 12, .relu, false, 0),
            (16, 24, 3, 64, 64, 1, 1, 1, .relu, true, -0.25),
            (20, 41, 3, 10, 13, 1, 6, 6, .relu, true, -1),
            (32, 16, 3, 40, 60, 1, 24, 24, .relu6, false, -0.5),
            (2056, 8, 3, 6, 5, 1, 4, 4, .relu, true, -1),
        ]
        for (index, (cin, cout, kernel, h, w, stride, padding, dilation, activation, hasResidual, low))
                in cases.enumerated() {
            let weights = ConvWeights(outChannels: cout, inChannels: cin, kernelH: kernel, kernelW: kernel,
                                      weights: values(cout * cin * kernel * kernel, -0.5...0.5, &random),
                                      bias: values(cout, -1...1, &random))
            let x = Tensor(channels: cin, height: h, width: w, values: values(cin * h * w, low...2, &random),
                           in: context)
            let geometry = ConvGeometry(stride: stride, padding: padding, dilation: dilation)
            let outH = geometry.outputSize(h, kernel: kernel), outW = geometry.outputSize(w, kernel: kernel)
            let residual = hasResidual
                ? Tensor(channels: cout, height: outH, width: outW, values: values(cout * outH * outW, -1...1, &random),
                         in: context) : nil
            let int8 = Int8ConvWeights(weights, weightScales: Int8ConvWeights.weightScales(of: weights),
                                       input: ActivationQuantization(minimum: low, maximum: 2))
            let got = conv2d(x, int8, geometry, activation: activation, adding: residual).toArray()
            let expected = reference(x, weights, int8, geometry, activation, residual)
            XCTAssertEqual(got.count, expected.count, "case \(index), \(kernelName)")
            let error = zip(got, expected).map { abs($0 - $1) / max(1, abs($1)) }.max()!
            XCTAssertLessThan(error, 1e-4, "\(kernelName) case \(index): \(cin)->\(cout) k\(kernel) s\(stride) "
                              + "p\(padding) d\(dilation)")
        }
        XCTAssertNotNil(context.profile?.entries["conv 1x1 int8"], "the int8 path ran")
        XCTAssertEqual(context.profile?.entries["conv 3x3 int8 tapwise"]?.calls, context.kernels.tapwise ? 5 : nil,
                       "\(kernelName): the layers that are mostly padding went tap by tap")
    }

    /// The two kernels round the same sums the same way: value for value, where both can run.
    func testTheKernelsGiveTheSameFloats() throws {
        try XCTSkipUnless(Int8Kernels.available, "this CPU has no AVX-512 VNNI: only the portable kernel runs here")
        var random = SeededGenerator(state: 5)
        // Unfolded over two depth blocks (3x3 on 300 channels), tap by tap (dilation 12: mostly
        // padding), and tap by tap with each tap two depth blocks deep (2056 channels).
        let cases: [(cin: Int, h: Int, w: Int, geometry: ConvGeometry, path: String)] = [
            (300, 30, 41, .same(kernel: 3), "conv 3x3 int8"),
            (300, 30, 41, .same(kernel: 3, dilation: 12), "conv 3x3 int8 tapwise"),
            (2056, 6, 5, .same(kernel: 3, dilation: 4), "conv 3x3 int8 tapwise"),
        ]
        for (cin, h, w, geometry, path) in cases {
            let cout = 20
            let weights = ConvWeights(outChannels: cout, inChannels: cin, kernelH: 3, kernelW: 3,
                                      weights: values(cout * cin * 9, -0.5...0.5, &random),
                                      bias: values(cout, -1...1, &random))
            let int8 = Int8ConvWeights(weights, weightScales: Int8ConvWeights.weightScales(of: weights),
                                       input: ActivationQuantization(minimum: -1, maximum: 2))
            let x = values(cin * h * w, -1...2, &random)
            let outputs = kernelChoices.map { kernels in
                let context = EngineContext(threads: 2, kernels: kernels, profile: Profile())
                let output = conv2d(Tensor(channels: cin, height: h, width: w, values: x, in: context), int8,
                                    geometry, activation: .relu).toArray()
                XCTAssertNotNil(context.profile?.entries[path], "\(cin) channels, dilation \(geometry.dilation)")
                return output
            }
            XCTAssertEqual(outputs[0], outputs[1], "\(cin) channels, dilation \(geometry.dilation)")
        }
    }

    func testANaNInTheInputMakesTheOutputNaN() {
        var random = SeededGenerator(state: 9)
        let context = EngineContext(threads: 2, profile: Profile())
        let weights = ConvWeights(outChannels: 8, inChannels: 4, kernelH: 1, kernelW: 1,
                                  weights: values(32, -0.5...0.5, &random), bias: values(8, -1...1, &random))
        let int8 = Int8ConvWeights(weights, weightScales: Int8ConvWeights.weightScales(of: weights),
                                   input: ActivationQuantization(minimum: -1, maximum: 1))
        var x = values(4 * 5 * 5, -1...1, &random)
        XCTAssertTrue(conv2d(Tensor(channels: 4, height: 5, width: 5, values: x, in: context), int8).isFinite)
        x[7] = .nan
        XCTAssertFalse(conv2d(Tensor(channels: 4, height: 5, width: 5, values: x, in: context), int8).isFinite,
                       "a byte has no NaN: the layer says so")
        // Tap by tap (mostly padding), with a residual added after the products.
        let dilated = ConvWeights(outChannels: 8, inChannels: 4, kernelH: 3, kernelW: 3,
                                  weights: values(288, -0.5...0.5, &random), bias: values(8, -1...1, &random))
        let dilated8 = Int8ConvWeights(dilated, weightScales: Int8ConvWeights.weightScales(of: dilated),
                                       input: ActivationQuantization(minimum: -1, maximum: 1))
        let residual = Tensor(channels: 8, height: 5, width: 5, values: values(200, -1...1, &random), in: context)
        XCTAssertFalse(conv2d(Tensor(channels: 4, height: 5, width: 5, values: x, in: context), dilated8,
                              .same(kernel: 3, dilation: 4), activation: .relu, adding: residual).isFinite)
        XCTAssertNotNil(context.profile?.entries["conv 3x3 int8 tapwise"], "the tap-by-tap path ran")
    }

    func testInt8ConvolutionIsCloseToFloat32() {
        var random = SeededGenerator(state: 7)
        let context = EngineContext(threads: 2)
        let weights = ConvWeights(outChannels: 32, inChannels: 64, kernelH: 3, kernelW: 3,
                                  weights: values(32 * 64 * 9, -0.1...0.1, &random), bias: values(32, -1...1, &random))
        let x = Tensor(channels: 64, height: 24, width: 24, values: values(64 * 24 * 24, 0...4, &random), in: context)
        let geometry = ConvGeometry.same(kernel: 3)
        let exact = conv2d(x, weights, geometry).toArray()
        let int8 = Int8ConvWeights(weights, weightScales: Int8ConvWeights.weightScales(of: weights),
                                   input: ActivationQuantization(minimum: 0, maximum: 4))
        let approximate = conv2d(x, int8, geometry).toArray()
        let spread = (exact.map { $0 * $0 }.reduce(0, +) / Float(exact.count)).squareRoot()
        let squares = zip(exact, approximate).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
        let error = (squares / Float(exact.count)).squareRoot()
        XCTAssertLessThan(error / spread, 0.01, "8-bit inputs and weights keep the output within 1 % (RMS)")
        XCTAssertGreaterThan(error, 0, "the int8 path ran, not the float one")
    }

    func testActivationQuantizationKeepsZeroExact() {
        let afterReLU = ActivationQuantization(minimum: 0, maximum: 5.1)
        XCTAssertEqual(afterReLU.zeroPoint, 0)
        XCTAssertEqual(afterReLU.scale, 0.02, accuracy: 1e-7)
        let signed = ActivationQuantization(minimum: -1, maximum: 3)
        XCTAssertEqual(signed.zeroPoint, 64)
        XCTAssertEqual(signed.roundTrip(0), 0)
        XCTAssertEqual(signed.roundTrip(10), 191 * signed.scale, "clamped at the top: 255 - 64 steps")
        XCTAssertEqual(ActivationQuantization(minimum: 1, maximum: 2).zeroPoint, 0, "the range is widened to hold 0")
    }
}
