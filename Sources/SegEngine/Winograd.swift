import Foundation

/// 3x3 stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2016):
/// each 4x4 block of outputs costs 36 multiplies per (input, output) channel pair instead of 144.
///
/// A dilated conv is an undilated one on each of the d x d interleaved "phase" grids of the input,
/// so dilation is handled by indexing: tile (phase a, b; row i, column j) covers outputs
/// (a + d*(4i + u), b + d*(4j + v)). Work goes in chunks of tiles: gather and transform the input
/// tiles (V = B^T d B), 36 independent matrix products M_k = U_k x V_k over the channels (U = G g G^T,
/// the transformed filters, made at the start of the layer), then the output
/// transform Y = A^T M A with bias and activation fused.
enum Winograd {
    /// A 6x6 input patch per 4x4 output tile: 36 transformed points.
    static let points = 36

    /// Off with SEGVIEW_NO_WINOGRAD=1 in the environment (for A/B benchmarks against im2col).
    nonisolated(unsafe) static var enabled = getenv("SEGVIEW_NO_WINOGRAD") == nil

    /// Whether the Winograd path pays off: a 3x3 stride-1 dense conv whose phase grids hold
    /// at least two tiles each way (large dilations on small maps are mostly padding; the
    /// im2col path skips dead taps there) and enough channels for the products to be efficient.
    static func applies(_ weights: ConvWeights, _ geometry: ConvGeometry, outH: Int, outW: Int) -> Bool {
        enabled && weights.kernelH == 3 && weights.kernelW == 3 && weights.groups == 1 && geometry.stride == 1
            && weights.inChannels >= 8 && weights.outChannels >= 8
            && outH >= 8 * geometry.dilation && outW >= 8 * geometry.dilation
    }

    /// Transformed filters of at most this many floats at once (32 MB): wider layers are done in
    /// blocks of output channels (FCN's 3x3 head on 2048 channels would need 151 MB in one go).
    nonisolated(unsafe) static var filterBudget = 8 << 20

