import Foundation
import GEMMKernel
import VectorKernels

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
/// then skipped by leaving their block out of the matrix product. Without groups, the matrix is
/// stored as the matrix kernel's panels (`seg_gemm_pack_panels`), so no product repacks it.
public final class ConvWeights: @unchecked Sendable {
    public let outChannels: Int
    public let inChannels: Int
    public let kernelH: Int
    public let kernelW: Int
    public let groups: Int
    public let bias: [Float]
    /// The tap-major matrix: panels when `isPanelled`, one row per output channel otherwise.
    let packed: UnsafeMutablePointer<Float>
    private let packedCount: Int

    var taps: Int { kernelH * kernelW }
    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    public var isDepthwise: Bool { groups == inChannels && groups == outChannels }
    /// A single-channel conv is also depthwise, whose kernel reads rows.
    var isPanelled: Bool { groups == 1 && !isDepthwise }
    /// Columns of the matrix: taps x input channels of a group.
    var rowLength: Int { taps * inPerGroup }
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

        var rows = [Float](repeating: 0, count: outChannels * perOut)
        let cin = inChannels / groups, taps = kernelH * kernelW
        for o in 0..<outChannels {
            for i in 0..<cin {
                for t in 0..<taps {
                    rows[o * perOut + t * cin + i] = weights[o * perOut + i * taps + t] * scale[o]
                }
            }
        }
        let panelled = groups == 1 && !(groups == inChannels && groups == outChannels)  // isPanelled, before self is
        packedCount = panelled ? GEMM.panelled(outChannels) * perOut : rows.count
        packed = HugePages.allocate(byteCount: packedCount * 4).bindMemory(to: Float.self, capacity: packedCount)
        if panelled {
            seg_gemm_pack_panels(Int32(outChannels), Int32(perOut), rows, perOut, packed)
        } else {
            packed.update(from: rows, count: rows.count)
        }
    }

    /// Output channels `rows` (a whole group's share when grouped; starting at a multiple of the
    /// panel rows when panelled) from column `column` on, as a product's weight operand.
    func operand(rows: Range<Int>, column: Int) -> GEMM.Operand {
        guard isPanelled else { return .rows(packed + rows.lowerBound * rowLength + column, ld: rowLength) }
        precondition(rows.lowerBound % GEMM.panelRows == 0, "panelled weights split at a panel boundary")
        return .panels(packed + rows.lowerBound * rowLength + column * GEMM.panelRows, stride: GEMM.panelRows * rowLength)
    }

    /// Output channel `o`'s weights as the product sees them: tap-major, BatchNorm folded in.
    func matrixRow(_ o: Int) -> [Float] {
        guard isPanelled else { return Array(UnsafeBufferPointer(start: packed + o * rowLength, count: rowLength)) }
        let stride = GEMM.panelRows * rowLength
        return (0..<rowLength).map { packed[GEMM.panelIndex(row: o, column: $0, stride: stride)] }
    }

    deinit { HugePages.deallocate(packed, byteCount: packedCount * 4) }
}

/// The scratch of a convolution's intermediate columns (the transposed convolution's, Winograd's
/// tiles) is bounded in units of this, 8M floats (32 MB), whatever the layer's size.
let columnTileBudget = 8 << 20

/// A thread's tile of the unfolded input (im2col) holds about this many floats (1 MB), so that it
/// is still in L2 when the matrix kernel packs it.
let unfoldBudget = 256 << 10

