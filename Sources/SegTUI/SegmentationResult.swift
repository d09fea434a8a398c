import Foundation
import SegEngine
import SegModels

/// What the viewer keeps of one forward pass: per-pixel labels and class probabilities at input
/// resolution, the model's border map if it has one, and the derived numbers the panels show.
public final class SegmentationResult: @unchecked Sendable {
    public let width: Int
    public let height: Int
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

    public init(prediction: Prediction, milliseconds: Double) {
        let scores = prediction.scores
        let labels = argmax(scores)
        width = scores.width
        height = scores.height
        self.labels = labels
        probabilities = softmax(scores)
        border = prediction.border.map { $0.toArray() }
        boundaries = Self.boundaries(of: labels, width: scores.width, height: scores.height)
        var counts = [Int](repeating: 0, count: scores.channels)
        for label in labels { counts[Int(label)] += 1 }
        classShares = counts.map { Double($0) / Double(labels.count) }
        inferenceMilliseconds = milliseconds
    }

    private func pixelMap(_ reduce: ([Float]) -> Float) -> [Float] {
        var values = [Float](repeating: 0, count: probabilities.channels)
        return (0..<width * height).map { i in
            for c in 0..<probabilities.channels { values[c] = probabilities.data[c * width * height + i] }
            return reduce(values)
        }
    }

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
