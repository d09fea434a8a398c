import Foundation
import SegEngine
import SegModels

/// One forward pass made usable: class scores, probabilities, labels, the border map and the
/// numbers derived from them, at the working resolution the network ran at; outputs at the size
/// of the source image (`sourceWidth` x `sourceHeight`) come from `labels(width:height:)` and its
/// siblings, which resample the scores rather than the labels.
public final class SegmentationResult: @unchecked Sendable {
    public let width: Int
    public let height: Int
    /// The size of the image the working resolution was taken from.
    public let sourceWidth: Int
    public let sourceHeight: Int
    /// The network's class scores (logits), CHW.
    public let scores: Tensor
    public let labels: [Int32]
    /// Softmax over classes, CHW.
    public let probabilities: Tensor
    /// The model's own border probability (DFN), else nil.
    public let border: [Float]?
    /// 1 where a 4-neighbour has another label: the boundaries of the mask.
    public let boundaries: [Float]
    /// Share of pixels per class.
    public let classShares: [Double]
    public let inferenceMilliseconds: Double
    /// The top class probability at each pixel.
    public private(set) lazy var maxProbability: [Float] = pixelMap { values in values.max() ?? 0 }
    /// Entropy of the class distribution at each pixel, divided by its maximum log(C): 0 sure, 1 uniform.
    public private(set) lazy var normalizedEntropy: [Float] = pixelMap { values in
        -values.reduce(0) { $1 > 0 ? $0 + $1 * log($1) : $0 } / log(Float(max(values.count, 2)))
    }

    /// `sourceWidth` and `sourceHeight` default to the prediction's own size.
    public init(prediction: Prediction, milliseconds: Double, sourceWidth: Int? = nil, sourceHeight: Int? = nil) {
        let scores = prediction.scores
        let labels = argmax(scores)
        width = scores.width
        height = scores.height
        self.sourceWidth = sourceWidth ?? scores.width
        self.sourceHeight = sourceHeight ?? scores.height
        self.scores = scores
        self.labels = labels
        probabilities = softmax(scores)
        border = prediction.border.map { $0.toArray() }
        boundaries = Self.boundaries(of: labels, width: scores.width, height: scores.height)
        var counts = [Int](repeating: 0, count: scores.channels)
        for label in labels { counts[Int(label)] += 1 }
        classShares = counts.map { Double($0) / Double(labels.count) }
        inferenceMilliseconds = milliseconds
        borderTensor = prediction.border
    }

    private let borderTensor: Tensor?

    /// Whether the border map is the model's own (DFN's border network) rather than the mask's boundaries.
    public var hasModelBorder: Bool { border != nil }

    /// The same result brought to another size (scores resized bilinearly, as the references
    /// upsample their logits), for a viewer that shows it over an image of that size.
    public func resampled(width newWidth: Int, height newHeight: Int) -> SegmentationResult {
        guard (newWidth, newHeight) != (width, height) else { return self }
        let border = borderTensor.map { Self.resized($0, newWidth, newHeight) }
        let prediction = Prediction(scores: scores(width: newWidth, height: newHeight), border: border)
        return SegmentationResult(prediction: prediction, milliseconds: inferenceMilliseconds,
                                  sourceWidth: sourceWidth, sourceHeight: sourceHeight)
    }

    /// Labels at `width` x `height`: the argmax of the bilinearly resized scores.
    public func labels(width newWidth: Int, height newHeight: Int) -> [Int32] {
        (newWidth, newHeight) == (width, height) ? labels : argmaxResized(scores, height: newHeight, width: newWidth)
    }

    /// The scores resized bilinearly to `width` x `height`.
    public func scores(width newWidth: Int, height newHeight: Int) -> Tensor {
        Self.resized(scores, newWidth, newHeight)
    }

    /// The border map at `width` x `height`: the model's own, resized, or the boundaries of
    /// `labels` (which must be at that size).
    public func borderMap(width newWidth: Int, height newHeight: Int, labels sized: [Int32]) -> [Float] {
        if let borderTensor { return Self.resized(borderTensor, newWidth, newHeight).toArray() }
        return (newWidth, newHeight) == (width, height) ? boundaries
            : Self.boundaries(of: sized, width: newWidth, height: newHeight)
    }

    private static func resized(_ tensor: Tensor, _ width: Int, _ height: Int) -> Tensor {
        (width, height) == (tensor.width, tensor.height)
            ? tensor : resize(tensor, height: height, width: width, mode: .bilinear(alignCorners: false))
    }

    private func pixelMap(_ reduce: ([Float]) -> Float) -> [Float] {
        var values = [Float](repeating: 0, count: probabilities.channels)
        return (0..<width * height).map { i in
            for c in 0..<probabilities.channels { values[c] = probabilities.data[c * width * height + i] }
            return reduce(values)
        }
    }

    /// 1 where a 4-neighbour has another label, else 0.
    public static func boundaries(of labels: [Int32], width: Int, height: Int) -> [Float] {
        var out = [Float](repeating: 0, count: labels.count)
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x, label = labels[i]
                if (x + 1 < width && labels[i + 1] != label) || (y + 1 < height && labels[i + width] != label)
                    || (x > 0 && labels[i - 1] != label) || (y > 0 && labels[i - width] != label) {
                    out[i] = 1
                }
            }
        }
        return out
    }

    /// Class probabilities at one pixel, highest first.
    public func ranking(x: Int, y: Int) -> [(label: Int, probability: Float)] {
        (0..<probabilities.channels).map { ($0, probabilities[$0, y, x]) }.sorted { $0.probability > $1.probability }
    }

    public func probability(of label: Int, x: Int, y: Int) -> Float { probabilities[label, y, x] }
}
