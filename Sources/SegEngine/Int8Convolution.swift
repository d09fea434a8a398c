import GEMMKernel
import VectorKernels

/// How a layer's input maps to unsigned bytes: `x ≈ scale * (q - zeroPoint)`, q in 0...255. Zero
/// is always exact (q = zeroPoint), so zero padding stays zero; inputs after a ReLU have zero point 0.
public struct ActivationQuantization: Equatable, Sendable {
    public let scale: Float
    public let zeroPoint: Int

    /// The map whose 256 steps span `minimum...maximum`, widened to hold 0.
    public init(minimum: Float, maximum: Float) {
        let low = min(minimum, 0), high = max(maximum, 0)
        let scale = high > low && (high - low).isFinite ? (high - low) / 255 : 1
        self.init(scale: scale, zeroPoint: Int((-low / scale).rounded()))
    }

    public init(scale: Float, zeroPoint: Int) {
        precondition(scale > 0 && scale.isFinite && (0...255).contains(zeroPoint), "invalid quantization")
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// What `x` becomes after the round trip through a byte (for tests and calibration reports).
    public func roundTrip(_ x: Float) -> Float {
        let q = min(max((x / scale).rounded(.toNearestOrEven) + Float(zeroPoint), 0), 255)
        return scale * (q - Float(zeroPoint))
    }
}

/// Whether this CPU has the fast int8 kernel (AVX-512 VNNI); without, models run in float32 (the
/// portable int8 kernel gives the same floats, slower than float32: for measuring accuracy).
public enum Int8Kernels {
    public static let available = seg_int8_supported() != 0
}

/// A dense convolution's weights as signed bytes, one scale per output channel, with the scale of
/// the input it expects: `conv(x) ≈ inputScale * weightScale[o] * Σ w8 * (x8 - zeroPoint) + bias`.
/// Input channels go in quads (4 to a 32-bit element, the multiply instruction's unit), so the
/// depth of the product is taps x quads, a channel count not a multiple of 4 padded with zeros.
public final class Int8ConvWeights: @unchecked Sendable {
    public let outChannels: Int
    public let inChannels: Int
    public let kernelH: Int
    public let kernelW: Int
    public let input: ActivationQuantization
    public let weightScales: [Float]
    /// Quads of input channels: the product's depth per tap.
    let quadsPerTap: Int
    /// Panels of `GEMM.panelRows` rows, `panelStride` bytes apart (seg_int8_pack_panels).
    let panels: UnsafeMutablePointer<Int8>
    private let panelBytes: Int
    let panelStride: Int
    /// Per output channel: what one unit of the integer product is worth, and what is added to it
    /// (the bias, less the zero point's share of the product).
    let rowScale: [Float]
    let shift: [Float]
    let bias: [Float]
    /// Per tap, then output channel: the zero point's share of that tap's product, which the tapwise
    /// path adds only where the tap reads inside the input (padding adds nothing there); empty
    /// when the zero point is 0.
    let tapShifts: [Float]

    var taps: Int { kernelH * kernelW }

    /// Quantizes `weights` (a dense convolution, BatchNorm folded) with `weightScales`, one per output
    /// channel (`Int8ConvWeights.weightScales(of:)` where the file has none), for inputs mapped by `input`.
    public init(_ weights: ConvWeights, weightScales: [Float], input: ActivationQuantization) {
        precondition(weights.groups == 1 && !weights.isDepthwise, "int8 convolutions are dense")
        precondition(weightScales.count == weights.outChannels && weightScales.allSatisfy { $0 > 0 && $0.isFinite },
                     "one positive weight scale per output channel")
        outChannels = weights.outChannels
        inChannels = weights.inChannels
        kernelH = weights.kernelH
        kernelW = weights.kernelW
        self.input = input
        self.weightScales = weightScales
        let cin = weights.inChannels, quads = (cin + 3) / 4, taps = weights.taps
        quadsPerTap = quads
        let depth = taps * quads * 4
        var bytes = [Int8](repeating: 0, count: outChannels * depth)
        var tapSums = [Int](repeating: 0, count: taps * outChannels)
        for o in 0..<outChannels {
            let row = weights.matrixRow(o)
            for t in 0..<taps {
                for c in 0..<cin {
                    let q = Int(min(max((row[t * cin + c] / weightScales[o]).rounded(.toNearestOrEven), -127), 127))
                    bytes[o * depth + t * quads * 4 + c] = Int8(q)
                    tapSums[t * outChannels + o] += q
                }
            }
        }
        panelStride = GEMM.panelRows * depth
        panelBytes = GEMM.panelled(outChannels) * depth
        panels = HugePages.allocate(byteCount: panelBytes).bindMemory(to: Int8.self, capacity: panelBytes)
        seg_int8_pack_panels(Int32(outChannels), Int32(taps * quads), bytes, panels)
        let rowScale = weightScales.map { $0 * input.scale }
        self.rowScale = rowScale
        bias = weights.bias
        // Copies: the closures below cannot capture `self` before every property is set.
        let zeroPoint = input.zeroPoint, outChannels = outChannels
        tapShifts = zeroPoint == 0 ? [] : tapSums.indices.map {
            -rowScale[$0 % outChannels] * Float(zeroPoint * tapSums[$0])
        }
        shift = (0..<outChannels).map { o in
            let sum = (0..<taps).reduce(0) { $0 + tapSums[$1 * outChannels + o] }
            return weights.bias[o] - rowScale[o] * Float(zeroPoint * sum)
        }
    }

