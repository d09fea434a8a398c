import SegEngine

/// torchvision's `fcn_resnet50/101`: a dilated ResNet and one FCNHead (3x3 conv to in/4 channels,
/// BN, ReLU, 1x1 logits), bilinearly resized to the input. Not the skip-connection FCN of the
/// paper (FCN-32s/16s/8s on VGG-16); the auxiliary head is not loaded.
public final class FCNResNet: SegmentationModel {
    public let metadata: ModelMetadata
    public let outputStrides = [8, 16, 32]
    let backbone: ResNet
    let head: ConvWeights
    let logits: ConvWeights

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        backbone = try ResNet(w, prefix: "backbone.")
        let inner = backbone.outChannels / 4
        head = try w.conv("classifier.0", out: inner, in: backbone.outChannels, kernel: 3, batchNorm: "classifier.1")
        logits = try w.conv("classifier.4", out: metadata.numClasses, in: inner, kernel: 1, bias: true)
    }

    public var parameterCount: Int { backbone.parameterCount + head.parameterCount + logits.parameterCount }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        let features = backbone(image, outputStride: outputStride)
        let x = conv2d(conv2d(features, head, .same(kernel: 3), activation: .relu), logits)
        return Prediction(scores: resize(x, height: image.height, width: image.width, mode: .bilinear(alignCorners: false)))
    }
}
