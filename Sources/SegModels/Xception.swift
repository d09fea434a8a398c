import SegEngine

/// Aligned Xception as jfzhang95/pytorch-deeplab-xception builds it (output stride 16 or 8).
///
/// Its quirks are kept because they change the numbers: a separable conv is depthwise -> BN ->
/// pointwise with no ReLU in between; every unit of a block is [ReLU, SeparableConv, BN]; and a block
/// whose units start with a ReLU applies it in place, so its skip branch sees ReLU(x) too.
/// Widths and the number of middle-flow blocks are read from the file.
///
/// Every block's output is read only through a ReLU (the next block's in-place one, or the one after
/// the first and the exit block), so a block ends in ReLU(units(x) + skip(x)), the sum and the ReLU
/// fused into its last pointwise conv: each block's input is then already ReLU(x). (The separate sum
/// and ReLU passes over 32x32 maps of 728 channels were 3 % of a pass.)
final class AlignedXception: EncoderBackbone {
    let outputStrides = [8, 16]

    /// Depthwise 3x3 (its BN folded in) then pointwise 1x1 (the unit's outer BN folded in), plus a
    /// residual where given, then a ReLU: the one that opens the next unit, ends the block or, in the
    /// exit flow's tail, follows the BN.
    struct SeparableConv {
        let depthwise, pointwise: ConvLayer

        init(_ w: WeightReader, _ prefix: String, batchNorm: String) throws {
            let shape = try w.shape(prefix + ".pointwise.weight")
            depthwise = try ConvLayer(w, prefix + ".conv1", out: shape[1], in: shape[1], kernel: 3, groups: shape[1],
                                      batchNorm: prefix + ".bn")
            pointwise = try ConvLayer(w, prefix + ".pointwise", out: shape[0], in: shape[1], kernel: 1,
                                      batchNorm: batchNorm, activation: .relu)
        }

        func callAsFunction(_ x: Tensor, stride: Int = 1, dilation: Int = 1, adding residual: Tensor? = nil) -> Tensor {
            pointwise(depthwise(x, stride: stride, dilation: dilation), adding: residual)
        }
    }

    /// Three [ReLU, SeparableConv, BN] units plus a skip (identity or strided 1x1 conv + BN), then
    /// the ReLU that reads the block's output.
    struct Block {
        let units: [SeparableConv]
        let skip: ConvLayer?

        /// `projected`: the block changes size or channels (entry and exit flow), so its skip is a
        /// 1x1 convolution the file must have.
        init(_ w: WeightReader, _ prefix: String, startsWithReLU: Bool, projected: Bool) throws {
            // rep holds [ReLU, SepConv, BN] per unit; without the leading ReLU every index shifts by one.
            let shift = startsWithReLU ? 0 : -1
            units = try (0..<3).map { u in
                try SeparableConv(w, "\(prefix).rep.\(3 * u + 1 + shift)",
                                  batchNorm: "\(prefix).rep.\(3 * u + 2 + shift)")
            }
            guard w.contains(prefix + ".skip.weight") || !projected else {
                throw SafeTensorsError.missingTensor(prefix + ".skip.weight")
            }
            skip = w.contains(prefix + ".skip.weight")
                ? try ConvLayer(w, prefix + ".skip", out: try w.outChannels(prefix + ".skip"),
                                in: try w.shape(prefix + ".skip.weight")[1], kernel: 1, batchNorm: prefix + ".skipbn")
                : nil
        }

        /// ReLU(units(x) + skip(x)) for an `x` that is ReLU'd already (so a block that starts with a
        /// ReLU changes nothing by it). `steps`: (stride, dilation) of each unit; the block's stride
        /// is the largest of them.
        func callAsFunction(_ x: Tensor, steps: [(stride: Int, dilation: Int)]) -> Tensor {
            let stride = steps.map(\.stride).max()!
            var y = x
            for (index, (unit, step)) in zip(units, steps).enumerated() {
                // The skip made just before the last unit, which adds it: it is not held through the others.
                let residual = index < units.count - 1 ? nil : skip.map { $0(x, stride: stride) } ?? x
                y = unit(y, stride: step.stride, dilation: step.dilation, adding: residual)
            }
            return y
        }
    }

    let conv1, conv2: ConvLayer
    let entry: [Block]
    let middle: [Block]
    let exit: Block
    let tail: [SeparableConv]

    init(_ w: WeightReader) throws {
        let stem = try w.outChannels("backbone.conv1"), width = try w.outChannels("backbone.conv2")
        conv1 = try ConvLayer(w, "backbone.conv1", out: stem, in: 3, kernel: 3, stride: 2, batchNorm: "backbone.bn1",
                              activation: .relu)
        conv2 = try ConvLayer(w, "backbone.conv2", out: width, in: stem, kernel: 3, batchNorm: "backbone.bn2",
                              activation: .relu)
        entry = try (1...3).map { try Block(w, "backbone.block\($0)", startsWithReLU: $0 == 3, projected: true) }
        // Middle-flow blocks have identity skips; the exit block is the first one with a projection.
        var index = 4
        var middle: [Block] = []
        while w.contains("backbone.block\(index).rep.1.pointwise.weight") && !w.contains("backbone.block\(index).skip.weight") {
            middle.append(try Block(w, "backbone.block\(index)", startsWithReLU: true, projected: false))
            index += 1
        }
        self.middle = middle
        exit = try Block(w, "backbone.block\(index)", startsWithReLU: true, projected: true)
        tail = try (3...5).map {
            try SeparableConv(w, "backbone.conv\($0)", batchNorm: "backbone.bn\($0)")
        }
    }

    func callAsFunction(_ image: Tensor, outputStride: Int) -> (high: Tensor, low: Tensor) {
        let (entryStride, middleDilation, exitDilations) = outputStride == 8 ? (1, 2, (2, 4)) : (2, 1, (1, 2))
        var x = conv2(conv1(image))  // ends in a ReLU, as every block does
        let low = entry[0](x, steps: [(1, 1), (1, 1), (2, 1)])
        x = entry[1](low, steps: [(1, 1), (1, 1), (2, 1)])
        x = entry[2](x, steps: [(1, 1), (1, 1), (entryStride, 1)])
        for block in middle { x = block(x, steps: Array(repeating: (1, middleDilation), count: 3)) }
        x = exit(x, steps: [(1, exitDilations.0), (1, exitDilations.0), (1, 1)])
        for conv in tail { x = conv(x, dilation: exitDilations.1) }
        return (x, low)
    }
}
