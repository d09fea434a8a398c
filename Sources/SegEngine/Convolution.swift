import COpenBLAS
import Foundation

/// Where a convolution's window goes: stride, zero padding on every side, dilation.
public struct ConvGeometry: Equatable, Sendable {
    public var stride: Int
    public var padding: Int
    public var dilation: Int

    public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    /// "Same" padding for an odd kernel: the output keeps the input size at stride 1.
    public static func same(kernel: Int, stride: Int = 1, dilation: Int = 1) -> ConvGeometry {
        ConvGeometry(stride: stride, padding: dilation * (kernel - 1) / 2, dilation: dilation)
    }

    /// PyTorch's `floor((in + 2p - d(k-1) - 1) / s) + 1`.
    public func outputSize(_ input: Int, kernel: Int) -> Int {
        (input + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
    }

    /// The output positions whose tap `k` reads inside the input: `0 <= o*s - p + k*d < input`.
    func validOutputs(tap k: Int, input: Int, output: Int) -> Range<Int> {
        let offset = k * dilation - padding
        // o*s >= -offset  and  o*s <= input - 1 - offset
        let low = max(0, ceilDiv(-offset, stride))
        let high = min(output, floorDiv(input - 1 - offset, stride) + 1)
        return low < high ? low..<high : 0..<0
    }
}

@inline(__always) func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
@inline(__always) func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }

/// Convolution weights prepared once at load time: BatchNorm folded in, taps reordered.
///
/// PyTorch stores OIHW (`[Cout][Cin][kh][kw]`). We keep each group's matrix as
/// `[Cout/g][kh*kw][Cin/g]` ("tap-major"), so the columns belonging to one kernel tap are one
/// contiguous block: taps that only ever read zero padding (large dilations on small maps) are
/// then skipped by leaving their block out of the matrix product.
public final class ConvWeights: @unchecked Sendable {
    public let outChannels: Int
    public let inChannels: Int
    public let kernelH: Int
    public let kernelW: Int
    public let groups: Int
    public let bias: [Float]
    let packed: UnsafeMutablePointer<Float>

    var taps: Int { kernelH * kernelW }
    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    var isDepthwise: Bool { groups == inChannels && groups == outChannels }
    public var parameterCount: Int { outChannels * inPerGroup * taps + outChannels }

    /// - Parameters:
    ///   - weights: OIHW values, `outChannels * inChannels/groups * kernelH * kernelW` of them.
    ///   - bias: one per output channel, or nil for none.
    ///   - scale, shift: an affine map applied to the output (a folded BatchNorm): `y = scale*conv(x) + shift`.
    public init(outChannels: Int, inChannels: Int, kernelH: Int, kernelW: Int, groups: Int = 1,
                weights: [Float], bias: [Float]? = nil, scale: [Float]? = nil, shift: [Float]? = nil) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "channels not divisible by groups")
        let perOut = inChannels / groups * kernelH * kernelW
        precondition(weights.count == outChannels * perOut, "weights have \(weights.count) values, expected \(outChannels * perOut)")
        self.outChannels = outChannels
        self.inChannels = inChannels
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.groups = groups
        let scale = scale ?? [Float](repeating: 1, count: outChannels)
        let shift = shift ?? [Float](repeating: 0, count: outChannels)
        let rawBias = bias ?? [Float](repeating: 0, count: outChannels)
        self.bias = (0..<outChannels).map { rawBias[$0] * scale[$0] + shift[$0] }

        packed = .allocate(capacity: outChannels * perOut)
        let cin = inChannels / groups, taps = kernelH * kernelW
        for o in 0..<outChannels {
            for i in 0..<cin {
                for t in 0..<taps {
                    packed[o * perOut + t * cin + i] = weights[o * perOut + i * taps + t] * scale[o]
                }
            }
        }
    }

    /// Winograd-transformed filters (36 x Cout x Cin), made on first use by a Winograd convolution
    /// and kept: 4x the 3x3 weights they come from, traded for not redoing the transform every pass.
    private var winogradFilters: UnsafeMutablePointer<Float>?
    private let winogradLock = NSLock()

    func transformedFilters(_ make: (UnsafeMutablePointer<Float>) -> Void) -> UnsafeMutablePointer<Float> {
        winogradLock.lock()
        defer { winogradLock.unlock() }
        if let winogradFilters { return winogradFilters }
        let filters = UnsafeMutablePointer<Float>.allocate(capacity: Winograd.points * outChannels * inChannels)
        make(filters)
        winogradFilters = filters
        return filters
    }

    deinit {
        packed.deallocate()
        winogradFilters?.deallocate()
    }
}

