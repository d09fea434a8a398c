import SegEngine

/// MobileNetV2 as jfzhang95/pytorch-deeplab-xception builds it for DeepLabV3+ (`features.i.conv.k`).
///
/// Kept quirk that changes the numbers at the borders: each inverted residual zero-pads its input by
/// the dilation *before* the 1x1 expansion, and its depthwise conv has no padding, so the expanded
/// border is ReLU6(BN(0)) rather than 0. Channel widths are read from the file (any width multiplier);
/// strides and dilations follow the reference's rule for the chosen output stride.
final class MobileNetV2: EncoderBackbone {
    let outputStrides = [8, 16, 32]
    /// (blocks, stride) of the seven bottleneck groups after the stem; whether a block expands and by
    /// how much is read from the file.
    static let groups = [(1, 1), (2, 2), (3, 2), (4, 2), (3, 1), (3, 2), (1, 1)]

    struct InvertedResidual {
        let expand: ConvLayer?
        let depthwise, project: ConvLayer

        init(_ w: WeightReader, _ prefix: String) throws {
            let expands = w.contains(prefix + ".conv.6.weight")
            let (dw, pw) = expands ? (3, 6) : (0, 3)
            let hidden = try w.outChannels("\(prefix).conv.\(dw)")
            let projectShape = try w.shape("\(prefix).conv.\(pw).weight")
            expand = expands
                ? try ConvLayer(w, prefix + ".conv.0", out: hidden, in: try w.shape(prefix + ".conv.0.weight")[1],
                                kernel: 1, batchNorm: prefix + ".conv.1", activation: .relu6)
                : nil
            depthwise = try ConvLayer(w, "\(prefix).conv.\(dw)", out: hidden, in: hidden, kernel: 3, groups: hidden,
                                      batchNorm: "\(prefix).conv.\(dw + 1)", activation: .relu6)
            project = try ConvLayer(w, "\(prefix).conv.\(pw)", out: projectShape[0], in: hidden, kernel: 1,
                                    batchNorm: "\(prefix).conv.\(pw + 1)")
        }

        var inChannels: Int { expand?.inChannels ?? depthwise.inChannels }

        func callAsFunction(_ x: Tensor, stride: Int, dilation: Int) -> Tensor {
            // The reference pads x by the dilation before the block; padding is the convolutions' own:
            // the expansion's (a 1x1 conv of the padded input), or the depthwise conv's without one.
            let y = if let expand {
                depthwise(expand(x, padding: dilation), stride: stride, dilation: dilation, padding: 0)
            } else {
                depthwise(x, stride: stride, dilation: dilation)
            }
            // The inverted residual's shortcut is added in the projection's epilogue.
            return project(y, adding: stride == 1 && inChannels == project.outChannels ? x : nil)
        }
    }

    let stem: ConvLayer
    let blocks: [InvertedResidual]

    init(_ w: WeightReader) throws {
        stem = try ConvLayer(w, "backbone.features.0.0", out: try w.outChannels("backbone.features.0.0"), in: 3,
                             kernel: 3, stride: 2, batchNorm: "backbone.features.0.1", activation: .relu6)
        let count = Self.groups.reduce(0) { $0 + $1.0 }
        blocks = try (1...count).map { try InvertedResidual(w, "backbone.features.\($0)") }
    }

    /// (stride, dilation) per block: once the running stride reaches the target, later strides become
    /// dilation, which takes effect one group late (the reference's rule).
    func plan(outputStride: Int) -> [(stride: Int, dilation: Int)] {
        var current = 2, rate = 1
        var steps: [(Int, Int)] = []
        for (count, groupStride) in Self.groups {
            let stride, dilation: Int
            if current == outputStride {
                (stride, dilation) = (1, rate)
                rate *= groupStride
            } else {
                (stride, dilation) = (groupStride, 1)
                current *= groupStride
            }
            steps += (0..<count).map { $0 == 0 ? (stride, dilation) : (1, dilation) }
        }
        return steps
    }

    func callAsFunction(_ image: Tensor, outputStride: Int) -> (high: Tensor, low: Tensor) {
        var x = stem(image)
        var low = x
        for (index, (block, step)) in zip(blocks, plan(outputStride: outputStride)).enumerated() {
            x = block(x, stride: step.stride, dilation: step.dilation)
            if index == 2 { low = x }  // features[0:4]: the stem and three blocks, 24 channels at stride 4
        }
        return (x, low)
    }
}