    /// Per output channel, the largest weight magnitude over 127: every weight lands in -127...127.
    public static func weightScales(of weights: ConvWeights) -> [Float] {
        (0..<weights.outChannels).map { o in
            let largest = weights.matrixRow(o).reduce(0) { max($0, abs($1)) }
            return largest > 0 && largest.isFinite ? largest / 127 : 1
        }
    }

    deinit { HugePages.deallocate(panels, byteCount: panelBytes) }
}

/// `activation(conv(input) + bias + residual)` with int8 products: the input is quantized once
/// into quads, then a pointwise stride-1 convolution multiplies the quads in place; other stride-1
/// convolutions go tap by tap as float32's tapwise path does, each tap's window of quads in place
/// (only the in-bounds work: ASPP's dilated taps on a small map read mostly padding); the rest as
/// float32's im2col path, each thread unfolding a tile of output positions (padding is the zero
/// point) and multiplying it while it is in L2. The products return floats, so the layers around
/// stay float32.
public func conv2d(_ input: Tensor, _ weights: Int8ConvWeights, _ geometry: ConvGeometry = ConvGeometry(),
                   activation: Activation = .identity, adding residual: Tensor? = nil) -> Tensor {
    let context = input.context
    let output = convOutput(input, inChannels: weights.inChannels, outChannels: weights.outChannels,
                            kernel: (weights.kernelH, weights.kernelW), geometry, residual)
    let (flop, inBounds) = countWork(input, kernel: (weights.kernelH, weights.kernelW),
                                     outChannels: weights.outChannels, inPerGroup: weights.inChannels, geometry, output)
    let shape = layerShape(input, weights.inChannels, weights.outChannels, geometry)
    // Tap by tap, the output band is read and written once a tap, over a depth of a quarter of the
    // channels; that costs more than im2col's multiplies of padding unless padding is a large share.
    let tapwise = context.kernels.tapwise && weights.taps > 1 && geometry.stride == 1 && inBounds < 0.8
    let kind = "conv \(weights.kernelH)x\(weights.kernelW) int8" + (tapwise ? " tapwise" : "")
    context.measure(kind, shape: shape, flop: flop) {
        let quads = weights.quadsPerTap
        context.withScratch(quads * input.plane) { scratch in
            scratch.withMemoryRebound(to: UInt32.self, capacity: quads * input.plane) { quantized in
                let inverse = 1 / weights.input.scale, zero = Int32(weights.input.zeroPoint)
                var nonFinite = [Int](repeating: 0, count: quads)
                nonFinite.withUnsafeMutableBufferPointer { counts in
                    context.forEach(quads) { q in
                        counts[q] = seg_int8_quantize_quads(input.data, Int32(input.channels), input.plane, inverse,
                                                            zero, quantized, q, 1)
                    }
                }
                if tapwise {
                    int8Tapwise(quantized, input, weights, geometry, output, residual == nil ? activation : .identity)
                } else {
                    int8Products(quantized, input, weights, geometry, output, activation, residual)
                }
                // A byte has no NaN: an input that had one makes the output NaN, as float32 would
                // where it reaches, so that the checks for non-finite scores still see it.
                if nonFinite.contains(where: { $0 > 0 }) { output.data.update(repeating: .nan, count: output.count) }
            }
        }
    }
    if tapwise, let residual { addInPlace(output, residual, activation: activation) }
    return output
}

/// A stride-1 convolution tap by tap, in bands of output rows (`accumulateInBands`): each tap
/// multiplies the window of quads it reads in place and adds to the band, then the band takes the bias.
private func int8Tapwise(_ quantized: UnsafeMutablePointer<UInt32>, _ input: Tensor, _ weights: Int8ConvWeights,
                         _ geometry: ConvGeometry, _ output: Tensor, _ activation: Activation) {
    let context = input.context
    let quads = weights.quadsPerTap, cout = weights.outChannels
    let gemm = context.kernels.int8VNNI ? seg_int8_gemm : seg_int8_gemm_portable
    let taps = TapWindow.reaching(kernelH: weights.kernelH, kernelW: weights.kernelW, geometry, input, output)
    accumulateInBands(output, bias: weights.bias, activation) { channels, band in
        precondition(channels.lowerBound % GEMM.panelRows == 0, "whole panels of output channels")
        let channelPanels = weights.panels + channels.lowerBound / GEMM.panelRows * weights.panelStride
        context.withScratch(seg_gemm_scratch_floats()) { scratch in
            weights.rowScale.withUnsafeBufferPointer { scale in
                weights.tapShifts.withUnsafeBufferPointer { tapShifts in
                    for tap in taps {
                        let part = band.clamped(to: tap.rows)
                        guard !part.isEmpty else { continue }
                        var window = tap.window(input, output).positions
                        let panels = channelPanels + tap.index * quads * GEMM.panelRows * 4
                        let tapShift = tap.index * cout + channels.lowerBound
                        let shift = tapShifts.isEmpty ? nil : tapShifts.baseAddress! + tapShift
                        gemm(Int32(channels.count), Int32(part.count * tap.cols.count), Int32(quads), panels,
                             weights.panelStride, quantized + tap.inputOffset(row: part.lowerBound, input), input.plane,
                             output.planePointer(channels.lowerBound) + tap.outputOffset(row: part.lowerBound, output),
                             output.plane, &window, 1, scale.baseAddress! + channels.lowerBound, shift, nil, 0, scratch)
                    }
                }
            }
        }
    }
}

/// The products of an int8 convolution over its quantized input, split between threads in tiles
/// of output positions and, where the map is too small for that, in runs of output channels.
private func int8Products(_ quantized: UnsafeMutablePointer<UInt32>, _ input: Tensor, _ weights: Int8ConvWeights,
                          _ geometry: ConvGeometry, _ output: Tensor, _ activation: Activation, _ residual: Tensor?) {
    let context = input.context
    let quads = weights.quadsPerTap, cout = weights.outChannels, plane = output.plane
    let pointwise = weights.taps == 1 && geometry.stride == 1 && geometry.padding == 0
    let depth = weights.taps * quads
    let fused = Epilogue.fuses(activation)
    let cap = Epilogue(activation: fused ? activation : .identity).cap
    let fill = UInt32(weights.input.zeroPoint) * 0x0101_0101
    let kernelW = weights.kernelW
    let gemm = context.kernels.int8VNNI ? seg_int8_gemm : seg_int8_gemm_portable
    let rowRanges = (0..<weights.kernelH).map {
        geometry.validOutputs(tap: $0, input: input.height, output: output.height)
    }
    let colRanges = (0..<kernelW).map { geometry.validOutputs(tap: $0, input: input.width, output: output.width) }

    func product(channels: Range<Int>, start: Int, count: Int, columns: UnsafePointer<UInt32>, ldb: Int) {
        let offset = channels.lowerBound * plane + start
        context.withScratch(seg_gemm_scratch_floats()) { scratch in
            weights.rowScale.withUnsafeBufferPointer { scale in
                weights.shift.withUnsafeBufferPointer { shift in
                    gemm(Int32(channels.count), Int32(count), Int32(depth),
                         weights.panels + channels.lowerBound / GEMM.panelRows * weights.panelStride,
                         weights.panelStride, columns, ldb, output.data + offset, plane, nil, 0,
                         scale.baseAddress! + channels.lowerBound, shift.baseAddress! + channels.lowerBound,
                         residual.map { UnsafePointer($0.data) + offset }, cap, scratch)
                }
            }
        }
        if !fused { finish(output, channels: channels, start: start, count: count, bias: nil, activation) }
    }
    func unfold(start: Int, count: Int, into columns: UnsafeMutablePointer<UInt32>) {
        for row in 0..<depth {
            let tap = row / quads, quad = row % quads
            let tapY = tap / kernelW, tapX = tap % kernelW
            let validY = rowRanges[tapY], validX = colRanges[tapX]
            seg_im2col_row(columns + row * count, quantized + quad * input.plane, Int32(input.width),
                           Int32(output.width), Int32(tapY * geometry.dilation - geometry.padding),
                           Int32(tapX * geometry.dilation - geometry.padding), Int32(geometry.stride),
                           Int32(validY.lowerBound), Int32(validY.upperBound), Int32(validX.lowerBound),
                           Int32(validX.upperBound), start, count, fill)
        }
    }
    func run(channels: Range<Int>, start: Int, count: Int) {
        if pointwise {
            product(channels: channels, start: start, count: count, columns: quantized + start, ldb: plane)
            return
        }
        context.withScratch(depth * count) { scratch in
            scratch.withMemoryRebound(to: UInt32.self, capacity: depth * count) { columns in
                unfold(start: start, count: count, into: columns)
                product(channels: channels, start: start, count: count, columns: columns, ldb: count)
            }
        }
    }
    if plane < 64 * context.threads {  // a small map: threads share the output channels, whole panels
        let chunk = GEMM.panelled((cout + context.threads - 1) / context.threads)
        context.forEach(context.threads) { worker in
            let first = worker * chunk, last = min(cout, first + chunk)
            if first < last { run(channels: first..<last, start: 0, count: plane) }
        }
        return
    }
    let limit = pointwise ? GEMM.blockColumns : max(10 * GEMM.sliverColumns, unfoldBudget / depth)
    let work = tiles(plane, limit: limit, granule: GEMM.vectorColumns, threads: context.threads)
    context.forEach(work.count) { index in run(channels: 0..<cout, start: work[index].start, count: work[index].count) }
}

/// What `segview quantize` learns from forward passes on sample images, layer by layer (layers
/// report to their context's calibration): the range of each layer's input, then, with int8
/// weights in place, how far each layer's int8 output strays from its float32 one.
public final class Calibration: @unchecked Sendable {
    public enum Stage: Sendable {
        /// Record the input ranges.
        case ranges
        /// Run every layer that has int8 weights both ways, record the error, pass the float32 output on.
        case errors
    }

