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
    let head: ConvWeights
    let logits: ConvWeights

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        backbone = try ResNet(w, prefix: "backbone.")
        let channels = try metadata.integer("head_channels") ?? 256
        let rates = try metadata.integers("aspp_rates") ?? [12, 24, 36]
        aspp = try ASPP(torchvision: w, "classifier.0", in: backbone.outChannels, out: channels, rates: rates,
                        trainedStride: metadata.outputStride)
        head = try w.conv("classifier.1", out: channels, in: channels, kernel: 3, batchNorm: "classifier.2")
        logits = try w.conv("classifier.4", out: metadata.numClasses, in: channels, kernel: 1, bias: true)
    }

    public var parameterCount: Int {
        backbone.parameterCount + aspp.parameterCount + head.parameterCount + logits.parameterCount
    }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        let features = backbone(image, outputStride: outputStride)
        var x = aspp(features, outputStride: outputStride)
        x = conv2d(x, head, .same(kernel: 3), activation: .relu)
        x = conv2d(x, logits)
        return Prediction(scores: resize(x, height: image.height, width: image.width, mode: .bilinear(alignCorners: false)))
    }
}

/// Atrous Spatial Pyramid Pooling: 1x1, atrous 3x3s and image pooling, concatenated and projected.
final class ASPP {
    let pointwise: ConvWeights
    let atrous: [ConvWeights]
    let pooling: ConvWeights
    let project: ConvWeights
    let rates: [Int]
    let trainedStride: Int

    init(pointwise: ConvWeights, atrous: [ConvWeights], pooling: ConvWeights, project: ConvWeights, rates: [Int],
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
        self.init(
            pointwise: try w.conv(prefix + ".convs.0.0", out: out, in: inChannels, kernel: 1, batchNorm: prefix + ".convs.0.1"),
            atrous: try rates.indices.map {
                try w.conv(prefix + ".convs.\($0 + 1).0", out: out, in: inChannels, kernel: 3, batchNorm: prefix + ".convs.\($0 + 1).1")
            },
            pooling: try w.conv(prefix + ".convs.\(poolIndex).1", out: out, in: inChannels, kernel: 1,
                                batchNorm: prefix + ".convs.\(poolIndex).2"),
            project: try w.conv(prefix + ".project.0", out: out, in: out * (rates.count + 2), kernel: 1,
                                batchNorm: prefix + ".project.1"),
            rates: rates, trainedStride: trainedStride)
    }

    /// jfzhang95's names: `aspp1` (1x1), `aspp2..4` (atrous), `global_avg_pool.1/.2`, `conv1`/`bn1`.
    convenience init(jfzhang95 w: WeightReader, _ prefix: String, out: Int, rates: [Int], trainedStride: Int) throws {
        let inChannels = try w.shape(prefix + ".aspp1.atrous_conv.weight")[1]
        func branch(_ index: Int, kernel: Int) throws -> ConvWeights {
            try w.conv("\(prefix).aspp\(index).atrous_conv", out: out, in: inChannels, kernel: kernel,
                       batchNorm: "\(prefix).aspp\(index).bn")
        }
        self.init(
            pointwise: try branch(1, kernel: 1),
            atrous: try rates.indices.map { try branch($0 + 2, kernel: 3) },
            pooling: try w.conv(prefix + ".global_avg_pool.1", out: out, in: inChannels, kernel: 1,
                                batchNorm: prefix + ".global_avg_pool.2"),
            project: try w.conv(prefix + ".conv1", out: out, in: out * (rates.count + 2), kernel: 1, batchNorm: prefix + ".bn1"),
            rates: rates, trainedStride: trainedStride)
    }

    /// Rates for a run-time output stride: halving the stride doubles every rate.
    func rates(at outputStride: Int) -> [Int] {
        rates.map { max(1, $0 * trainedStride / outputStride) }
    }

    /// The pooled branch is upsampled from 1x1, a broadcast whatever align_corners the reference uses.
    func callAsFunction(_ x: Tensor, outputStride: Int) -> Tensor {
        var branches = [conv2d(x, pointwise, activation: .relu)]
        for (conv, rate) in zip(atrous, rates(at: outputStride)) {
            branches.append(conv2d(x, conv, .same(kernel: 3, dilation: rate), activation: .relu))
        }
        let pooled = conv2d(globalAveragePool(x), pooling, activation: .relu)
        branches.append(broadcast(pooled, height: x.height, width: x.width))
        return conv2d(concat(branches), project, activation: .relu)
    }

    var parameterCount: Int {
        pointwise.parameterCount + atrous.reduce(0) { $0 + $1.parameterCount } + pooling.parameterCount + project.parameterCount
    }
}
