import SegEngine

/// DFN (Yu et al., "Learning a Discriminative Feature Network"), with the names of the first author's
/// re-implementation (ycszen/TorchSeg `model/dfn`): a ResNet with the "v1c" deep stem, the Smooth
/// Network (global context, then per stage from the deepest: RRB -> CAB with the coarser output ->
/// RRB) and the Border Network (per stage from the shallowest: RRB, upsampled and summed, RRB).
///
/// Returns the last smooth head's scores (the reference's inference output, before its
/// log_softmax) and the sigmoid of the last border head (the reference computes it only for its
/// loss). The reference needs sides that are multiples of 32: the input is zero-padded at the
/// bottom and right (zero in normalised space, as the reference's evaluation pads) and the outputs
/// are cropped back; every upsampling goes to the size of the map it joins, which is the
/// reference's fixed x2 on such inputs and also holds when output stride 16 or 8 dilates the backbone.
public final class DFN: SegmentationModel {
    public let metadata: ModelMetadata
    public let outputStrides = [8, 16, 32]

    /// Refinement Residual Block: 1x1 conv, then `x + conv3x3(relu(bn(conv3x3(x))))`, optionally ReLU'd.
    struct RRB {
        let reduce, inner, refine: ConvLayer

        init(_ w: WeightReader, _ prefix: String, hasReLU: Bool = true) throws {
            let shape = try w.shape(prefix + ".conv_1x1.weight")
            reduce = try ConvLayer(w, prefix + ".conv_1x1", out: shape[0], in: shape[1], kernel: 1)
            inner = try ConvLayer(w, prefix + ".cbr.conv", out: shape[0], in: shape[0], kernel: 3,
                                  batchNorm: prefix + ".cbr.bn", activation: .relu)
            // The block's ReLU follows the residual add, which the refining convolution fuses.
            refine = try ConvLayer(w, prefix + ".conv_refine", out: shape[0], in: shape[0], kernel: 3,
                                   activation: hasReLU ? .relu : .identity)
        }

        func callAsFunction(_ input: Tensor) -> Tensor {
            let x = reduce(input)
            return refine(inner(x), adding: x)
        }
    }

    /// Channel Attention Block: weights from the pooled concat(low, high) scale the low stage; the
    /// high stage is added.
    struct CAB {
        let fc1, fc2: ConvLayer

        init(_ w: WeightReader, _ prefix: String) throws {
            let shape = try w.shape(prefix + ".channel_attention.fc.0.weight")
            fc1 = try ConvLayer(w, linear: prefix + ".channel_attention.fc.0", out: shape[0], in: shape[1],
                                activation: .relu)
            fc2 = try ConvLayer(w, linear: prefix + ".channel_attention.fc.2", out: shape[0], in: shape[0],
                                activation: .sigmoid)
        }

        func callAsFunction(low: Tensor, high: Tensor) -> Tensor {
            // The mean of a concatenation is the concatenation of the means.
            let pooled = concat([globalAveragePool(low), globalAveragePool(high)])
            return add(multiply(low, fc2(fc1(pooled))), high)
        }
    }

    /// A head: RRB (no final ReLU) to 9x the outputs, 1x1 conv with bias, resized to the input.
    struct Head {
        let rrb: RRB
        let conv: ConvLayer

        init(_ w: WeightReader, _ prefix: String) throws {
            rrb = try RRB(w, prefix + ".rrb", hasReLU: false)
            let shape = try w.shape(prefix + ".conv.weight")
            conv = try ConvLayer(w, prefix + ".conv", out: shape[0], in: shape[1], kernel: 1, bias: true)
        }

        func callAsFunction(_ x: Tensor, height: Int, width: Int) -> Tensor {
            resize(conv(rrb(x)), height: height, width: width, mode: .bilinear(alignCorners: true))
        }
    }

    let backbone: ResNet
    let globalContext: ConvLayer
    /// Per stage, deepest first.
    let smoothPre: [RRB], attention: [CAB], smoothPost: [RRB]
    let smoothHead: Head
    /// Per stage, shallowest first; `borderPost[0]` exists in the reference but is never used.
    let borderPre: [RRB], borderPost: [RRB]
    let borderHead: Head
    public let parameterCount: Int

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        backbone = try ResNet(w, prefix: "backbone.")
        let width = try w.outChannels("global_context.1.conv")
        globalContext = try ConvLayer(w, "global_context.1.conv", out: width, in: backbone.outChannels, kernel: 1,
                                      batchNorm: "global_context.1.bn", activation: .relu)
        smoothPre = try (0..<4).map { try RRB(w, "smooth_pre_rrbs.\($0)") }
        attention = try (0..<4).map { try CAB(w, "cabs.\($0)") }
        smoothPost = try (0..<4).map { try RRB(w, "smooth_aft_rrbs.\($0)") }
        smoothHead = try Head(w, "smooth_heads.3")
        borderPre = try (0..<4).map { try RRB(w, "border_pre_rrbs.\($0)") }
        borderPost = try (1..<4).map { try RRB(w, "border_aft_rrbs.\($0)") }
        borderHead = try Head(w, "border_heads.3")
        parameterCount = w.parameterCount
    }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        let padded = pad(image, top: 0, bottom: -image.height & 31, left: 0, right: -image.width & 31)
        let stages = backbone.features(padded, outputStride: outputStride)

        // Smooth network, deepest stage first, starting from the global context.
        let deepest = stages[3]
        var last = broadcast(globalContext(globalAveragePool(deepest)), height: deepest.height, width: deepest.width)
        for (i, features) in stages.reversed().enumerated() {
            var x = attention[i](low: smoothPre[i](features), high: last)
            x = smoothPost[i](x)
            last = i < 3 ? resize(x, height: stages[2 - i].height, width: stages[2 - i].width, mode: .bilinear(alignCorners: true)) : x
        }
        let scores = smoothHead(last, height: padded.height, width: padded.width)

        // Border network, shallowest stage first, each deeper stage upsampled to the shallowest.
        var border = borderPre[0](stages[0])
        for i in 1..<4 {
            let upsampled = resize(borderPre[i](stages[i]), height: border.height, width: border.width,
                                   mode: .bilinear(alignCorners: true))
            border = borderPost[i - 1](add(border, upsampled))
        }
        let borderLogits = borderHead(border, height: padded.height, width: padded.width)
        return Prediction(scores: crop(scores, top: 0, left: 0, height: image.height, width: image.width),
                          border: activate(crop(borderLogits, top: 0, left: 0, height: image.height, width: image.width), .sigmoid))
    }
}