/// Columns of the unfolded input are produced in tiles of at most this many floats per thread,
/// which bounds the scratch memory of a convolution whatever its size (a 3x3 ASPP conv on 2048
/// channels would otherwise need hundreds of MB) and keeps a tile in L2/L3 between im2col and GEMM.
let columnTileBudget = 8 << 20

/// 2-D convolution with bias and activation fused: `activation(conv(input) + bias)`.
///
/// Threads split the output positions into tiles; each tile is unfolded, multiplied (a
/// single-threaded OpenBLAS call) and finished (bias, activation) by one thread while it is warm.
public func conv2d(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry = ConvGeometry(),
                   activation: Activation = .identity) -> Tensor {
    precondition(input.channels == weights.inChannels,
                 "conv expects \(weights.inChannels) input channels, got \(input.channels)")
    let outH = geometry.outputSize(input.height, kernel: weights.kernelH)
    let outW = geometry.outputSize(input.width, kernel: weights.kernelW)
    precondition(outH > 0 && outW > 0, "convolution output would be empty for input \(input.height)x\(input.width)")
    let output = Tensor(channels: weights.outChannels, height: outH, width: outW)
    let (flop, inBounds) = countWork(input, weights, geometry, output)

    if weights.isDepthwise {
        Profile.measure("conv depthwise", flop: flop) {
            depthwiseConv(input, weights, geometry, output)
            Parallel.forEach(weights.outChannels) { c in
                activation.apply(output.planePointer(c), count: output.plane, bias: weights.bias[c])
            }
        }
    } else if weights.taps == 1 && geometry.stride == 1 && geometry.padding == 0 && weights.groups == 1 {
        Profile.measure("conv 1x1", flop: flop) { pointwiseConv(input, weights, output, activation) }
    } else if weights.groups == 1 && weights.taps > 1 && weights.inChannels >= 32 && inBounds < tapwiseThreshold {
        Profile.measure("conv \(weights.kernelH)x\(weights.kernelW) tapwise", flop: flop) {
            tapwiseConv(input, weights, geometry, output, activation)
        }
    } else if Winograd.applies(weights, geometry, outH: outH, outW: outW) {
        Profile.measure("conv 3x3 winograd", flop: flop) { Winograd.conv(input, weights, geometry, output, activation: activation) }
    } else {
        Profile.measure("conv \(weights.kernelH)x\(weights.kernelW) im2col", flop: flop) {
            for group in 0..<weights.groups {
                unfoldedConv(input, weights, geometry, output, group: group, activation: activation)
            }
        }
    }
    return output
}

/// Tallies the multiply-adds, including how many taps read inside the input (the rest read padding);
/// returns the FLOP of this convolution and the share of its taps that read inside the input.
private func countWork(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry, _ output: Tensor)
    -> (flop: Double, inBounds: Double) {
    let rows = (0..<weights.kernelH).map { geometry.validOutputs(tap: $0, input: input.height, output: output.height).count }
    let cols = (0..<weights.kernelW).map { geometry.validOutputs(tap: $0, input: input.width, output: output.width).count }
    let inBounds = Double(rows.reduce(0, +)) * Double(cols.reduce(0, +))
    let flop = Counters.addConvolution(outChannels: weights.outChannels, inPerGroup: weights.inPerGroup,
                                       outputPlane: output.plane, taps: weights.taps, tapsInBounds: inBounds)
    return (flop, inBounds / (Double(weights.taps) * Double(output.plane)))
}