/// 2-D convolution with bias and activation fused: `activation(conv(input) + bias + residual)`.
///
/// Threads split the output positions into tiles; each tile is unfolded, multiplied (a
/// single-threaded product) and finished (bias, activation) by one thread while it is warm.
/// `residual` (the shortcut of a residual block, the output's shape) is added before the
/// activation: inside the product's epilogue for pointwise convolutions, in one pass otherwise.
public func conv2d(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry = ConvGeometry(),
                   activation: Activation = .identity, adding residual: Tensor? = nil) -> Tensor {
    let context = input.context
    let output = convOutput(input, inChannels: weights.inChannels, outChannels: weights.outChannels,
                            kernel: (weights.kernelH, weights.kernelW), geometry, residual)
    let (flop, inBounds) = countWork(input, kernel: (weights.kernelH, weights.kernelW),
                                     outChannels: weights.outChannels, inPerGroup: weights.inPerGroup, geometry, output)
    // Paths other than the pointwise one finish without the residual, which is then added in one pass.
    let layerActivation = residual == nil ? activation : .identity
    // Winograd where it needs fewer multiplies than the taps that read inside the input, with room
    // for its transforms (large dilations on small maps, ASPP's, are mostly padding: tapwise does
    // only the in-bounds work). Tapwise also beats im2col's unfolded copy on the rest.
    let kernels = context.kernels
    let winograd = Winograd.applies(weights, geometry, kernels)
        && Winograd.multiplyShare(outH: output.height, outW: output.width, dilation: geometry.dilation)
            < kernels.winogradAdvantage * inBounds
    let tapwiseApplies = kernels.tapwise && weights.groups == 1 && weights.taps > 1 && geometry.stride == 1
        && weights.inChannels >= 32

    // For `segview bench --profile --by-shape`: which layer this is.
    func shape() -> String { layerShape(input, weights.inChannels, weights.outChannels, geometry) }
    if weights.isDepthwise {
        context.measure("conv \(weights.kernelH)x\(weights.kernelW) depthwise", shape: shape(), flop: flop) {
            depthwiseConv(input, weights, geometry, output, layerActivation)
        }
    } else if weights.taps == 1 && geometry.stride == 1 && weights.groups == 1 && (geometry.padding == 0 || residual == nil) {
        context.measure("conv 1x1", shape: shape(), flop: flop) {
            if geometry.padding == 0 {
                pointwiseConv(input, weights, output, activation, residual)
            } else {
                paddedPointwiseConv(input, weights, geometry.padding, output, activation)
            }
        }
        return output
    } else if tapwiseApplies && !winograd {
        context.measure("conv \(weights.kernelH)x\(weights.kernelW) tapwise", shape: shape(), flop: flop) {
            tapwiseConv(input, weights, geometry, output, layerActivation)
        }
    } else if winograd {
        context.measure("conv 3x3 winograd", shape: shape(), flop: flop) {
            Winograd.conv(input, weights, geometry, output, activation: layerActivation)
        }
    } else {
        context.measure("conv \(weights.kernelH)x\(weights.kernelW) im2col", shape: shape(), flop: flop) {
            for group in 0..<weights.groups {
                unfoldedConv(input, weights, geometry, output, group: group, activation: layerActivation)
            }
        }
    }
    if let residual { addInPlace(output, residual, activation: activation) }
    return output
}

/// The (uninitialised) output of a convolution of `input`, its shapes and the residual's checked.
func convOutput(_ input: Tensor, inChannels: Int, outChannels: Int, kernel: (height: Int, width: Int),
                _ geometry: ConvGeometry, _ residual: Tensor?) -> Tensor {
    precondition(input.channels == inChannels, "conv expects \(inChannels) input channels, got \(input.channels)")
    let outH = geometry.outputSize(input.height, kernel: kernel.height)
    let outW = geometry.outputSize(input.width, kernel: kernel.width)
    precondition(outH > 0 && outW > 0, "convolution output would be empty for input \(input.height)x\(input.width)")
    let output = Tensor(channels: outChannels, height: outH, width: outW, in: input.context)
    if let residual {
        precondition(residual.shape == output.shape, "residual \(residual.shape) is not the output's \(output.shape)")
        precondition(residual.context === input.context, "the residual belongs to another context")
    }
    return output
}

