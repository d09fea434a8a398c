/// Zero padding and cropping of every channel plane (FCN's crops, explicit "fixed padding").

/// Adds `top`/`bottom` rows and `left`/`right` columns of zeros around every channel.
public func pad(_ input: Tensor, top: Int, bottom: Int, left: Int, right: Int) -> Tensor {
    let context = input.context
    return context.measure("concat/pad/crop") {
        precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "negative padding")
        let width = input.width + left + right
        let output = Tensor(channels: input.channels, height: input.height + top + bottom, width: width, repeating: 0, in: context)
        context.forEach(input.channels) { c in
            let src = input.planePointer(c), dst = output.planePointer(c)
            for y in 0..<input.height {
                (dst + (y + top) * width + left).update(from: src + y * input.width, count: input.width)
            }
        }
        return output
    }
}

/// The `height` x `width` window of every channel whose top-left corner is at (`top`, `left`).
public func crop(_ input: Tensor, top: Int, left: Int, height: Int, width: Int) -> Tensor {
    let context = input.context
    return context.measure("concat/pad/crop") {
        precondition(top >= 0 && left >= 0 && top + height <= input.height && left + width <= input.width,
                     "crop \(height)x\(width) at (\(top), \(left)) does not fit in \(input.height)x\(input.width)")
        let output = Tensor(channels: input.channels, height: height, width: width, in: context)
        context.forEach(input.channels) { c in
            let src = input.planePointer(c), dst = output.planePointer(c)
            for y in 0..<height {
                (dst + y * width).update(from: src + (y + top) * input.width + left, count: width)
            }
        }
        return output
    }
}

/// Every channel mirrored left to right (test-time augmentation's flip, and its undoing).
public func mirrored(_ input: Tensor) -> Tensor {
    let output = Tensor(channels: input.channels, height: input.height, width: input.width, in: input.context)
    let width = input.width
    input.context.forEach(input.channels * input.height) { row in
        let source = input.data + row * width, target = output.data + row * width
        for x in 0..<width { target[width - 1 - x] = source[x] }
    }
    return output
}
