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
        backbone = try ResNet(w, prefix: "backbone.", config: .named(metadata.backbone, metadata: metadata))
        let channels = try metadata.integer("head_channels") ?? 256
        let rates = try metadata.integers("aspp_rates") ?? [12, 24, 36]
        aspp = try ASPP(w, "classifier.0", in: backbone.outChannels, out: channels, rates: rates,
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

/// Atrous Spatial Pyramid Pooling with torchvision's key layout (`convs.0..4`, `project`).
final class ASPP {
    let pointwise: ConvWeights
    let atrous: [ConvWeights]
    let pooling: ConvWeights
    let project: ConvWeights
    let rates: [Int]
    let trainedStride: Int

    init(_ w: WeightReader, _ prefix: String, in inChannels: Int, out: Int, rates: [Int], trainedStride: Int) throws {
        pointwise = try w.conv(prefix + ".convs.0.0", out: out, in: inChannels, kernel: 1, batchNorm: prefix + ".convs.0.1")
        atrous = try rates.indices.map {
            try w.conv(prefix + ".convs.\($0 + 1).0", out: out, in: inChannels, kernel: 3, batchNorm: prefix + ".convs.\($0 + 1).1")
        }
        let poolIndex = rates.count + 1  // the pool itself is index 0 of that Sequential: conv .1, BN .2
        pooling = try w.conv(prefix + ".convs.\(poolIndex).1", out: out, in: inChannels, kernel: 1,
                             batchNorm: prefix + ".convs.\(poolIndex).2")
        project = try w.conv(prefix + ".project.0", out: out, in: out * (rates.count + 2), kernel: 1,
                             batchNorm: prefix + ".project.1")
        self.rates = rates
        self.trainedStride = trainedStride
    }

    /// Rates for a run-time output stride: halving the stride doubles every rate.
    func rates(at outputStride: Int) -> [Int] {
        rates.map { max(1, $0 * trainedStride / outputStride) }
    }

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
