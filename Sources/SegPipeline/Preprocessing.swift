import SegEngine
import SegImage
import SegModels

/// How a network wants its input: value range, channel order and per-channel mean/std,
/// applied as `(value - mean) / std` in the network's channel order.
public struct Normalization: Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]
    /// 1/255 for networks fed [0, 1] (torchvision), 1 for networks fed 0-255 (Caffe).
    public var scale: Float
    /// Caffe models read BGR.
    public var bgr: Bool

    public init(mean: [Float], std: [Float], scale: Float = 1.0 / 255, bgr: Bool = false) {
        self.mean = mean
        self.std = std
        self.scale = scale
        self.bgr = bgr
    }

    /// ImageNet statistics on [0, 1] RGB, as torchvision's segmentation presets use.
    public static let imagenet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    /// The CHW network input for an RGB image, a tensor of `context`.
    public func tensor(from image: RGBImage, in context: EngineContext) -> Tensor {
        precondition(image.channels == 3, "normalisation expects an RGB image")
        let output = Tensor(channels: 3, height: image.height, width: image.width, in: context)
        let plane = image.width * image.height
        image.pixels.withUnsafeBufferPointer { pixels in
            for c in 0..<3 {
                let source = bgr ? 2 - c : c
                let factor = scale / std[c], offset = mean[c] / std[c]
                let dst = output.planePointer(c)
                for i in 0..<plane { dst[i] = Float(pixels[i * 3 + source]) * factor - offset }
            }
        }
        return output
    }
}

extension Normalization {
    /// The preprocessing a model file asks for in its metadata.
    public init(_ metadata: ModelMetadata) {
        self.init(mean: metadata.mean, std: metadata.std, scale: metadata.inputRange == .unit ? 1.0 / 255 : 1,
                  bgr: metadata.channelOrder == .bgr)
    }
}