/// A convolution's shape as `bench --profile --by-shape` names it: channels, input size, stride, dilation.
func layerShape(_ input: Tensor, _ inChannels: Int, _ outChannels: Int, _ geometry: ConvGeometry) -> String {
    "\(inChannels)->\(outChannels) \(input.height)x\(input.width)"
        + (geometry.stride > 1 ? " s\(geometry.stride)" : "") + (geometry.dilation > 1 ? " d\(geometry.dilation)" : "")
}

/// Tallies the multiply-adds of a convolution with `kernel` taps, `outChannels` and `inPerGroup`,
/// including how many taps read inside the input (the rest read padding); returns its FLOP and the
/// share of its taps that read inside the input.
func countWork(_ input: Tensor, kernel: (height: Int, width: Int), outChannels: Int, inPerGroup: Int,
               _ geometry: ConvGeometry, _ output: Tensor) -> (flop: Double, inBounds: Double) {
    let rows = (0..<kernel.height).map {
        geometry.validOutputs(tap: $0, input: input.height, output: output.height).count
    }
    let cols = (0..<kernel.width).map { geometry.validOutputs(tap: $0, input: input.width, output: output.width).count }
    let inBounds = Double(rows.reduce(0, +)) * Double(cols.reduce(0, +))
    let taps = kernel.height * kernel.width
    let flop = input.context.counters.addConvolution(outChannels: outChannels, inPerGroup: inPerGroup,
                                                     outputPlane: output.plane, taps: taps, tapsInBounds: inBounds)
    return (flop, inBounds / (Double(taps) * Double(output.plane)))
}

/// One matrix product per kernel tap over just the outputs whose input for that tap lies inside
/// the image, accumulated into the output: the work is the in-bounds work, however much padding
/// the window would otherwise read. Stride 1: the product reads the tap's window of the input and
/// writes the window of the output in place. The output goes in bands of rows (`accumulateInBands`).
private func tapwiseConv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry, _ output: Tensor,
                         _ activation: Activation) {
    let context = input.context
    let cin = weights.inChannels
    let taps = TapWindow.reaching(kernelH: weights.kernelH, kernelW: weights.kernelW, geometry, input, output)
    accumulateInBands(output, bias: weights.bias, activation) { channels, band in
        for tap in taps {
            let part = band.clamped(to: tap.rows)
            guard !part.isEmpty else { continue }
            GEMM.multiply(in: context, m: channels.count, n: part.count * tap.cols.count, k: cin,
                          a: weights.operand(rows: channels, column: tap.index * cin),
                          b: input.data + tap.inputOffset(row: part.lowerBound, input), ldb: input.plane,
                          c: output.planePointer(channels.lowerBound) + tap.outputOffset(row: part.lowerBound, output),
                          ldc: output.plane, window: tap.window(input, output), accumulate: true)
        }
    }
}

/// A tap of a stride-1 convolution and the window of outputs it reaches: output (y, x) reads the
/// input at (y + offsetY, x + offsetX) for the rows and columns listed.
struct TapWindow {
    let index: Int
    let rows: Range<Int>
    let cols: Range<Int>
    let offsetY: Int
    let offsetX: Int

    /// The taps that reach at least one output.
    static func reaching(kernelH: Int, kernelW: Int, _ geometry: ConvGeometry, _ input: Tensor,
                         _ output: Tensor) -> [TapWindow] {
        (0..<kernelH * kernelW).compactMap { tap in
            let ky = tap / kernelW, kx = tap % kernelW
            let rows = geometry.validOutputs(tap: ky, input: input.height, output: output.height)
            let cols = geometry.validOutputs(tap: kx, input: input.width, output: output.width)
            guard !rows.isEmpty && !cols.isEmpty else { return nil }
            return TapWindow(index: tap, rows: rows, cols: cols, offsetY: ky * geometry.dilation - geometry.padding,
                             offsetX: kx * geometry.dilation - geometry.padding)
        }
    }

