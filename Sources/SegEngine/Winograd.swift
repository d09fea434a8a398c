import Foundation
import VectorKernels

/// 3x3 stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2016):
/// each 4x4 block of outputs costs 36 multiplies per (input, output) channel pair instead of 144.
///
/// A dilated conv is an undilated one on each of the d x d interleaved "phase" grids of the input,
/// so dilation is handled by indexing: tile (phase a, b; row i, column j) covers outputs
/// (a + d*(4i + u), b + d*(4j + v)). Work goes in chunks of tiles and, within a chunk, blocks of
/// input channels: transform the block's filters (U = G g G^T) and input tiles (V = B^T d B), add
/// the 36 independent matrix products U_k x V_k over the block's channels into M_k, then, once
/// every block is in, the output transform Y = A^T M A with bias and activation fused. The
/// transforms are C (VectorKernels), the products the matrix kernel's.
enum Winograd {
    /// A 6x6 input patch per 4x4 output tile: 36 transformed points.
    static let points = 36

    /// Whether the Winograd path can take a convolution: a 3x3 stride-1 dense conv with enough
    /// channels for the products to be efficient. Whether it pays off is `multiplyShare`'s to say.
    static func applies(_ weights: ConvWeights, _ geometry: ConvGeometry, _ kernels: KernelChoices) -> Bool {
        kernels.winograd && weights.kernelH == 3 && weights.kernelW == 3 && weights.groups == 1 && geometry.stride == 1
            && weights.inChannels >= 8 && weights.outChannels >= 8
    }

    /// Winograd's multiplies for an outH x outW output at `dilation`, as a share of a direct
    /// convolution's over the whole window: 36 per tile against 9 per output. Whole tiles cover
    /// each phase grid, so on small grids (large dilations on small maps) most of a tile is waste:
    /// ASPP's rate 12 on a 45x60 map costs 0.43 of the direct multiplies, rate 24 0.85.
    static func multiplyShare(outH: Int, outW: Int, dilation d: Int) -> Double {
        var tiles = 0
        for a in 0..<d {
            for b in 0..<d { tiles += ((outH - a + d - 1) / d + 3) / 4 * (((outW - b + d - 1) / d + 3) / 4) }
        }
        return Double(tiles * points) / Double(9 * outH * outW)
    }

    /// Floats between the transformed tiles or filters of consecutive points beyond what they hold:
    /// the 36 matrices are often a power of two apart (channels x tiles), which puts every point's
    /// row of a channel in the same cache set, and the transforms read or write all 36 at once (the
    /// filters' transform ran 2x slower unpadded).
    static let matrixPadding = 32

    /// Floats per row of V and M for `tiles` tiles: the transforms read and write whole vectors of 16.
    static func vectorRow(_ tiles: Int) -> Int { (tiles + 15) / 16 * 16 }

    /// U_k[o][i] = (G g_{o,i} G^T)[k] for every output channel and the input channels `inputs`: 36
    /// matrices of the matrix kernel's panels (`inputs.count` deep), `matrixSize` floats apart.
    ///
    /// Made afresh every pass rather than kept: kept, they would be 4x the 3x3 weights (190 MB
    /// for ResNet-50, 151 MB for FCN-ResNet50's head alone) for a transform that costs 20-30 ms a
    /// pass (deeplabv3_resnet50 at 512x512, about 2 % of it). The weights' panels and U's line up,
    /// so the transform reads and writes whole panels.
    static func transformFilters(_ weights: ConvWeights, inputs: Range<Int>, into u: UnsafeMutablePointer<Float>,
                                 matrixSize: Int, in context: EngineContext) {
        let panelRows = Int(SEG_WINOGRAD_PANEL_ROWS)
        precondition(weights.isPanelled && GEMM.panelRows == panelRows, "Winograd reads weights as whole panels of \(panelRows) rows")
        let panels = GEMM.panelled(weights.outChannels) / panelRows, depth = inputs.count
        precondition(matrixSize >= panels * panelRows * depth, "no room for the transformed filters")
        context.forEach(panels) { panel in
            seg_winograd_filters(weights.packed + panel * panelRows * weights.rowLength + inputs.lowerBound * panelRows,
                                 Int32(weights.inChannels), Int32(depth), u + panel * panelRows * depth, matrixSize)
        }
    }

    /// Where every tile starts, phase grid by phase grid, as four runs of `count` values: the row
    /// and column of its first output, then of its patch's first input (`padding` up and left).
    static func tileOrigins(outH: Int, outW: Int, dilation d: Int, padding p: Int) -> (origins: [Int32], count: Int) {
        var outputs: [(y: Int, x: Int)] = []
        for a in 0..<d {
            let rows = (outH - a + d - 1) / d  // outputs of this phase along y
            for b in 0..<d {
                let columns = (outW - b + d - 1) / d
                for i in 0..<(rows + 3) / 4 {
                    for j in 0..<(columns + 3) / 4 { outputs.append((a + d * 4 * i, b + d * 4 * j)) }
                }
            }
        }
        let origins = outputs.map { Int32($0.y) } + outputs.map { Int32($0.x) }
            + outputs.map { Int32($0.y - p) } + outputs.map { Int32($0.x - p) }
        return (origins, outputs.count)
    }

