import Foundation
import SegEngine
import SegModels

/// Test-time augmentation: besides the image at its working size, the network also sees it
/// mirrored (`flip`) and/or at 0.75 and 1.25 times that size (`scales`); the class probabilities
/// of every pass, brought back to the working size (unmirrored, resized bilinearly), are averaged.
/// Each pass costs a forward pass: flip doubles the time, scales about triples it, both about six
/// times.
public struct TestTimeAugmentation: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let flip = TestTimeAugmentation(rawValue: 1)
    public static let scales = TestTimeAugmentation(rawValue: 2)
    /// The working size's multiples that `scales` adds to 1.
    public static let extraScales = [0.75, 1.25]

    /// "none", "flip", "scales" or "flip,scales" (either order).
    public init?(_ text: String) {
        var value: TestTimeAugmentation = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            switch part {
            case "flip": value.insert(.flip)
            case "scales": value.insert(.scales)
            case "none" where text == "none": break
            default: return nil
            }
        }
        self = value
    }

    public var description: String {
        isEmpty ? "none" : [contains(.flip) ? "flip" : nil, contains(.scales) ? "scales" : nil]
            .compactMap { $0 }.joined(separator: ",")
    }

    /// Forward passes per image.
    public var passes: Int { (contains(.flip) ? 2 : 1) * (contains(.scales) ? 1 + Self.extraScales.count : 1) }

    /// The averaged prediction for a normalised input: scores are the logarithm of the mean
    /// probabilities (so that their softmax is that mean), the border map the mean border map.
    public func predict(_ model: SegmentationModel, _ input: Tensor, outputStride: Int) -> Prediction {
        guard !isEmpty else { return model.predict(input, outputStride: outputStride) }
        let (height, width) = (input.height, input.width)
        let factors = [1.0] + (contains(.scales) ? Self.extraScales : [])
        var probabilities: Tensor?, border: Tensor?
        func accumulate(_ sum: inout Tensor?, _ map: Tensor, mirror: Bool) {
            var map = mirror ? mirrored(map) : map
            if (map.height, map.width) != (height, width) {
                map = resize(map, height: height, width: width, mode: .bilinear(alignCorners: false))
            }
            sum = sum.map { add($0, map) } ?? map
        }
        for factor in factors {
            let size = (height: max(8, Int((Double(height) * factor).rounded())),
                        width: max(8, Int((Double(width) * factor).rounded())))
            let scaled = factor == 1 ? input
                : resize(input, height: size.height, width: size.width, mode: .bilinear(alignCorners: false))
            for mirror in contains(.flip) ? [false, true] : [false] {
                let prediction = model.predict(mirror ? mirrored(scaled) : scaled, outputStride: outputStride)
                accumulate(&probabilities, softmax(prediction.scores), mirror: mirror)
                if let map = prediction.border { accumulate(&border, map, mirror: mirror) }
            }
        }
        let count = Float(passes)
        let scores = probabilities!
        for i in 0..<scores.count { scores.data[i] = log(max(scores.data[i] / count, .leastNormalMagnitude)) }
        if let border { for i in 0..<border.count { border.data[i] /= count } }
        return Prediction(scores: scores, border: border)
    }
}