    /// Where the window's first column of output row `row` reads, in an input plane.
    func inputOffset(row: Int, _ input: Tensor) -> Int { (row + offsetY) * input.width + cols.lowerBound + offsetX }

    /// Where the window's first column of output row `row` lies, in an output plane.
    func outputOffset(row: Int, _ output: Tensor) -> Int { row * output.width + cols.lowerBound }

    /// The window's columns as a product's columns: rows of `cols.count` in the input and the output.
    func window(_ input: Tensor, _ output: Tensor) -> Window {
        Window(width: cols.count, inputRow: input.width, outputRow: output.width)
    }
}

/// Zeroes `output` and runs `accumulate` over it in bands of about 512 outputs, a thread per band,
/// each band then given its channel's bias and `activation`: a band of every channel stays in L2
/// while all the taps add to it (tap by tap over the whole output, each of ASPP's 54 passes over it
/// went to L3). On maps too small for two bands a thread, threads share the output channels
/// (whole panels) instead, so each product stays wide.
func accumulateInBands(_ output: Tensor, bias: [Float], _ activation: Activation,
                       _ accumulate: (_ channels: Range<Int>, _ rows: Range<Int>) -> Void) {
    let context = output.context, cout = output.channels, outH = output.height, outW = output.width
    func band(_ channels: Range<Int>, _ rows: Range<Int>) {
        let start = rows.lowerBound * outW, count = rows.count * outW
        for c in channels { (output.planePointer(c) + start).update(repeating: 0, count: count) }
        accumulate(channels, rows)
        for c in channels { activation.apply(output.planePointer(c) + start, count: count, bias: bias[c]) }
    }
    let bandRows = max(1, 512 / outW), bands = (outH + bandRows - 1) / bandRows
    let panelRows = GEMM.panelRows
    if bands >= 2 * context.threads || cout < 2 * panelRows * context.threads {
        context.forEach(bands) { index in band(0..<cout, index * bandRows..<min(outH, (index + 1) * bandRows)) }
    } else {
        let panels = (cout + panelRows - 1) / panelRows
        context.forEach(context.threads) { worker in
            let channels = min(cout, panels * worker / context.threads * panelRows)
                ..< min(cout, panels * (worker + 1) / context.threads * panelRows)
            if !channels.isEmpty { band(channels, 0..<outH) }
        }
    }
}

/// Adds the bias (when given) and applies the activation to output positions `start..<start+count` of channels `channels`.
@inline(__always)
func finish(_ output: Tensor, channels: Range<Int>, start: Int, count: Int, bias: [Float]?, _ activation: Activation) {
    for c in channels { activation.apply(output.planePointer(c) + start, count: count, bias: bias?[c] ?? 0) }
}

/// Splits `positions` into tiles of at most `limit` (at least one `granule`), as many as a multiple
/// of the threads (or one per granule where there are fewer), each a whole number of granules but
/// the last and the granules shared out evenly, so that equal threads finish together. (Rounding
/// each tile up to whole granules instead made a 32x32 map 288 + 288 + 288 + 160 columns: one
/// thread did 576 of 1024.)
func tiles(_ positions: Int, limit: Int, granule: Int, threads: Int) -> [(start: Int, count: Int)] {
    let granules = (positions + granule - 1) / granule, perTile = max(1, limit / granule)
    let wanted = min(granules, ((granules + perTile - 1) / perTile + threads - 1) / threads * threads)
    return (0..<wanted).map { tile in
        let start = granules * tile / wanted * granule
        return (start, min(positions, granules * (tile + 1) / wanted * granule) - start)
    }
}

