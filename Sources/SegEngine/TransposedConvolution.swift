import COpenBLAS

/// Weights of a transposed convolution, in PyTorch's `[Cin][Cout][kh][kw]` layout (groups = 1).
public final class TransposedConvWeights: @unchecked Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelH: Int
    public let kernelW: Int
    public let bias: [Float]
    let values: [Float]

    public init(inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int, weights: [Float], bias: [Float]? = nil) {
        precondition(weights.count == inChannels * outChannels * kernelH * kernelW, "transposed conv weights have the wrong size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.values = weights
        self.bias = bias ?? [Float](repeating: 0, count: outChannels)
    }
}

/// Transposed convolution (Caffe "Deconvolution"): `out = (in - 1)*s - 2p + d*(k-1) + 1`.
///
/// Computed as a matrix product `W^T[Cout*kh*kw, Cin] x X[Cin, positions]` followed by a scatter
/// (col2im) of each column into the output, tile by tile over input positions.
public func convTranspose2d(_ input: Tensor, _ weights: TransposedConvWeights, _ geometry: ConvGeometry = ConvGeometry(),
                            activation: Activation = .identity) -> Tensor {
    precondition(input.channels == weights.inChannels, "transposed conv expects \(weights.inChannels) channels, got \(input.channels)")
    let s = geometry.stride, d = geometry.dilation, p = geometry.padding
    let outH = (input.height - 1) * s - 2 * p + d * (weights.kernelH - 1) + 1
    let outW = (input.width - 1) * s - 2 * p + d * (weights.kernelW - 1) + 1
    let output = Tensor(channels: weights.outChannels, height: outH, width: outW, repeating: 0)
    let taps = weights.kernelH * weights.kernelW
    let rows = weights.outChannels * taps
    let tile = min(input.plane, max(16, columnTileBudget / rows))

    weights.values.withUnsafeBufferPointer { w in
        withScratch(rows * tile) { columns in
            var start = 0
            while start < input.plane {
                let count = min(tile, input.plane - start)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                            Int32(rows), Int32(count), Int32(weights.inChannels),
                            1, w.baseAddress!, Int32(rows), input.data + start, Int32(input.plane),
                            0, columns, Int32(count))
                Parallel.forEach(weights.outChannels) { c in
                    let dst = output.planePointer(c)
                    for tap in 0..<taps {
                        let ty = tap / weights.kernelW, tx = tap % weights.kernelW
                        let src = columns + (c * taps + tap) * count
                        for i in 0..<count {
                            let position = start + i
                            let iy = position / input.width, ix = position - iy * input.width
                            let oy = iy * s - p + ty * d, ox = ix * s - p + tx * d
                            if oy >= 0 && oy < outH && ox >= 0 && ox < outW { dst[oy * outW + ox] += src[i] }
                        }
                    }
                }
                start += count
            }
        }
    }
    Parallel.forEach(weights.outChannels) { c in
        activation.apply(output.planePointer(c), count: output.plane, bias: weights.bias[c])
    }
    return output
}
