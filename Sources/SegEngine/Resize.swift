/// How `resize` maps output pixels to input pixels; see PyTorch's `F.interpolate`.
public enum ResizeMode: Equatable, Sendable {
    /// Bilinear. `alignCorners: false` maps pixel centres (`src = (d + 0.5) * in/out - 0.5`);
    /// `true` maps the corner pixels onto each other (`src = d * (in - 1)/(out - 1)`).
    case bilinear(alignCorners: Bool)
    /// PyTorch's legacy `nearest`: `src = min(floor(d * in/out), in - 1)`.
    case nearest
}

/// Per output index along one axis: the two input indices and the weight of the second.
struct LinearTaps {
    var low: [Int]
    var high: [Int]
    var weight: [Float]

    /// `scale`, when given, is PyTorch's `scale_factor`: its inverse replaces `input/output`.
    init(input: Int, output: Int, alignCorners: Bool, scale: Float? = nil) {
        low = []; high = []; weight = []
        low.reserveCapacity(output)
        let ratio: Float
        if alignCorners {
            ratio = output > 1 ? Float(input - 1) / Float(output - 1) : 0
        } else {
            ratio = scale.map { 1 / $0 } ?? Float(input) / Float(output)
        }
        for d in 0..<output {
            let source = alignCorners ? Float(d) * ratio : max((Float(d) + 0.5) * ratio - 0.5, 0)
            let i0 = min(Int(source), input - 1)
            low.append(i0)
            high.append(min(i0 + 1, input - 1))
            weight.append(source - Float(i0))
        }
    }
}

/// Resizes every channel to `height` x `width`.
public func resize(_ input: Tensor, height: Int, width: Int, mode: ResizeMode, scale: (y: Float, x: Float)? = nil) -> Tensor {
    let context = input.context
    return context.measure("resize") {
        let output = Tensor(channels: input.channels, height: height, width: width, in: context)
        switch mode {
        case .bilinear(let alignCorners):
            let ys = LinearTaps(input: input.height, output: height, alignCorners: alignCorners, scale: scale?.y)
            let xs = LinearTaps(input: input.width, output: width, alignCorners: alignCorners, scale: scale?.x)
            // Separable: each input row that an output row reads is interpolated along x once (an
            // upsampling reads it for several output rows, a downsampling skips some), then each
            // output row blends two of those rows, a loop over contiguous memory that vectorises.
            let rowsRead = Set(ys.low + ys.high).sorted()
            xs.low.withUnsafeBufferPointer { low in
                xs.high.withUnsafeBufferPointer { high in
                    xs.weight.withUnsafeBufferPointer { weight in
                        context.forEach(input.channels) { c in
                            let src = input.planePointer(c), dst = output.planePointer(c)
                            context.withScratch(input.height * width) { rows in
                                for iy in rowsRead {
                                    let row = src + iy * input.width, out = rows + iy * width
                                    for ox in 0..<width {
                                        let left = row[low[ox]]
                                        out[ox] = left + (row[high[ox]] - left) * weight[ox]
                                    }
                                }
                                for oy in 0..<height {
                                    let top = rows + ys.low[oy] * width, bottom = rows + ys.high[oy] * width
                                    let wy = ys.weight[oy], out = dst + oy * width
                                    for ox in 0..<width { out[ox] = top[ox] + (bottom[ox] - top[ox]) * wy }
                                }
                            }
                        }
                    }
                }
            }
        case .nearest:
            let ys = nearestIndices(input: input.height, output: height)
            let xs = nearestIndices(input: input.width, output: width)
            context.forEach(input.channels) { c in
                let src = input.planePointer(c), dst = output.planePointer(c)
                for oy in 0..<height {
                    let row = src + ys[oy] * input.width
                    for ox in 0..<width { dst[oy * width + ox] = row[xs[ox]] }
                }
            }
        }
        return output
    }
}

func nearestIndices(input: Int, output: Int) -> [Int] {
    let scale = Float(input) / Float(output)
    return (0..<output).map { min(Int(Float($0) * scale), input - 1) }
}

/// The argmax over channels of `scores` resized bilinearly (half-pixel centres, as `resize` with
/// `alignCorners: false`) to `height` x `width`, without materialising the resized tensor: a
/// 12-megapixel mask from 11 classes at 360x480 needs 48 MB of labels instead of 530 MB of scores.
/// Ties go to the lower class, as in `argmax`.
public func argmaxResized(_ scores: Tensor, height: Int, width: Int) -> [Int32] {
    let context = scores.context
    let ys = LinearTaps(input: scores.height, output: height, alignCorners: false)
    let xs = LinearTaps(input: scores.width, output: width, alignCorners: false)
    let channels = scores.channels, rowsPerChunk = 16
    var labels = [Int32](repeating: 0, count: width * height)
    labels.withUnsafeMutableBufferPointer { out in
        let out = out.baseAddress!
        context.forEach((height + rowsPerChunk - 1) / rowsPerChunk) { chunk in
            // Per chunk: every channel's two source rows interpolated along x (cached while the
            // source rows stay the same), then the blended scores of one output row.
            context.withScratch(3 * channels * width) { scratch in
                let top = scratch, bottom = scratch + channels * width, row = scratch + 2 * channels * width
                var cached = (-1, -1)
                for oy in chunk * rowsPerChunk..<min(height, (chunk + 1) * rowsPerChunk) {
                    if cached != (ys.low[oy], ys.high[oy]) {
                        cached = (ys.low[oy], ys.high[oy])
                        for c in 0..<channels {
                            for (source, target) in [(cached.0, top), (cached.1, bottom)] {
                                let src = scores.planePointer(c) + source * scores.width, dst = target + c * width
                                for ox in 0..<width {
                                    let left = src[xs.low[ox]]
                                    dst[ox] = left + (src[xs.high[ox]] - left) * xs.weight[ox]
                                }
                            }
                        }
                    }
                    let wy = ys.weight[oy]
                    for i in 0..<channels * width { row[i] = top[i] + (bottom[i] - top[i]) * wy }
                    let labelsRow = out + oy * width
                    for ox in 0..<width {
                        var best = row[ox], index: Int32 = 0
                        for c in 1..<max(channels, 1) where row[c * width + ox] > best {
                            best = row[c * width + ox]
                            index = Int32(c)
                        }
                        labelsRow[ox] = index
                    }
                }
            }
        }
    }
    return labels
}
