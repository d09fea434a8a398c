import SegEngine
import XCTest

/// Small cases whose results can be checked by hand.
final class KernelTests: XCTestCase {
    let context = EngineContext()

    /// 1..n in CHW order.
    func ramp(_ c: Int, _ h: Int, _ w: Int) -> Tensor {
        Tensor(channels: c, height: h, width: w, values: (0..<c * h * w).map { Float($0 + 1) }, in: context)
    }

    func testBoxFilterSumsNeighbourhoodsWithZeroPadding() {
        // 3x3 ones over [[1,2,3],[4,5,6],[7,8,9]] with padding 1: the centre sees everything (45),
        // the top-left corner sees 1+2+4+5 = 12.
        let weights = ConvWeights(outChannels: 1, inChannels: 1, kernelH: 3, kernelW: 3, weights: Array(repeating: 1, count: 9))
        let out = conv2d(ramp(1, 3, 3), weights, .same(kernel: 3))
        XCTAssertEqual(out.toArray(), [12, 21, 16, 27, 45, 33, 24, 39, 28])
    }

    func testFoldedBatchNormIsAnAffineMapOfTheOutput() {
        // y = scale * (w*x + b) + shift per output channel.
        let weights = ConvWeights(outChannels: 2, inChannels: 1, kernelH: 1, kernelW: 1, weights: [2, -1], bias: [1, 0],
                                  scale: [0.5, 3], shift: [10, -2])
        let out = conv2d(Tensor(channels: 1, height: 1, width: 2, values: [1, 4], in: context), weights)
        // Channel 0: 0.5 * (2x + 1) + 10 at x = 1, 4; channel 1: 3 * (-x) - 2.
        let expected: [Float] = [11.5, 14.5, -5, -14]
        XCTAssertEqual(out.toArray(), expected)
    }

    func testDilationReachesFartherAndStrideSkips() {
        // Tap offsets -2, 0, +2 (dilation 2, padding 2) with weights [1, 0, 1] on the row 1..7,
        // stride 2: outputs at 0, 2, 4, 6 are x[-2]+x[2], x[0]+x[4], x[2]+x[6], x[4]+x[8].
        let weights = ConvWeights(outChannels: 1, inChannels: 1, kernelH: 1, kernelW: 3, weights: [1, 0, 1])
        let out = conv2d(ramp(1, 1, 7), weights, ConvGeometry(stride: 2, padding: 2, dilation: 2))
        XCTAssertEqual(out.height, 3, "padding applies to both axes: (1 + 4 - 1) / 2 + 1 rows")
        XCTAssertEqual(Array(out.toArray()[4..<8]), [3, 1 + 5, 3 + 7, 5])
    }

    func testTransposedConvSpreadsEachInputOverAKernel() {
        // Stride 2, kernel 2 of ones: each input value becomes a 2x2 block.
        let weights = TransposedConvWeights(inChannels: 1, outChannels: 1, kernelH: 2, kernelW: 2, weights: [1, 1, 1, 1])
        let out = convTranspose2d(Tensor(channels: 1, height: 1, width: 2, values: [3, 5], in: context), weights, ConvGeometry(stride: 2))
        XCTAssertEqual(out.shape, [1, 2, 4])
        XCTAssertEqual(out.toArray(), [3, 3, 5, 5, 3, 3, 5, 5])
    }

    func testCeilModePoolingSizesFollowCaffe() {
        // FCN's 2x2/2 pools on a 500 input: 250, then 125, 63, 32, 16 (ceil), where floor gives 15 at the end.
        var size = 500
        var sizes: [Int] = []
        for _ in 0..<5 {
            size = pooledSize(size, kernel: 2, stride: 2, padding: 0, ceilMode: true)
            sizes.append(size)
        }
        XCTAssertEqual(sizes, [250, 125, 63, 32, 16])
        XCTAssertEqual(pooledSize(63, kernel: 2, stride: 2, padding: 0, ceilMode: false), 31)
        // A ceil-mode window may not start in the right padding: 3/2 p1 on 6 gives 4 windows, not 5... as PyTorch.
        XCTAssertEqual(pooledSize(6, kernel: 3, stride: 2, padding: 1, ceilMode: true), 4)
    }

    func testMaxPoolIgnoresPadding() {
        // All values negative: zero padding would win, -inf padding does not.
        let x = Tensor(channels: 1, height: 2, width: 2, values: [-4, -3, -2, -1], in: context)
        XCTAssertEqual(maxPool2d(x, kernel: 3, stride: 1, padding: 1).toArray(), [-1, -1, -1, -1])
    }

    func testAlignCornersMapsEndsOntoEnds() {
        let row = Tensor(channels: 1, height: 1, width: 3, values: [0, 1, 2], in: context)
        XCTAssertEqual(resize(row, height: 1, width: 5, mode: .bilinear(alignCorners: true)).toArray(), [0, 0.5, 1, 1.5, 2])
        // Half-pixel centres: output 0 maps to source -0.25 (clamped to 0), output 1 to 0.25, ...
        XCTAssertEqual(resize(row, height: 1, width: 6, mode: .bilinear(alignCorners: false)).toArray(),
                       [0, 0.25, 0.75, 1.25, 1.75, 2])
        XCTAssertEqual(resize(row, height: 1, width: 6, mode: .nearest).toArray(), [0, 0, 1, 1, 2, 2])
    }

