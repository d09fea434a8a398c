/// `a + b`, optionally followed by an activation (ResNet's residual add + ReLU).
public func add(_ a: Tensor, _ b: Tensor, activation: Activation = .identity) -> Tensor {
    let context = a.context
    return context.measure("add/multiply") {
        precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
        precondition(a.context === b.context, "add: the tensors belong to different contexts")
        let output = Tensor(channels: a.channels, height: a.height, width: a.width, in: context)
        context.forEach(a.channels) { c in
            let x = a.planePointer(c), y = b.planePointer(c), z = output.planePointer(c)
            for i in 0..<a.plane { z[i] = x[i] + y[i] }
            activation.apply(z, count: a.plane, bias: 0)
        }
        return output
    }
}

/// `a = activation(a + b)`, in place: the residual add of a convolution that could not fuse it.
func addInPlace(_ a: Tensor, _ b: Tensor, activation: Activation) {
    let context = a.context
    return context.measure("add/multiply") {
        context.forEach(a.channels) { c in
            let x = a.planePointer(c), y = b.planePointer(c)
            for i in 0..<a.plane { x[i] += y[i] }
            activation.apply(x, count: a.plane, bias: 0)
        }
    }
}

/// `a * b` where `b` is either the same shape or one value per channel (Cx1x1, attention weights).
public func multiply(_ a: Tensor, _ b: Tensor) -> Tensor {
    let context = a.context
    return context.measure("add/multiply") {
        let perChannel = b.height == 1 && b.width == 1
        precondition(a.channels == b.channels && (perChannel || a.shape == b.shape),
                     "multiply: shapes \(a.shape) and \(b.shape) do not broadcast")
        precondition(a.context === b.context, "multiply: the tensors belong to different contexts")
        let output = Tensor(channels: a.channels, height: a.height, width: a.width, in: context)
        context.forEach(a.channels) { c in
            let x = a.planePointer(c), y = b.planePointer(c), z = output.planePointer(c)
            if perChannel {
                let factor = y[0]
                for i in 0..<a.plane { z[i] = x[i] * factor }
            } else {
                for i in 0..<a.plane { z[i] = x[i] * y[i] }
            }
        }
        return output
    }
}

/// Stacks tensors of equal spatial size along the channel axis.
public func concat(_ parts: [Tensor]) -> Tensor {
    let context = parts[0].context
    return context.measure("concat/pad/crop") {
        let first = parts[0]
        precondition(parts.allSatisfy { $0.height == first.height && $0.width == first.width },
                     "concat: spatial sizes differ: \(parts.map(\.shape))")
        precondition(parts.allSatisfy { $0.context === context }, "concat: the tensors belong to different contexts")
        let output = Tensor(channels: parts.reduce(0) { $0 + $1.channels }, height: first.height, width: first.width, in: context)
        var offset = 0
        var sources: [(Tensor, Int)] = []  // (part, first output channel)
        for part in parts { sources.append((part, offset)); offset += part.channels }
        context.forEach(parts.count) { i in
            let (part, start) = sources[i]
            (output.data + start * output.plane).update(from: part.data, count: part.count)
        }
        return output
    }
}

/// Repeats a Cx1x1 tensor over `height` x `width` (an upsampled global feature).
public func broadcast(_ input: Tensor, height: Int, width: Int) -> Tensor {
    let context = input.context
    return context.measure("concat/pad/crop") {
        precondition(input.height == 1 && input.width == 1, "broadcast expects a Cx1x1 tensor, got \(input.shape)")
        let output = Tensor(channels: input.channels, height: height, width: width, in: context)
        context.forEach(input.channels) { c in output.planePointer(c).update(repeating: input.data[c], count: output.plane) }
        return output
    }
}