    /// The convolution, in blocks of input channels (`KernelChoices.winogradFilterBudget`) rather
    /// than of output channels: every product then has all the output channels as rows, and each
    /// tile and filter is transformed once. With blocks of output channels (104 of FCN's 512), the
    /// products made 104 rows per column and either the input or the filters were transformed again
    /// per block or chunk: FCN's head took 0.68x (360x480) and 0.78x (512x512) of that time this way.
    static func conv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry, _ output: Tensor,
                     activation: Activation) {
        let context = input.context
        let cin = weights.inChannels, cout = weights.outChannels, d = geometry.dilation
        let (origins, tiles) = tileOrigins(outH: output.height, outW: output.width, dilation: d, padding: geometry.padding)
        // Blocks of input channels and chunks of tiles, as even as the budgets allow (a narrow last
        // one makes thin products). Filters are transformed once per chunk when there are several
        // blocks (several chunks and blocks at once take both a deep layer and a large map).
        let rows = GEMM.panelled(cout)  // of each U_k and M_k
        let kernels = context.kernels
        let widestBlock = max(kernels.winogradMinimumBlock, kernels.winogradFilterBudget / (points * rows))
        let blocks = (cin + widestBlock - 1) / widestBlock
        let block = (cin + blocks - 1) / blocks
        let widestChunk = max(16, kernels.winogradTileBudget / (points * (block + rows)))
        let chunks = (tiles + widestChunk - 1) / widestChunk
        let chunk = (tiles + chunks - 1) / chunks
        let size = rows * block + matrixPadding  // floats from one transformed filter matrix to the next
        let cap = Epilogue(activation: activation).cap  // 0 where the kernel cannot fuse it
        let frameSize = (output.height + 5 * d) * (output.width + 5 * d)  // see seg_winograd_input
        let channelGroups = min(block, 4 * context.threads)
        origins.withUnsafeBufferPointer { origins in
            let (outY, outX, inY, inX) = (origins.baseAddress!, origins.baseAddress! + tiles,
                                          origins.baseAddress! + 2 * tiles, origins.baseAddress! + 3 * tiles)
            context.withScratch(points * size) { u in
                context.withScratch(points * (block * vectorRow(chunk) + matrixPadding)) { v in
                    context.withScratch(points * (rows * vectorRow(chunk) + matrixPadding)) { m in
                        for start in stride(from: 0, to: tiles, by: chunk) {
                            let count = min(chunk, tiles - start)
                            let row = vectorRow(count)
                            let mStride = rows * row + matrixPadding
                            for first in stride(from: 0, to: cin, by: block) {
                                let inputs = first..<min(cin, first + block)
                                let vStride = inputs.count * row + matrixPadding
                                if blocks > 1 || start == 0 {
                                    transformFilters(weights, inputs: inputs, into: u, matrixSize: size, in: context)
                                }
                                context.forEach(channelGroups) { group in  // each group frames its planes in turn
                                    context.withScratch(frameSize) { framed in
                                        for c in inputs.count * group / channelGroups..<inputs.count * (group + 1) / channelGroups {
                                            seg_winograd_input(input.planePointer(first + c), Int32(input.height),
                                                               Int32(input.width), Int32(d), inY + start, inX + start,
                                                               Int32(count), v + c * row, vStride, framed)
                                        }
                                    }
                                }
                                context.forEach(points) { k in
                                    // Every column of the rows, past the tiles too: M's padding then holds
                                    // finite values (the output transform computes on them, then drops them).
                                    GEMM.multiply(in: context, m: cout, n: row, k: inputs.count,
                                                  a: .panels(u + k * size, stride: GEMM.panelRows * inputs.count),
                                                  b: v + k * vStride, ldb: row, c: m + k * mStride, ldc: row,
                                                  accumulate: first > 0)
                                }
                            }
                            context.forEach(cout) { o in
                                seg_winograd_output(m + o * row, mStride, outY + start, outX + start, Int32(count), Int32(d),
                                                    output.planePointer(o), Int32(output.height), Int32(output.width),
                                                    weights.bias[o], cap)
                            }
                        }
                    }
                }
            }
        }
        if !Epilogue.fuses(activation) {  // the bias is already in
            context.forEach(cout) { activation.apply(output.planePointer($0), count: output.plane, bias: 0) }
        }
    }
}
