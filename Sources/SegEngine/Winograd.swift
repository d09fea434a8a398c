import COpenBLAS
import Foundation

/// 3x3 stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2016):
/// each 4x4 block of outputs costs 36 multiplies per (input, output) channel pair instead of 144.
///
/// A dilated conv is an undilated one on each of the d x d interleaved "phase" grids of the input,
/// so dilation is handled by indexing: tile (phase a, b; row i, column j) covers outputs
/// (a + d*(4i + u), b + d*(4j + v)). Work goes in chunks of tiles: gather and transform the input
/// tiles (V = B^T d B), 36 independent matrix products M_k = U_k x V_k over the channels (U = G g G^T,
/// the transformed filters, made per call from the packed weights: cheap next to the products, and
/// no resident copy 4x the size of the weights), then the output transform Y = A^T M A with bias
/// and activation fused.
enum Winograd {
    static let tileOut = 4, tileIn = 6, points = 36

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

    /// U_k[o][i] = (G g_{o,i} G^T)[k], laid out [36][Cout][Cin].
    static func transformFilters(_ weights: ConvWeights, into u: UnsafeMutablePointer<Float>) {
        let cin = weights.inChannels, cout = weights.outChannels, packed = weights.packed
        Parallel.forEach(cout) { o in
            let left = UnsafeMutablePointer<Float>.allocate(capacity: 18)  // G g: 6x3
            defer { left.deallocate() }
            let filter = packed + o * 9 * cin
            for i in 0..<cin {
                for c in 0..<3 {
                    let g0 = filter[c * cin + i], g1 = filter[(3 + c) * cin + i], g2 = filter[(6 + c) * cin + i]
                    left[c] = g0 / 4
                    left[3 + c] = -(g0 + g1 + g2) / 6
                    left[6 + c] = (-g0 + g1 - g2) / 6
                    left[9 + c] = g0 / 24 + g1 / 12 + g2 / 6
                    left[12 + c] = g0 / 24 - g1 / 12 + g2 / 6
                    left[15 + c] = g2
                }
                let out = u + o * cin + i, step = cout * cin
                for r in 0..<6 {
                    let g0 = left[r * 3], g1 = left[r * 3 + 1], g2 = left[r * 3 + 2]
                    let row = out + r * 6 * step
                    row[0] = g0 / 4
                    row[step] = -(g0 + g1 + g2) / 6
                    row[2 * step] = (-g0 + g1 - g2) / 6
                    row[3 * step] = g0 / 24 + g1 / 12 + g2 / 6
                    row[4 * step] = g0 / 24 - g1 / 12 + g2 / 6
                    row[5 * step] = g2
                }
            }
        }
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
        let chunk = max(16, min(all.count, columnTileBudget * 3 / 2 / (points * (cin + cout))))
        withScratch(points * cout * cin) { u in
            transformFilters(weights, into: u)
            withScratch(points * cin * chunk) { v in
                withScratch(points * cout * chunk) { m in
                    var start = 0
                    while start < all.count {
                        let count = min(chunk, all.count - start)
                        let batch = Array(all[start..<start + count])
                        transformInput(input, batch, dilation: d, padding: p, into: v, stride: count)
                        Parallel.forEach(points) { k in
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(count), Int32(cin),
                                        1, u + k * cout * cin, Int32(cin), v + k * cin * count, Int32(count),
                                        0, m + k * cout * count, Int32(count))
                        }
                        transformOutput(m, batch, stride: count, dilation: d, output, bias: weights.bias, activation)
                        start += count
                    }
                }
            }
        }
    }

    /// V_k[c][t] = (B^T d B)[k] for the 6x6 input patch d of tile t in channel c (zero outside).
    static func transformInput(_ input: Tensor, _ batch: [Tile], dilation d: Int, padding p: Int,
                               into v: UnsafeMutablePointer<Float>, stride count: Int) {
        let cin = input.channels, h = input.height, w = input.width
        Parallel.forEach(cin) { c in
            let plane = input.planePointer(c)
            let patch = UnsafeMutablePointer<Float>.allocate(capacity: 72), temp = patch + 36
            defer { patch.deallocate() }
            for (t, tile) in batch.enumerated() {
                // Patch element (r, s) is input (a - p + d*(4*row + r), b - p + d*(4*column + s)).
                let y0 = tile.a - p + d * 4 * tile.row, x0 = tile.b - p + d * 4 * tile.column
                let inside = x0 >= 0 && x0 + 5 * d < w
                for r in 0..<6 {
                    let y = y0 + d * r
                    if y < 0 || y >= h {
                        (patch + r * 6).update(repeating: 0, count: 6)
                        continue
                    }
                    let row = plane + y * w
                    if inside {
                        for s in 0..<6 { patch[r * 6 + s] = row[x0 + d * s] }
                    } else {
                        for s in 0..<6 {
                            let x = x0 + d * s
                            patch[r * 6 + s] = x >= 0 && x < w ? row[x] : 0
                        }
                    }
                }
                // temp = B^T patch (rows), then V = temp B (columns).
                for s in 0..<6 {
                    let d0 = patch[s], d1 = patch[6 + s], d2 = patch[12 + s], d3 = patch[18 + s], d4 = patch[24 + s], d5 = patch[30 + s]
                    temp[s] = 4 * d0 - 5 * d2 + d4
                    temp[6 + s] = -4 * d1 - 4 * d2 + d3 + d4
                    temp[12 + s] = 4 * d1 - 4 * d2 - d3 + d4
                    temp[18 + s] = -2 * d1 - d2 + 2 * d3 + d4
                    temp[24 + s] = 2 * d1 - d2 - 2 * d3 + d4
                    temp[30 + s] = 4 * d1 - 5 * d3 + d5
                }
                for r in 0..<6 {
                    let e0 = temp[r * 6], e1 = temp[r * 6 + 1], e2 = temp[r * 6 + 2], e3 = temp[r * 6 + 3], e4 = temp[r * 6 + 4], e5 = temp[r * 6 + 5]
                    let base = v + (r * 6 * cin + c) * count + t
                    let step = cin * count
                    base[0] = 4 * e0 - 5 * e2 + e4
                    base[step] = -4 * e1 - 4 * e2 + e3 + e4
                    base[2 * step] = 4 * e1 - 4 * e2 - e3 + e4
                    base[3 * step] = -2 * e1 - e2 + 2 * e3 + e4
                    base[4 * step] = 2 * e1 - e2 - 2 * e3 + e4
                    base[5 * step] = 4 * e1 - 5 * e3 + e5
                }
            }
        }
    }

    /// Y = A^T M A for every tile and output channel, plus bias and activation, written in place.
    static func transformOutput(_ m: UnsafeMutablePointer<Float>, _ batch: [Tile], stride count: Int, dilation d: Int,
                                _ output: Tensor, bias: [Float], _ activation: Activation) {
        let cout = output.channels, h = output.height, w = output.width
        Parallel.forEach(cout) { o in
            let plane = output.planePointer(o)
            let temp = UnsafeMutablePointer<Float>.allocate(capacity: 40), block = temp + 24  // A^T M: 4x6; Y: 4x4
            defer { temp.deallocate() }
            for (t, tile) in batch.enumerated() {
                let base = m + o * count + t
                let step = cout * count
                for s in 0..<6 {
                    let m0 = base[(0 * 6 + s) * step], m1 = base[(1 * 6 + s) * step], m2 = base[(2 * 6 + s) * step]
                    let m3 = base[(3 * 6 + s) * step], m4 = base[(4 * 6 + s) * step], m5 = base[(5 * 6 + s) * step]
                    temp[s] = m0 + m1 + m2 + m3 + m4
                    temp[6 + s] = m1 - m2 + 2 * (m3 - m4)
                    temp[12 + s] = m1 + m2 + 4 * (m3 + m4)
                    temp[18 + s] = m1 - m2 + 8 * (m3 - m4) + m5
                }
                for r in 0..<4 {
                    let e0 = temp[r * 6], e1 = temp[r * 6 + 1], e2 = temp[r * 6 + 2], e3 = temp[r * 6 + 3], e4 = temp[r * 6 + 4], e5 = temp[r * 6 + 5]
                    block[r * 4] = e0 + e1 + e2 + e3 + e4
                    block[r * 4 + 1] = e1 - e2 + 2 * (e3 - e4)
                    block[r * 4 + 2] = e1 + e2 + 4 * (e3 + e4)
                    block[r * 4 + 3] = e1 - e2 + 8 * (e3 - e4) + e5
                }
                activation.apply(block, count: 16, bias: bias[o])
                for u in 0..<4 {
                    let y = tile.a + d * (4 * tile.row + u)
                    if y >= h { break }
                    for vIndex in 0..<4 {
                        let x = tile.b + d * (4 * tile.column + vIndex)
                        if x >= w { break }
                        plane[y * w + x] = block[u * 4 + vIndex]
                    }
                }
            }
        }
    }
}