/// Below this share of taps reading inside the input (large dilations on small maps: ASPP), each
/// tap multiplies only the outputs it reaches instead of im2col's zero-filled columns. Only for
/// deep inputs: with few input channels (FCN's first conv, padded by 100) the per-tap products are
/// too thin to pay for accumulating the output once per tap.
nonisolated(unsafe) var tapwiseThreshold = 0.75

/// One matrix product per kernel tap over just the outputs whose input for that tap lies inside
/// the image, accumulated into the output: the work is the in-bounds work, however much padding
/// the window would otherwise read.
private func tapwiseConv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry, _ output: Tensor,
                         _ activation: Activation) {
    let cin = weights.inChannels, cout = weights.outChannels, taps = weights.taps
    let outW = output.width, s = geometry.stride
    output.data.update(repeating: 0, count: output.count)
    let workers = max(1, min(Parallel.threads, cout / 16))
    for tap in 0..<taps {
        let ky = tap / weights.kernelW, kx = tap % weights.kernelW
        let rows = geometry.validOutputs(tap: ky, input: input.height, output: output.height)
        let cols = geometry.validOutputs(tap: kx, input: input.width, output: outW)
        guard !rows.isEmpty && !cols.isEmpty else { continue }
        let offsetY = ky * geometry.dilation - geometry.padding, offsetX = kx * geometry.dilation - geometry.padding
        let rowsPerTile = max(1, columnTileBudget / 2 / (max(cin, cout) * cols.count))
        for first in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerTile) {
            let tileRows = first..<min(rows.upperBound, first + rowsPerTile)
            let count = tileRows.count * cols.count
            withScratch(cin * count) { columns in
                Parallel.forEach(cin) { channel in
                    let src = input.planePointer(channel), dst = columns + channel * count
                    for (r, oy) in tileRows.enumerated() {
                        let row = src + (oy * s + offsetY) * input.width + offsetX
                        let out = dst + r * cols.count
                        if s == 1 {
                            out.update(from: row + cols.lowerBound, count: cols.count)
                        } else {
                            for (c, ox) in cols.enumerated() { out[c] = row[ox * s] }
                        }
                    }
                }
                withScratch(cout * count) { product in
                    Parallel.forEach(workers) { worker in
                        let lo = cout * worker / workers, hi = cout * (worker + 1) / workers
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(hi - lo), Int32(count), Int32(cin),
                                    1, weights.packed + lo * taps * cin + tap * cin, Int32(taps * cin),
                                    columns, Int32(count), 0, product + lo * count, Int32(count))
                        for channel in lo..<hi {
                            let src = product + channel * count, plane = output.planePointer(channel)
                            for (r, oy) in tileRows.enumerated() {
                                let out = plane + oy * outW + cols.lowerBound, part = src + r * cols.count
                                for c in 0..<cols.count { out[c] += part[c] }
                            }
                        }
                    }
                }
            }
        }
    }
    Parallel.forEach(cout) { c in activation.apply(output.planePointer(c), count: output.plane, bias: weights.bias[c]) }
}

/// Adds the bias and applies the activation to output positions `start..<start+count` of channels `channels`.
@inline(__always)
private func finish(_ output: Tensor, channels: Range<Int>, start: Int, count: Int, bias: [Float], _ activation: Activation) {
    for c in channels { activation.apply(output.planePointer(c) + start, count: count, bias: bias[c]) }
}

/// Splits `positions` into tiles of at most `limit`, at least one per thread when there is enough work.
private func tiles(_ positions: Int, limit: Int) -> [(start: Int, count: Int)] {
    let wanted = max(Parallel.threads, (positions + limit - 1) / limit)
    let size = max(16, (positions + wanted - 1) / wanted)
    return stride(from: 0, to: positions, by: size).map { ($0, min(size, positions - $0)) }
}