    func testSoftmaxAndArgmaxWorkOverChannels() {
        // Two pixels, three classes: pixel 0 has equal scores, pixel 1 prefers class 2.
        let scores = Tensor(channels: 3, height: 1, width: 2, values: [1, 0, 1, 0, 1, 5], in: context)
        let probabilities = softmax(scores).toArray()
        XCTAssertEqual(probabilities[0], 1.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(probabilities[2], 1.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(probabilities[5], exp(5) / (1 + 1 + exp(5)), accuracy: 1e-6)
        XCTAssertEqual(argmax(scores), [0, 2], "a tie goes to the first class")
    }

    /// The streamed argmax of resized scores against resizing the tensor and taking its argmax, on
    /// seeded random scores, up and down, with odd ratios (the path masks of large photos take).
    func testArgmaxResizedEqualsArgmaxOfResize() {
        var seed: UInt64 = 0x5e9_1e55
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(seed >> 40) / Float(1 << 24) * 4 - 2
        }
        for (channels, source, target) in [(5, (7, 9), (61, 83)), (3, (20, 30), (7, 11)), (11, (9, 12), (9, 12))] {
            let scores = Tensor(channels: channels, height: source.0, width: source.1,
                                values: (0..<channels * source.0 * source.1).map { _ in next() }, in: context)
            let expected = argmax(resize(scores, height: target.0, width: target.1, mode: .bilinear(alignCorners: false)))
            XCTAssertEqual(argmaxResized(scores, height: target.0, width: target.1), expected, "\(source) -> \(target)")
        }
    }

    func testConcatAddMultiplyAndBroadcast() {
        let a = Tensor(channels: 1, height: 1, width: 2, values: [1, 2], in: context)
        let b = Tensor(channels: 2, height: 1, width: 2, values: [3, 4, 5, 6], in: context)
        XCTAssertEqual(concat([a, b]).toArray(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(add(b, b, activation: .relu).toArray(), [6, 8, 10, 12])
        XCTAssertEqual(multiply(b, Tensor(channels: 2, height: 1, width: 1, values: [2, -1], in: context)).toArray(), [6, 8, -5, -6])
        XCTAssertEqual(broadcast(Tensor(channels: 2, height: 1, width: 1, values: [7, 9], in: context), height: 1, width: 2).toArray(),
                       [7, 7, 9, 9])
    }

    func testActivations() {
        let x = Tensor(channels: 1, height: 1, width: 4, values: [-4, -1, 2, 8], in: context)
        XCTAssertEqual(activate(x, .relu).toArray(), [0, 0, 2, 8])
        XCTAssertEqual(activate(x, .relu6).toArray(), [0, 0, 2, 6])
        XCTAssertEqual(activate(x, .hardswish).toArray(), [0, -1.0 / 3, 2 * 5.0 / 6, 8])
        XCTAssertEqual(activate(x, .sigmoid).toArray()[2], 1 / (1 + exp(-2)), accuracy: 1e-7)
    }

    /// A pass takes its buffers and tallies its work in its input's context and nowhere else, so two
    /// passes in two contexts can run at once.
    func testAPassUsesOnlyItsInputsContext() {
        let (first, second) = (EngineContext(threads: 1), EngineContext(threads: 1))
        let weights = ConvWeights(outChannels: 4, inChannels: 2, kernelH: 3, kernelW: 3,
                                  weights: (0..<72).map { Float($0 % 7) - 3 })
        let input = ramp(2, 6, 5).copy(to: first)
        first.pool.resetPeak()
        let output = activate(conv2d(input, weights, .same(kernel: 3)), .relu)
        XCTAssertTrue(output.context === first, "the output lives where the input does")
        XCTAssertEqual(first.counters.flop, 2 * 4 * 2 * 9 * 30)
        XCTAssertEqual(first.pool.peakTensorBytes, (2 + 4 + 4) * 30 * 4, "input, convolution and activation")
        XCTAssertEqual(second.counters.flop, 0)
        XCTAssertEqual(second.pool.peakBytes, 0)
        XCTAssertEqual(second.pool.liveBytes, 0)
    }

    func testThreadCountDoesNotChangeResults() {
        let x = ramp(4, 9, 13)
        let weights = ConvWeights(outChannels: 6, inChannels: 4, kernelH: 3, kernelW: 3,
                                  weights: (0..<216).map { Float(($0 * 37) % 11) - 5 })
        let one = conv2d(x.copy(to: EngineContext(threads: 1)), weights, .same(kernel: 3, dilation: 2)).toArray()
        let two = conv2d(x.copy(to: EngineContext(threads: 2)), weights, .same(kernel: 3, dilation: 2)).toArray()
        XCTAssertEqual(two, one)
    }
}
