import Foundation

/// Pointwise non-linearities, applied in the epilogue of the layer that produces them
/// so the values are touched while still in cache.
public enum Activation: String, Sendable, CaseIterable {
    case identity, relu, relu6, hardswish, hardsigmoid, sigmoid

    /// Adds `bias` to `count` values and applies the activation, in place.
    @inline(__always)
    func apply(_ values: UnsafeMutablePointer<Float>, count: Int, bias: Float) {
        switch self {
        case .identity:
            if bias != 0 { for i in 0..<count { values[i] += bias } }
        case .relu:
            for i in 0..<count { values[i] = max(values[i] + bias, 0) }
        case .relu6:
            for i in 0..<count { values[i] = min(max(values[i] + bias, 0), 6) }
        case .hardswish:
            for i in 0..<count {
                let v = values[i] + bias
                values[i] = v * min(max(v + 3, 0), 6) / 6
            }
        case .hardsigmoid:
            for i in 0..<count { values[i] = min(max(values[i] + bias + 3, 0), 6) / 6 }
        case .sigmoid:
            for i in 0..<count { values[i] = 1 / (1 + exp(-(values[i] + bias))) }
        }
    }
}

/// Applies `activation` to a copy of `input`.
public func activate(_ input: Tensor, _ activation: Activation) -> Tensor {
    let context = input.context
    return context.measure("activation") {
        let output = Tensor(channels: input.channels, height: input.height, width: input.width, in: context)
        context.forEach(input.channels) { c in
            output.planePointer(c).update(from: input.planePointer(c), count: input.plane)
            activation.apply(output.planePointer(c), count: input.plane, bias: 0)
        }
        return output
    }
}