    /// U_k[o][i] = (G g_{o,i} G^T)[k] for the output channels `channels` (whole panels): 36 matrices of
    /// the matrix kernel's panels, `panelled(channels.count) * Cin` floats apart.
    ///
    /// Made afresh every pass rather than kept: kept, they would be 4x the 3x3 weights (190 MB
    /// for ResNet-50) for a transform that costs a few ms. The weights' panels and U's line up:
    /// the eight output channels of a panel are one vector at every (tap, input channel), so each
    /// transform runs on eight filters at once with vector loads and stores.
    static func transformFilters(_ weights: ConvWeights, channels: Range<Int>, into u: UnsafeMutablePointer<Float>) {
        precondition(weights.isPanelled && GEMM.panelRows == laneCount && channels.lowerBound % laneCount == 0,
                     "Winograd reads weights as whole panels of \(laneCount) rows")
        let cin = weights.inChannels, size = GEMM.panelled(channels.count) * cin
        Parallel.forEach(size / cin / laneCount) { panel in
            let source = weights.packed + (channels.lowerBound + panel * laneCount) * weights.rowLength
            let target = u + panel * laneCount * cin
            withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 18) { left in  // G g: 6x3
                for i in 0..<cin {
                    for c in 0..<3 {  // column c of g holds taps (0, c), (1, c), (2, c)
                        let g0 = load(source + (c * cin + i) * laneCount, lanes: laneCount)
                        let g1 = load(source + ((3 + c) * cin + i) * laneCount, lanes: laneCount)
                        let g2 = load(source + ((6 + c) * cin + i) * laneCount, lanes: laneCount)
                        filterRows(g0, g1, g2) { r, value in left[r * 3 + c] = value }
                    }
                    for r in 0..<6 {
                        filterRows(left[r * 3], left[r * 3 + 1], left[r * 3 + 2]) { s, value in
                            store(value, lanes: laneCount, to: target + (r * 6 + s) * size + i * laneCount)
                        }
                    }
                }
            }
        }
    }

    /// G applied to three filter taps: the six rows (or columns) of G g.
    @inline(__always)
    static func filterRows(_ g0: Lanes, _ g1: Lanes, _ g2: Lanes, _ emit: (Int, Lanes) -> Void) {
        emit(0, g0 / 4)
        emit(1, -(g0 + g1 + g2) / 6)
        emit(2, (g1 - g0 - g2) / 6)
        emit(3, g0 / 24 + g1 / 12 + g2 / 6)
        emit(4, g0 / 24 - g1 / 12 + g2 / 6)
        emit(5, g2)
    }

    /// One tile's place: phase (a, b) and tile row/column within the phase grid.
    struct Tile { var a: Int, b: Int, row: Int, column: Int }

    static func tiles(outH: Int, outW: Int, dilation d: Int) -> [Tile] {
        var result: [Tile] = []
        for a in 0..<d {
            let rows = (outH - a + d - 1) / d  // outputs of this phase along y
            for b in 0..<d {
                let columns = (outW - b + d - 1) / d
                for i in 0..<(rows + 3) / 4 {
                    for j in 0..<(columns + 3) / 4 { result.append(Tile(a: a, b: b, row: i, column: j)) }
                }
            }
        }
        return result
    }

    static func conv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry, _ output: Tensor,
                     activation: Activation) {
        let cin = weights.inChannels, cout = weights.outChannels
        let d = geometry.dilation, p = geometry.padding
        let all = tiles(outH: output.height, outW: output.width, dilation: d)
        let block = min(GEMM.panelled(cout), max(GEMM.panelRows, filterBudget / (points * cin) / GEMM.panelRows * GEMM.panelRows))
        let chunk = max(16, min(all.count, columnTileBudget * 3 / 2 / (points * (cin + block))))
        let size = block * cin  // floats per transformed matrix
        withScratch(points * size) { u in
            withScratch(points * cin * chunk) { v in
                withScratch(points * block * chunk) { m in
                    // Each block of output channels transforms the input tiles again: cheaper than
                    // holding every transformed filter (blocks are many only for very deep inputs).
                    for first in stride(from: 0, to: cout, by: block) {
                        let channels = first..<min(cout, first + block)
                        transformFilters(weights, channels: channels, into: u)
                        var start = 0
                        while start < all.count {
                            let count = min(chunk, all.count - start)
                            let batch = Array(all[start..<start + count])
                            transformInput(input, batch, dilation: d, padding: p, into: v, stride: count)
                            Parallel.forEach(points) { k in
                                GEMM.multiply(m: channels.count, n: count, k: cin,
                                              a: .panels(u + k * size, stride: GEMM.panelRows * cin),
                                              b: v + k * cin * count, ldb: count, c: m + k * channels.count * count, ldc: count)
                            }
                            transformOutput(m, batch, stride: count, dilation: d, output, channels: channels,
                                            bias: weights.bias, activation)
                            start += count
                        }
                    }
                }
            }
        }
    }

    /// Tiles are transformed eight at a time, one per SIMD lane: the 36 components of eight
    /// consecutive tiles are contiguous in V and M, so they load and store as vectors.
    typealias Lanes = SIMD8<Float>
    static let laneCount = 8

    /// V_k[c][t] = (B^T d B)[k] for the 6x6 input patch d of tile t in channel c (zero outside).
    static func transformInput(_ input: Tensor, _ batch: [Tile], dilation d: Int, padding p: Int,
                               into v: UnsafeMutablePointer<Float>, stride count: Int) {
        let cin = input.channels, h = input.height, w = input.width
        Parallel.forEach(cin) { c in
            let plane = input.planePointer(c)
            let patch = UnsafeMutablePointer<Lanes>.allocate(capacity: 72), temp = patch + 36
            defer { patch.deallocate() }
            for first in stride(from: 0, to: batch.count, by: laneCount) {
                let lanes = min(laneCount, batch.count - first)
                for r in 0..<36 { patch[r] = Lanes() }
                for lane in 0..<lanes {
                    // Patch element (r, s) is input (a - p + d*(4*row + r), b - p + d*(4*column + s)).
                    let tile = batch[first + lane]
                    let y0 = tile.a - p + d * 4 * tile.row, x0 = tile.b - p + d * 4 * tile.column
                    let inside = x0 >= 0 && x0 + 5 * d < w
                    for r in 0..<6 {
                        let y = y0 + d * r
                        if y < 0 || y >= h { continue }
                        let row = plane + y * w
                        for s in 0..<6 {
                            let x = x0 + d * s
                            if inside || (x >= 0 && x < w) { patch[r * 6 + s][lane] = row[x] }
                        }
                    }
                }
                // temp = B^T patch (rows), then V = temp B (columns).
                for s in 0..<6 { inputRows(patch + s, stride: 6, into: temp + s) }
                for r in 0..<6 {
                    inputRows(temp + r * 6, stride: 1, into: patch)  // the patch is no longer needed
                    for s in 0..<6 { store(patch[s], lanes: lanes, to: v + ((r * 6 + s) * cin + c) * count + first) }
                }
            }
        }
    }

    /// B^T applied to six inputs `x[0], x[stride], ..., x[5*stride]` (a column of the patch at
    /// stride 6, a row at stride 1), the six results written at the same stride.
    @inline(__always)
    static func inputRows(_ x: UnsafeMutablePointer<Lanes>, stride: Int, into out: UnsafeMutablePointer<Lanes>) {
        let d0: Lanes = x[0], d1: Lanes = x[stride], d2: Lanes = x[2 * stride]
        let d3: Lanes = x[3 * stride], d4: Lanes = x[4 * stride], d5: Lanes = x[5 * stride]
        let four: Lanes = Lanes(repeating: 4), five: Lanes = Lanes(repeating: 5), two: Lanes = Lanes(repeating: 2)
        let a: Lanes = four * d0 - five * d2 + d4
        let b: Lanes = d3 + d4 - four * (d1 + d2)
        let c: Lanes = four * (d1 - d2) - d3 + d4
        let e: Lanes = two * (d3 - d1) - d2 + d4
        let f: Lanes = two * (d1 - d3) - d2 + d4
        let g: Lanes = four * d1 - five * d3 + d5
        out[0] = a
        out[stride] = b
        out[2 * stride] = c
        out[3 * stride] = e
        out[4 * stride] = f
        out[5 * stride] = g
    }

    @inline(__always)
    static func store(_ value: Lanes, lanes: Int, to destination: UnsafeMutablePointer<Float>) {
        if lanes == laneCount {
            UnsafeMutableRawPointer(destination).storeBytes(of: value, as: Lanes.self)
        } else {
            for lane in 0..<lanes { destination[lane] = value[lane] }
        }
    }

    @inline(__always)
    static func load(_ source: UnsafePointer<Float>, lanes: Int) -> Lanes {
        if lanes == laneCount { return UnsafeRawPointer(source).loadUnaligned(as: Lanes.self) }
        var value = Lanes()
        for lane in 0..<lanes { value[lane] = source[lane] }
        return value
    }

    /// Y = A^T M A for every tile and output channel of `channels` (M's rows), plus bias and
    /// activation, written in place.
    static func transformOutput(_ m: UnsafeMutablePointer<Float>, _ batch: [Tile], stride count: Int, dilation d: Int,
                                _ output: Tensor, channels: Range<Int>, bias: [Float], _ activation: Activation) {
        let h = output.height, w = output.width
        Parallel.forEach(channels.count) { index in
            let o = channels.lowerBound + index
            let plane = output.planePointer(o)
            let temp = UnsafeMutablePointer<Lanes>.allocate(capacity: 24)  // A^T M: 4x6
            let block = UnsafeMutablePointer<Float>.allocate(capacity: 16 * laneCount)  // Y: 4x4 per lane
            defer { temp.deallocate(); block.deallocate() }
            let step = channels.count * count
            for first in stride(from: 0, to: batch.count, by: laneCount) {
                let lanes = min(laneCount, batch.count - first)
                let base = m + index * count + first
                for s in 0..<6 {
                    let m0 = load(base + (0 * 6 + s) * step, lanes: lanes), m1 = load(base + (1 * 6 + s) * step, lanes: lanes)
                    let m2 = load(base + (2 * 6 + s) * step, lanes: lanes), m3 = load(base + (3 * 6 + s) * step, lanes: lanes)
                    let m4 = load(base + (4 * 6 + s) * step, lanes: lanes), m5 = load(base + (5 * 6 + s) * step, lanes: lanes)
                    temp[s] = m0 + m1 + m2 + m3 + m4
                    temp[6 + s] = m1 - m2 + 2 * (m3 - m4)
                    temp[12 + s] = m1 + m2 + 4 * (m3 + m4)
                    temp[18 + s] = m1 - m2 + 8 * (m3 - m4) + m5
                }
                for r in 0..<4 {
                    let e0 = temp[r * 6], e1 = temp[r * 6 + 1], e2 = temp[r * 6 + 2], e3 = temp[r * 6 + 3], e4 = temp[r * 6 + 4], e5 = temp[r * 6 + 5]
                    let row = UnsafeMutableRawPointer(block + r * 4 * laneCount)
                    row.storeBytes(of: e0 + e1 + e2 + e3 + e4, toByteOffset: 0, as: Lanes.self)
                    row.storeBytes(of: e1 - e2 + 2 * (e3 - e4), toByteOffset: 32, as: Lanes.self)
                    row.storeBytes(of: e1 + e2 + 4 * (e3 + e4), toByteOffset: 64, as: Lanes.self)
                    row.storeBytes(of: e1 - e2 + 8 * (e3 - e4) + e5, toByteOffset: 96, as: Lanes.self)
                }
                activation.apply(block, count: 16 * laneCount, bias: bias[o])
                for lane in 0..<lanes {
                    let tile = batch[first + lane]
                    for u in 0..<4 {
                        let y = tile.a + d * (4 * tile.row + u)
                        if y >= h { break }
                        for x4 in 0..<4 {
                            let x = tile.b + d * (4 * tile.column + x4)
                            if x >= w { break }
                            plane[y * w + x] = block[(u * 4 + x4) * laneCount + lane]
                        }
                    }
                }
            }
        }
    }
}