/// A pointwise convolution is a plain matrix product over the input planes: no copy of the input.
/// Small maps (global-pooled features) split output channels between threads instead of positions.
private func pointwiseConv(_ input: Tensor, _ weights: ConvWeights, _ output: Tensor, _ activation: Activation) {
    let cin = weights.inChannels, cout = weights.outChannels, plane = input.plane
    if plane < 64 * Parallel.threads {
        let chunk = (cout + Parallel.threads - 1) / Parallel.threads
        Parallel.forEach(Parallel.threads) { worker in
            let first = worker * chunk, rows = min(chunk, cout - first)
            guard rows > 0 else { return }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(plane), Int32(cin),
                        1, weights.packed + first * cin, Int32(cin), input.data, Int32(plane),
                        0, output.data + first * plane, Int32(plane))
            finish(output, channels: first..<first + rows, start: 0, count: plane, bias: weights.bias, activation)
        }
        return
    }
    let work = tiles(plane, limit: max(256, columnTileBudget / max(cin, 1)))
    Parallel.forEach(work.count) { index in
        let (start, count) = work[index]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(count), Int32(cin),
                    1, weights.packed, Int32(cin), input.data + start, Int32(plane),
                    0, output.data + start, Int32(plane))
        finish(output, channels: 0..<cout, start: start, count: count, bias: weights.bias, activation)
    }
}

/// im2col + GEMM for one group, tile by tile over output positions, skipping dead taps.
private func unfoldedConv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry,
                          _ output: Tensor, group: Int, activation: Activation) {
    let cin = weights.inPerGroup, cout = weights.outPerGroup
    let outW = output.width
    let rowRanges = (0..<weights.kernelH).map { geometry.validOutputs(tap: $0, input: input.height, output: output.height) }
    let colRanges = (0..<weights.kernelW).map { geometry.validOutputs(tap: $0, input: input.width, output: outW) }
    let activeTaps = (0..<weights.taps).filter {
        !rowRanges[$0 / weights.kernelW].isEmpty && !colRanges[$0 % weights.kernelW].isEmpty
    }
    let channels = group * cout..<(group + 1) * cout
    if activeTaps.isEmpty {  // the whole window reads padding: only the bias remains
        (output.data + channels.lowerBound * output.plane).update(repeating: 0, count: cout * output.plane)
        finish(output, channels: channels, start: 0, count: output.plane, bias: weights.bias, activation)
        return
    }
    // Consecutive active taps form one matrix product each.
    var runs: [(first: Int, count: Int)] = []
    for tap in activeTaps {
        if let last = runs.last, last.first + last.count == tap { runs[runs.count - 1].count += 1 }
        else { runs.append((tap, 1)) }
    }
    let rows = activeTaps.count * cin
    // One tile of columns at a time, shared by the threads: they unfold it together, then each
    // multiplies it by its own share of the output channels. Tiles stay wide (>= 512 positions) so
    // the products run near peak even when the window is deep (3x3 on 2048 channels).
    let tile = min(output.plane, max(512, columnTileBudget / rows))
    let weightStride = weights.taps * cin
    let groupWeights = weights.packed + group * cout * weightStride
    let inputBase = input.data + group * cin * input.plane
    let outputBase = output.data + channels.lowerBound * output.plane
    let workers = max(1, min(Parallel.threads, cout / 16))

    withScratch(rows * tile) { columns in
        var start = 0
        while start < output.plane {
            let count = min(tile, output.plane - start)
            Parallel.forEach(rows) { row in
                let tap = activeTaps[row / cin], channel = row % cin
                fillColumnRow(columns + row * count, plane: inputBase + channel * input.plane,
                              inputW: input.width, outW: outW,
                              tapY: tap / weights.kernelW, tapX: tap % weights.kernelW,
                              validY: rowRanges[tap / weights.kernelW], validX: colRanges[tap % weights.kernelW],
                              geometry: geometry, start: start, count: count)
            }
            Parallel.forEach(workers) { worker in
                let first = cout * worker / workers, last = cout * (worker + 1) / workers
                var columnRow = 0
                for (runIndex, run) in runs.enumerated() {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                Int32(last - first), Int32(count), Int32(run.count * cin),
                                1, groupWeights + first * weightStride + run.first * cin, Int32(weightStride),
                                columns + columnRow * count, Int32(count),
                                runIndex == 0 ? 0 : 1, outputBase + first * output.plane + start, Int32(output.plane))
                    columnRow += run.count * cin
                }
                finish(output, channels: channels.lowerBound + first..<channels.lowerBound + last, start: start,
                       count: count, bias: weights.bias, activation)
            }
            start += count
        }
    }
}