/// A pointwise convolution is a plain matrix product over the input planes: no copy of the input.
/// Small maps (global-pooled features) split output channels between threads instead of positions.
/// Bias, residual and a ReLU(6) are the product's epilogue; other activations follow per tile.
private func pointwiseConv(_ input: Tensor, _ weights: ConvWeights, _ output: Tensor, _ activation: Activation,
                           _ residual: Tensor?) {
    let context = input.context
    let cin = weights.inChannels, cout = weights.outChannels, plane = input.plane
    let fused = Epilogue.fuses(activation)
    let residualData = residual.map { UnsafePointer($0.data) }
    weights.bias.withUnsafeBufferPointer { bias in
        func product(channels: Range<Int>, start: Int, count: Int) {
            let offset = channels.lowerBound * plane + start
            GEMM.multiply(in: context, m: channels.count, n: count, k: cin, a: weights.operand(rows: channels, column: 0),
                          b: input.data + start, ldb: plane, c: output.data + offset, ldc: plane,
                          epilogue: Epilogue(bias: bias.baseAddress! + channels.lowerBound,
                                             addend: residualData.map { $0 + offset }, activation: fused ? activation : .identity))
            if !fused { finish(output, channels: channels, start: start, count: count, bias: nil, activation) }
        }
        if plane < 64 * context.threads {
            let chunk = GEMM.panelled((cout + context.threads - 1) / context.threads)
            context.forEach(context.threads) { worker in
                let first = worker * chunk, last = min(cout, first + chunk)
                if first < last { product(channels: first..<last, start: 0, count: plane) }
            }
            return
        }
        // Tiles of one column block of the product each: no more packing or passes over the
        // weights than one tile per thread, and a thread the host slows down takes fewer of them
        // (with a tile per thread, the other one waited for it at the end of every layer).
        // OpenBLAS packs the whole weight matrix on every call: four blocks a tile halve that.
        // Whole vectors rather than slivers: a 32x32 map goes as four tiles of 256 columns.
        let limit = context.kernels.ownGEMM ? GEMM.blockColumns : 4 * GEMM.blockColumns
        let work = tiles(plane, limit: limit, granule: GEMM.vectorColumns, threads: context.threads)
        context.forEach(work.count) { index in product(channels: 0..<cout, start: work[index].start, count: work[index].count) }
    }
}

/// A pointwise convolution of the input zero-padded by `padding` on every side, without the padded
/// copy: the products write the interior of the output in place (a window of its planes), and the
/// border, where the convolution reads only padding, is the activation of the bias. (MobileNetV2's
/// inverted residuals pad before their expansion; the copies were 5 % of a DeepLabV3+ MobileNetV2
/// pass.) Threads take tiles of whole input rows, as a window's columns start at a row.
private func paddedPointwiseConv(_ input: Tensor, _ weights: ConvWeights, _ padding: Int, _ output: Tensor,
                                 _ activation: Activation) {
    let context = input.context
    let (height, width, outW) = (input.height, input.width, output.width)
    let fused = Epilogue.fuses(activation)
    context.forEach(weights.outChannels) { o in
        var border = Float(0)
        if fused { activation.apply(&border, count: 1, bias: weights.bias[o]) } else { border = weights.bias[o] }
        let plane = output.planePointer(o)
        plane.update(repeating: border, count: padding * outW)
        (plane + (height + padding) * outW).update(repeating: border, count: padding * outW)
        for y in padding..<height + padding {
            (plane + y * outW).update(repeating: border, count: padding)
            (plane + y * outW + padding + width).update(repeating: border, count: padding)
        }
    }
    let work = tiles(height, limit: max(1, GEMM.blockColumns / width), granule: 1, threads: context.threads)
    weights.bias.withUnsafeBufferPointer { bias in
        context.forEach(work.count) { index in
            let (firstRow, rows) = work[index]
            GEMM.multiply(in: context, m: weights.outChannels, n: rows * width, k: weights.inChannels,
                          a: weights.operand(rows: 0..<weights.outChannels, column: 0), b: input.data + firstRow * width,
                          ldb: input.plane, c: output.data + (firstRow + padding) * outW + padding, ldc: output.plane,
                          window: Window(width: width, inputRow: width, outputRow: outW),
                          epilogue: Epilogue(bias: bias.baseAddress!, activation: fused ? activation : .identity))
        }
    }
    if !fused { context.forEach(weights.outChannels) { activation.apply(output.planePointer($0), count: output.plane, bias: 0) } }
}

