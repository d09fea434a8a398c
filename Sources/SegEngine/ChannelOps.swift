import Foundation

/// Softmax over channels at every pixel (class probabilities from scores).
public func softmax(_ scores: Tensor) -> Tensor {
    let context = scores.context
    let output = Tensor(channels: scores.channels, height: scores.height, width: scores.width, in: context)
    let plane = scores.plane, channels = scores.channels
    context.forEach(scores.height) { y in
        for i in y * scores.width..<(y + 1) * scores.width {
            var top = -Float.infinity
            for c in 0..<channels { top = max(top, scores.data[c * plane + i]) }
            var sum: Float = 0
            for c in 0..<channels {
                let e = exp(scores.data[c * plane + i] - top)
                output.data[c * plane + i] = e
                sum += e
            }
            for c in 0..<channels { output.data[c * plane + i] /= sum }
        }
    }
    return output
}

/// Index of the largest channel at every pixel, row-major; the first wins a tie (as in PyTorch).
public func argmax(_ scores: Tensor) -> [Int32] {
    let context = scores.context
    var labels = [Int32](repeating: 0, count: scores.plane)
    let plane = scores.plane
    labels.withUnsafeMutableBufferPointer { out in
        let out = out.baseAddress!
        context.forEach(scores.height) { y in
            for i in y * scores.width..<(y + 1) * scores.width {
                var best = scores.data[i], index: Int32 = 0
                for c in 1..<max(scores.channels, 1) where scores.data[c * plane + i] > best {
                    best = scores.data[c * plane + i]
                    index = Int32(c)
                }
                out[i] = index
            }
        }
    }
    return labels
}
