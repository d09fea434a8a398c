import VectorKernels

/// Output length of a pooling window, PyTorch's rule (Caffe's pools are the `ceilMode` case):
/// in ceil mode the last window must still start inside the input or its left padding.
public func pooledSize(_ input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1, ceilMode: Bool) -> Int {
    let span = input + 2 * padding - dilation * (kernel - 1) - 1
    var size = (ceilMode ? ceilDiv(span, stride) : floorDiv(span, stride)) + 1
    if ceilMode && (size - 1) * stride >= input + padding { size -= 1 }
    return size
}

/// Max pooling; padding counts as -infinity, as in PyTorch.
public func maxPool2d(_ input: Tensor, kernel: Int, stride: Int, padding: Int = 0, dilation: Int = 1,
                      ceilMode: Bool = false) -> Tensor {
    let context = input.context
    return context.measure("max pool") {
        if stride == 1 && dilation == 1 && !ceilMode {
            return separableMaxPool(input, kernel: kernel, padding: padding)
        }
        return windowMaxPool(input, kernel: kernel, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }
}

/// The max over a k x k window is the max over k row maxima: two passes of k taps instead of k^2
/// (RefineNet's chained 5x5 stride-1 pools). Padding counts as -infinity, as in PyTorch.
func separableMaxPool(_ input: Tensor, kernel: Int, padding: Int) -> Tensor {
    let context = input.context
    let outH = input.height + 2 * padding - kernel + 1, outW = input.width + 2 * padding - kernel + 1
    let output = Tensor(channels: input.channels, height: outH, width: outW, in: context)
    context.forEach(input.channels) { c in
        let src = input.planePointer(c), dst = output.planePointer(c)
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: input.height * outW)
        defer { rows.deallocate() }
        for y in 0..<input.height {
            let line = src + y * input.width
            for ox in 0..<outW {
                var best = -Float.infinity
                for x in max(0, ox - padding)..<min(input.width, ox - padding + kernel) where line[x] > best || line[x].isNaN {
                    best = line[x]
                }
                rows[y * outW + ox] = best
            }
        }
        for oy in 0..<outH {
            let out = dst + oy * outW
            out.update(repeating: -Float.infinity, count: outW)
            for y in max(0, oy - padding)..<min(input.height, oy - padding + kernel) {
                let row = rows + y * outW
                for ox in 0..<outW where row[ox] > out[ox] || row[ox].isNaN { out[ox] = row[ox] }
            }
        }
    }
    return output
}

/// Max pooling window by window (any stride, dilation, ceil mode), a plane per call of the C kernel.
func windowMaxPool(_ input: Tensor, kernel: Int, stride: Int, padding: Int = 0, dilation: Int = 1,
                   ceilMode: Bool = false) -> Tensor {
    let context = input.context
    let outH = pooledSize(input.height, kernel: kernel, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    let outW = pooledSize(input.width, kernel: kernel, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    let output = Tensor(channels: input.channels, height: outH, width: outW, in: context)
    context.forEach(input.channels) { c in
        seg_max_pool_plane(input.planePointer(c), Int32(input.height), Int32(input.width), output.planePointer(c), Int32(outH),
                           Int32(outW), Int32(kernel), Int32(stride), Int32(padding), Int32(dilation))
    }
    return output
}

/// Average pooling. With `countIncludePad` (PyTorch's default) the divisor counts padded taps
/// but not the part of a ceil-mode window that hangs past the padding.
public func avgPool2d(_ input: Tensor, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false,
                      countIncludePad: Bool = true) -> Tensor {
    let context = input.context
    return context.measure("avg pool") {
        let outH = pooledSize(input.height, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        let outW = pooledSize(input.width, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        let output = Tensor(channels: input.channels, height: outH, width: outW, in: context)
        context.forEach(input.channels) { c in
            let src = input.planePointer(c), dst = output.planePointer(c)
            for oy in 0..<outH {
                var y0 = oy * stride - padding
                var y1 = min(y0 + kernel, input.height + padding)
                let paddedH = y1 - y0
                y0 = max(y0, 0); y1 = min(y1, input.height)
                for ox in 0..<outW {
                    var x0 = ox * stride - padding
                    var x1 = min(x0 + kernel, input.width + padding)
                    let paddedW = x1 - x0
                    x0 = max(x0, 0); x1 = min(x1, input.width)
                    var sum: Float = 0
                    for y in y0..<max(y0, y1) { for x in x0..<max(x0, x1) { sum += src[y * input.width + x] } }
                    let divisor = countIncludePad ? paddedH * paddedW : (y1 - y0) * (x1 - x0)
                    dst[oy * outW + ox] = divisor > 0 ? sum / Float(divisor) : 0
                }
            }
        }
        return output
    }
}

/// Adaptive average pooling: output cell i covers input `floor(i*in/out) ..< ceil((i+1)*in/out)`.
public func adaptiveAvgPool2d(_ input: Tensor, height outH: Int, width outW: Int) -> Tensor {
    let context = input.context
    return context.measure("avg pool") {
        let output = Tensor(channels: input.channels, height: outH, width: outW, in: context)
        context.forEach(input.channels) { c in
            let src = input.planePointer(c), dst = output.planePointer(c)
            for oy in 0..<outH {
                let y0 = oy * input.height / outH, y1 = ceilDiv((oy + 1) * input.height, outH)
                for ox in 0..<outW {
                    let x0 = ox * input.width / outW, x1 = ceilDiv((ox + 1) * input.width, outW)
                    var sum: Float = 0
                    if x0 == 0 && x1 == input.width {  // whole rows: one run (global pooling: the plane)
                        sum = seg_sum(src + y0 * input.width, (y1 - y0) * input.width)
                    } else {
                        for y in y0..<y1 { sum += seg_sum(src + y * input.width + x0, x1 - x0) }
                    }
                    dst[oy * outW + ox] = sum / Float((y1 - y0) * (x1 - x0))
                }
            }
        }
        return output
    }
}

/// Mean of each channel, as a Cx1x1 tensor (the image-pooling branch of ASPP).
public func globalAveragePool(_ input: Tensor) -> Tensor {
    let context = input.context
    return context.measure("avg pool") {
        adaptiveAvgPool2d(input, height: 1, width: 1)
    }
}