/// im2col + GEMM for one group, tile by tile over output positions, skipping dead taps.
private func unfoldedConv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry,
                          _ output: Tensor, group: Int, activation: Activation) {
    let context = input.context
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
    // Each thread unfolds a tile of output positions into its own scratch and multiplies it while
    // it sits in L2 (one tile of the whole map unfolded by all threads went through memory: the
    // ResNet stem's is 25 MB at 360x480, and took 2.6x ONNX Runtime's time). Tiles stay at least
    // ten slivers wide where the map allows, so that deep windows (3x3 on 512 channels, strided)
    // still make wide products.
    let limit = max(10 * GEMM.sliverColumns, unfoldBudget / rows)
    let work = tiles(output.plane, limit: limit, granule: GEMM.vectorColumns, threads: context.threads)
    let inputBase = input.data + group * cin * input.plane
    let outputBase = output.data + channels.lowerBound * output.plane
    context.forEach(work.count) { index in
        let (start, count) = work[index]
        context.withScratch(rows * count) { columns in
            for row in 0..<rows {
                let tap = activeTaps[row / cin], channel = row % cin
                let tapY = tap / weights.kernelW, tapX = tap % weights.kernelW
                let validY = rowRanges[tapY], validX = colRanges[tapX]
                seg_im2col_row(columns + row * count, inputBase + channel * input.plane, Int32(input.width), Int32(outW),
                               Int32(tapY * geometry.dilation - geometry.padding), Int32(tapX * geometry.dilation - geometry.padding),
                               Int32(geometry.stride), Int32(validY.lowerBound), Int32(validY.upperBound),
                               Int32(validX.lowerBound), Int32(validX.upperBound), start, count, 0)
            }
            var columnRow = 0
            weights.bias.withUnsafeBufferPointer { bias in
                for (runIndex, run) in runs.enumerated() {
                    // The last product finishes the layer: bias and activation in its epilogue.
                    let epilogue = runIndex < runs.count - 1 ? Epilogue.none
                        : Epilogue(bias: bias.baseAddress! + channels.lowerBound,
                                   activation: Epilogue.fuses(activation) ? activation : .identity)
                    GEMM.multiply(in: context, m: cout, n: count, k: run.count * cin,
                                  a: weights.operand(rows: channels, column: run.first * cin),
                                  b: columns + columnRow * count, ldb: count,
                                  c: outputBase + start, ldc: output.plane, accumulate: runIndex != 0,
                                  epilogue: epilogue)
                    columnRow += run.count * cin
                }
            }
            if !Epilogue.fuses(activation) {
                finish(output, channels: channels, start: start, count: count, bias: nil, activation)
            }
        }
    }
}

/// One filter per channel (MobileNet-style), channels split over threads: the C kernel finishes
/// each plane (bias and a ReLU(6)) while it sits in L2 (these layers are memory bound: a separate
/// pass would double the traffic); other activations follow on the same plane.
private func depthwiseConv(_ input: Tensor, _ weights: ConvWeights, _ geometry: ConvGeometry, _ output: Tensor,
                           _ activation: Activation) {
    let context = input.context
    let cap = Epilogue(activation: activation).cap  // 0 where the kernel cannot fuse it
    context.forEach(input.channels) { c in
        seg_depthwise_plane(input.planePointer(c), Int32(input.height), Int32(input.width), output.planePointer(c),
                            Int32(output.height), Int32(output.width), weights.packed + c * weights.taps,
                            Int32(weights.kernelH), Int32(weights.kernelW), Int32(geometry.stride),
                            Int32(geometry.padding), Int32(geometry.dilation), weights.bias[c], cap)
        if !Epilogue.fuses(activation) { activation.apply(output.planePointer(c), count: output.plane, bias: 0) }
    }
}
