import SegEngine

/// torchvision's `fcn_resnet50/101`: a dilated ResNet and one FCNHead (3x3 conv to in/4 channels,
/// BN, ReLU, 1x1 logits), bilinearly resized to the input. Not the skip-connection FCN of the
/// paper (FCN-32s/16s/8s on VGG-16); the auxiliary head is not loaded.
public final class FCNResNet: SegmentationModel {
    public let metadata: ModelMetadata
    public let outputStrides = [8, 16, 32]
    let backbone: ResNet
    let head: ConvLayer
    let logits: ConvLayer
    public let parameterCount: Int

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        backbone = try ResNet(w, prefix: "backbone.")
        let inner = backbone.outChannels / 4
        head = try ConvLayer(w, "classifier.0", out: inner, in: backbone.outChannels, kernel: 3, batchNorm: "classifier.1",
                             activation: .relu)
        logits = try ConvLayer(w, "classifier.4", out: metadata.numClasses, in: inner, kernel: 1, bias: true)
        parameterCount = w.parameterCount
    }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        let features = backbone(image, outputStride: outputStride)
        let x = logits(head(features))
        return Prediction(scores: resize(x, height: image.height, width: image.width, mode: .bilinear(alignCorners: false)))
    }
}