/// Writes, for output positions `start..<start+count`, the input value that tap (tapY, tapX) reads.
@inline(__always)
private func fillColumnRow(_ row: UnsafeMutablePointer<Float>, plane: UnsafeMutablePointer<Float>,
                           inputW: Int, outW: Int, tapY: Int, tapX: Int,
                           validY: Range<Int>, validX: Range<Int>, geometry: ConvGeometry,
                           start: Int, count: Int) {
    let s = geometry.stride
    let offsetY = tapY * geometry.dilation - geometry.padding
    let offsetX = tapX * geometry.dilation - geometry.padding
    var position = start
    let end = start + count
    while position < end {
        let oy = position / outW
        let firstX = position - oy * outW
        let lastX = min(outW, firstX + (end - position))
        let dst = row + (position - start)
        let n = lastX - firstX
        if !validY.contains(oy) {
            dst.update(repeating: 0, count: n)
        } else {
            let src = plane + (oy * s + offsetY) * inputW
            let lo = min(max(validX.lowerBound, firstX), lastX)
            let hi = max(min(validX.upperBound, lastX), lo)
            if lo > firstX { dst.update(repeating: 0, count: lo - firstX) }
            if s == 1 {
                if hi > lo { (dst + (lo - firstX)).update(from: src + lo + offsetX, count: hi - lo) }
            } else {
                for ox in lo..<hi { dst[ox - firstX] = src[ox * s + offsetX] }
            }
            if lastX > hi { (dst + (hi - firstX)).update(repeating: 0, count: lastX - hi) }
        }
        position += n
    }
}

/// One filter per channel (MobileNet-style): a direct loop, channels split over threads. Each
/// output row takes all its taps while it sits in L1.
private func depthwiseConv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry, _ output: Tensor) {
    let kh = weights.kernelH, kw = weights.kernelW, s = geometry.stride
    let rowRanges = (0..<kh).map { geometry.validOutputs(tap: $0, input: input.height, output: output.height) }
    let colRanges = (0..<kw).map { geometry.validOutputs(tap: $0, input: input.width, output: output.width) }
    Parallel.forEach(input.channels) { c in
        let src = input.planePointer(c), dst = output.planePointer(c)
        let filter = weights.packed + c * kh * kw
        dst.update(repeating: 0, count: output.plane)
        for oy in 0..<output.height {
            let outRow = dst + oy * output.width
            for ty in 0..<kh where rowRanges[ty].contains(oy) {
                let inRow = src + (oy * s + ty * geometry.dilation - geometry.padding) * input.width
                for tx in 0..<kw {
                    let w = filter[ty * kw + tx], cols = colRanges[tx]
                    let from = inRow + tx * geometry.dilation - geometry.padding
                    if s == 1 {
                        // Unit stride: contiguous rows, which the compiler vectorises.
                        let a = from + cols.lowerBound, b = outRow + cols.lowerBound
                        for i in 0..<cols.count { b[i] += w * a[i] }
                    } else {
                        for ox in cols { outRow[ox] += w * from[ox * s] }
                    }
                }
            }
        }
    }
}