    public let stage: Stage
    /// Per layer: the mean over calls of each call's smallest and largest input value (a mean, so
    /// that one image's outlier does not stretch the range for all the others).
    public private(set) var ranges: [String: (minimum: Double, maximum: Double, calls: Int)] = [:]
    /// Per layer: the squared difference between the int8 and float32 outputs, and the float32
    /// outputs' squares, summed over calls.
    public private(set) var errors: [String: (difference: Double, reference: Double)] = [:]

    public init(_ stage: Stage) { self.stage = stage }

    public func observe(_ layer: String, input: Tensor) {
        var low = Float.infinity, high = -Float.infinity
        for value in UnsafeBufferPointer(start: input.data, count: input.count) where value.isFinite {
            low = min(low, value)
            high = max(high, value)
        }
        guard low <= high else { return }
        let old = ranges[layer] ?? (0, 0, 0)
        ranges[layer] = (old.minimum + Double(low), old.maximum + Double(high), old.calls + 1)
    }

    /// The quantization of `layer`'s input, from the ranges seen.
    public func quantization(_ layer: String) -> ActivationQuantization? {
        guard let range = ranges[layer], range.calls > 0 else { return nil }
        return ActivationQuantization(minimum: Float(range.minimum / Double(range.calls)),
                                      maximum: Float(range.maximum / Double(range.calls)))
    }

    public func compare(_ layer: String, int8: Tensor, float32: Tensor) {
        var difference = 0.0, reference = 0.0
        for i in 0..<float32.count {
            let d = Double(int8.data[i] - float32.data[i])
            difference += d * d
            reference += Double(float32.data[i]) * Double(float32.data[i])
        }
        let old = errors[layer] ?? (0, 0)
        errors[layer] = (old.difference + difference, old.reference + reference)
    }

    /// The relative RMS error of `layer`'s int8 output over the calls compared.
    public func relativeError(_ layer: String) -> Double? {
        guard let error = errors[layer] else { return nil }
        return error.reference > 0 ? (error.difference / error.reference).squareRoot() : 0
    }
}
