import SegEngine

/// DeepLabV3 as torchvision builds it (`deeplabv3_resnet50/101`): dilated ResNet, then
/// `classifier` = ASPP (1x1, three atrous 3x3, image pooling; projected to 256) -> 3x3 conv ->
/// 1x1 logits, bilinearly resized to the input (align_corners=False).
///
/// The ASPP rates are stored for the training output stride and scale inversely with the stride
/// chosen at run time (12/24/36 at 8 become 6/12/18 at 16), as the paper prescribes.
/// The auxiliary FCN head (`aux_classifier.*`) only serves training and is not loaded.
public final class DeepLabV3: SegmentationModel {
    public let metadata: ModelMetadata
    public let outputStrides = [8, 16, 32]
    let backbone: ResNet
    let aspp: ASPP
    let head: ConvLayer
    let logits: ConvLayer
    public let parameterCount: Int

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        backbone = try ResNet(w, prefix: "backbone.")
        let channels = try metadata.integer("head_channels") ?? 256
        let rates = try metadata.integers("aspp_rates") ?? [12, 24, 36]
        aspp = try ASPP(torchvision: w, "classifier.0", in: backbone.outChannels, out: channels, rates: rates,
                        trainedStride: metadata.outputStride)
        head = try ConvLayer(w, "classifier.1", out: channels, in: channels, kernel: 3, batchNorm: "classifier.2",
                             activation: .relu)
        logits = try ConvLayer(w, "classifier.4", out: metadata.numClasses, in: channels, kernel: 1, bias: true)
        parameterCount = w.parameterCount
    }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        let features = backbone(image, outputStride: outputStride)
        let x = logits(head(aspp(features, outputStride: outputStride)))
        return Prediction(scores: resize(x, height: image.height, width: image.width, mode: .bilinear(alignCorners: false)))
    }
}

/// Atrous Spatial Pyramid Pooling: 1x1, atrous 3x3s and image pooling, concatenated and projected.
final class ASPP {
    let pointwise: ConvLayer
    let atrous: [ConvLayer]
    let pooling: ConvLayer
    let project: ConvLayer
    let rates: [Int]
    let trainedStride: Int

    init(pointwise: ConvLayer, atrous: [ConvLayer], pooling: ConvLayer, project: ConvLayer, rates: [Int],
         trainedStride: Int) {
        self.pointwise = pointwise
        self.atrous = atrous
        self.pooling = pooling
        self.project = project
        self.rates = rates
        self.trainedStride = trainedStride
    }

    /// torchvision's names: `convs.0` (1x1), `convs.1...` (atrous), `convs.N` (pooling), `project`.
    convenience init(torchvision w: WeightReader, _ prefix: String, in inChannels: Int, out: Int, rates: [Int],
                     trainedStride: Int) throws {
        let poolIndex = rates.count + 1  // the pool itself is index 0 of that Sequential: conv .1, BN .2
        func branch(_ conv: String, _ norm: String, kernel: Int, in inChannels: Int) throws -> ConvLayer {
            try ConvLayer(w, "\(prefix).\(conv)", out: out, in: inChannels, kernel: kernel, batchNorm: "\(prefix).\(norm)",
                          activation: .relu)
        }
        self.init(
            pointwise: try branch("convs.0.0", "convs.0.1", kernel: 1, in: inChannels),
            atrous: try rates.indices.map { try branch("convs.\($0 + 1).0", "convs.\($0 + 1).1", kernel: 3, in: inChannels) },
            pooling: try branch("convs.\(poolIndex).1", "convs.\(poolIndex).2", kernel: 1, in: inChannels),
            project: try branch("project.0", "project.1", kernel: 1, in: out * (rates.count + 2)),
            rates: rates, trainedStride: trainedStride)
    }

    /// jfzhang95's names: `aspp1` (1x1), `aspp2..4` (atrous), `global_avg_pool.1/.2`, `conv1`/`bn1`.
    convenience init(jfzhang95 w: WeightReader, _ prefix: String, out: Int, rates: [Int], trainedStride: Int) throws {
        let inChannels = try w.shape(prefix + ".aspp1.atrous_conv.weight")[1]
        func branch(_ conv: String, _ norm: String, kernel: Int, in inChannels: Int) throws -> ConvLayer {
            try ConvLayer(w, "\(prefix).\(conv)", out: out, in: inChannels, kernel: kernel, batchNorm: "\(prefix).\(norm)",
                          activation: .relu)
        }
        self.init(
            pointwise: try branch("aspp1.atrous_conv", "aspp1.bn", kernel: 1, in: inChannels),
            atrous: try rates.indices.map {
                try branch("aspp\($0 + 2).atrous_conv", "aspp\($0 + 2).bn", kernel: 3, in: inChannels)
            },
            pooling: try branch("global_avg_pool.1", "global_avg_pool.2", kernel: 1, in: inChannels),
            project: try branch("conv1", "bn1", kernel: 1, in: out * (rates.count + 2)),
            rates: rates, trainedStride: trainedStride)
    }

    /// Rates for a run-time output stride: halving the stride doubles every rate.
    func rates(at outputStride: Int) -> [Int] {
        rates.map { max(1, $0 * trainedStride / outputStride) }
    }

    /// The pooled branch is upsampled from 1x1, a broadcast whatever align_corners the reference uses.
    func callAsFunction(_ x: Tensor, outputStride: Int) -> Tensor {
        var branches = [pointwise(x)]
        for (conv, rate) in zip(atrous, rates(at: outputStride)) { branches.append(conv(x, dilation: rate)) }
        branches.append(broadcast(pooling(globalAveragePool(x)), height: x.height, width: x.width))
        return project(concat(branches))
    }
}
