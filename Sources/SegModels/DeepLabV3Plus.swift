import SegEngine

/// A DeepLabV3+ encoder backbone: high-level features at the output stride and low-level features
/// at stride 4 (the decoder's skip).
protocol EncoderBackbone: AnyObject {
    var outputStrides: [Int] { get }
    func callAsFunction(_ image: Tensor, outputStride: Int) -> (high: Tensor, low: Tensor)
}

/// DeepLabV3+ as jfzhang95/pytorch-deeplab-xception builds it: backbone (ResNet with multi-grid,
/// aligned Xception or MobileNetV2) -> ASPP (plain convs) -> decoder (48-channel projection of the
/// stride-4 features, two 3x3 convs) -> logits resized to the input; align_corners=True throughout.
///
/// ASPP rates are stored for the training output stride (6/12/18 at 16) and scale inversely with
/// the stride chosen at run time.
public final class DeepLabV3Plus: SegmentationModel {
    public let metadata: ModelMetadata
    public var outputStrides: [Int] { backbone.outputStrides }
    let backbone: EncoderBackbone
    let aspp: ASPP
    let lowLevelProjection: ConvLayer
    let decoderConv1, decoderConv2, logits: ConvLayer
    public let parameterCount: Int

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        switch metadata.backbone {
        case "xception": backbone = try AlignedXception(w)
        case "mobilenetv2": backbone = try MobileNetV2(w)
        default: backbone = try MultiGridResNet(w)
        }
        let width = try w.outChannels("aspp.aspp1.atrous_conv")
        aspp = try ASPP(jfzhang95: w, "aspp", out: width, rates: try metadata.integers("aspp_rates") ?? [6, 12, 18],
                        trainedStride: metadata.outputStride)
        let lowIn = try w.shape("decoder.conv1.weight")[1], lowOut = try w.outChannels("decoder.conv1")
        lowLevelProjection = try ConvLayer(w, "decoder.conv1", out: lowOut, in: lowIn, kernel: 1, batchNorm: "decoder.bn1",
                                           activation: .relu)
        decoderConv1 = try ConvLayer(w, "decoder.last_conv.0", out: width, in: width + lowOut, kernel: 3,
                                     batchNorm: "decoder.last_conv.1", activation: .relu)
        decoderConv2 = try ConvLayer(w, "decoder.last_conv.4", out: width, in: width, kernel: 3,
                                     batchNorm: "decoder.last_conv.5", activation: .relu)
        logits = try ConvLayer(w, "decoder.last_conv.8", out: metadata.numClasses, in: width, kernel: 1, bias: true)
        parameterCount = w.parameterCount
    }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        let (high, lowFeatures) = backbone(image, outputStride: outputStride)
        let low = lowLevelProjection(lowFeatures)
        var x = aspp(high, outputStride: outputStride)
        x = resize(x, height: low.height, width: low.width, mode: .bilinear(alignCorners: true))
        x = logits(decoderConv2(decoderConv1(concat([x, low]))))
        return Prediction(scores: resize(x, height: image.height, width: image.width, mode: .bilinear(alignCorners: true)))
    }
}

/// jfzhang95's ResNet: torchvision names, multi-grid dilation, low-level features from layer1.
final class MultiGridResNet: EncoderBackbone {
    let resnet: ResNet
    let outputStrides = [8, 16, 32]

    init(_ w: WeightReader) throws { resnet = try ResNet(w, prefix: "backbone.", schedule: .multiGrid) }

    func callAsFunction(_ image: Tensor, outputStride: Int) -> (high: Tensor, low: Tensor) {
        let stages = resnet.features(image, outputStride: outputStride, keeping: [0, 3])
        return (stages[1], stages[0])
    }
}
