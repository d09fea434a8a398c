import COpenBLAS

/// Weights of a transposed convolution, in PyTorch's `[Cin][Cout][kh][kw]` layout (groups = 1).
public final class TransposedConvWeights: @unchecked Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelH: Int
    public let kernelW: Int
    public let bias: [Float]
    let values: [Float]
    /// Every kernel from channel i to channel o != i is zero (FCN's bilinear upsampling): each channel
    /// then only spreads into itself, C times less work than the full product.
    let isDiagonal: Bool

    public init(inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int, weights: [Float], bias: [Float]? = nil) {
        precondition(weights.count == inChannels * outChannels * kernelH * kernelW, "transposed conv weights have the wrong size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.values = weights
        self.bias = bias ?? [Float](repeating: 0, count: outChannels)
        let taps = kernelH * kernelW
        isDiagonal = inChannels == outChannels && (0..<inChannels).allSatisfy { i in
            (0..<outChannels).allSatisfy { o in o == i || weights[(i * outChannels + o) * taps..<(i * outChannels + o + 1) * taps].allSatisfy { $0 == 0 } }
        }
    }
}

/// Transposed convolution (Caffe "Deconvolution"): `out = (in - 1)*s - 2p + d*(k-1) + 1`.
///
/// Computed as a matrix product `W^T[Cout*kh*kw, Cin] x X[Cin, positions]` followed by a scatter
/// (col2im) of each column into the output, tile by tile over input positions.
public func convTranspose2d(_ input: Tensor, _ weights: TransposedConvWeights, _ geometry: ConvGeometry = ConvGeometry(),
                            activation: Activation = .identity) -> Tensor {
    let context = input.context
    return context.measure("transposed conv") {
        precondition(input.channels == weights.inChannels, "transposed conv expects \(weights.inChannels) channels, got \(input.channels)")
        let output = weights.isDiagonal ? diagonalTransposedConv(input, weights, geometry) : unfoldedTransposedConv(input, weights, geometry)
        context.forEach(weights.outChannels) { c in
            activation.apply(output.planePointer(c), count: output.plane, bias: weights.bias[c])
        }
        return output
    }
}

func transposedOutputSize(_ input: Tensor, _ weights: TransposedConvWeights, _ geometry: ConvGeometry) -> (Int, Int) {
    let s = geometry.stride, d = geometry.dilation, p = geometry.padding
    return ((input.height - 1) * s - 2 * p + d * (weights.kernelH - 1) + 1, (input.width - 1) * s - 2 * p + d * (weights.kernelW - 1) + 1)
}

/// Each channel's kernel spread over its own output plane (no bias or activation yet).
func diagonalTransposedConv(_ input: Tensor, _ weights: TransposedConvWeights, _ geometry: ConvGeometry) -> Tensor {
    let context = input.context
    let s = geometry.stride, d = geometry.dilation, p = geometry.padding
    let (outH, outW) = transposedOutputSize(input, weights, geometry)
    let output = Tensor(channels: weights.outChannels, height: outH, width: outW, repeating: 0, in: context)
    let kh = weights.kernelH, kw = weights.kernelW, channels = weights.outChannels
    weights.values.withUnsafeBufferPointer { w in
        context.forEach(channels) { c in
            let kernel = w.baseAddress! + (c * channels + c) * kh * kw
            let src = input.planePointer(c), dst = output.planePointer(c)
            for iy in 0..<input.height {
                for ix in 0..<input.width {
                    let value = src[iy * input.width + ix]
                    for ty in 0..<kh {
                        let oy = iy * s - p + ty * d
                        if oy < 0 || oy >= outH { continue }
                        let row = dst + oy * outW, taps = kernel + ty * kw
                        for tx in 0..<kw {
                            let ox = ix * s - p + tx * d
                            if ox >= 0 && ox < outW { row[ox] += value * taps[tx] }
                        }
                    }
                }
            }
        }
    }
    return output
}

/// The general case: `W^T x X` per tile of input positions, then col2im (no bias or activation yet).
func unfoldedTransposedConv(_ input: Tensor, _ weights: TransposedConvWeights, _ geometry: ConvGeometry) -> Tensor {
    let context = input.context
    let s = geometry.stride, d = geometry.dilation, p = geometry.padding
    let (outH, outW) = transposedOutputSize(input, weights, geometry)
    let output = Tensor(channels: weights.outChannels, height: outH, width: outW, repeating: 0, in: context)
    let taps = weights.kernelH * weights.kernelW
    let rows = weights.outChannels * taps
    let tile = min(input.plane, max(16, columnTileBudget / rows))

    weights.values.withUnsafeBufferPointer { w in
        context.withScratch(rows * tile) { columns in
            var start = 0
            while start < input.plane {
                let count = min(tile, input.plane - start)
                // Each worker multiplies and scatters its own output channels (no shared writes).
                let workers = min(context.threads, weights.outChannels)
                context.forEach(workers) { worker in
                    let first = weights.outChannels * worker / workers, last = weights.outChannels * (worker + 1) / workers
                    guard last > first else { return }
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                                Int32((last - first) * taps), Int32(count), Int32(weights.inChannels),
                                1, w.baseAddress! + first * taps, Int32(rows), input.data + start, Int32(input.plane),
                                0, columns + first * taps * count, Int32(count))
                    for c in first..<last {
                        let dst = output.planePointer(c)
                        for tap in 0..<taps {
                            let ty = tap / weights.kernelW, tx = tap % weights.kernelW
                            // The tap's column holds positions start..<start+count; scatter it row by
                            // row over the input columns whose output lies inside (no test per value).
                            let src = columns + (c * taps + tap) * count - start
                            let offsetX = tx * d - p
                            let valid = geometry.validOutputs(tap: tx, input: outW, output: input.width)  // 0 <= ix*s + offsetX < outW
                            for iy in start / input.width...(start + count - 1) / input.width {
                                let oy = iy * s - p + ty * d
                                guard oy >= 0 && oy < outH else { continue }
                                let rowStart = iy * input.width
                                let low = max(valid.lowerBound, start - rowStart)
                                let high = min(valid.upperBound, start + count - rowStart)
                                guard low < high else { continue }
                                let from = src + rowStart, to = dst + oy * outW + offsetX
                                for ix in low..<high { to[ix * s] += from[ix] }
                            }
                        }
                    }
                }
                start += count
            }
        }
    }
    return output
}
