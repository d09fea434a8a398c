import BLASShim
import Dispatch
import Foundation
import GEMMKernel

/// Everything a forward pass runs with besides its weights: threads, the buffer pool its tensors
/// and scratch come from, the kernel choices, and what it tallies (work, and a profile when asked).
///
/// Every tensor belongs to a context (`Tensor.context`, as a PyTorch tensor has its device) and
/// every operation runs in its input's: handing a network an input tensor hands it the context.
/// A context serves one pass at a time; passes in different contexts may run at the same time.
public final class EngineContext: @unchecked Sendable {
    public let threads: Int
    public let kernels: KernelChoices
    public let pool = BufferPool()
    private let workers: WorkerPool
    /// Where the passes spend their time, when profiling (`segview bench --profile`).
    public let profile: Profile?
    /// What the layers report while a model is quantized (`segview quantize`); nil otherwise.
    public let calibration: Calibration?
    /// Multiply-adds of the convolutions run in this context.
    public let counters = Counters()
    /// Whether `watch` checks what layers produce: the pass that looks for where a model's scores
    /// went non-finite (a second pass, run only after the scores of the first were).
    public let watchesNumerics: Bool
    /// The first layer `watch` saw produce a NaN or an infinity.
    public private(set) var firstNonFinite: String?

    /// `threads` 0: one per core.
    public init(threads: Int = 0, kernels: KernelChoices = KernelChoices(), profile: Profile? = nil,
                watchesNumerics: Bool = false, calibration: Calibration? = nil) {
        _ = Self.blasCore  // OpenBLAS configured before any product
        self.threads = threads > 0 ? threads : Parallel.cores
        self.kernels = kernels
        self.profile = profile
        self.watchesNumerics = watchesNumerics
        self.calibration = calibration
        workers = WorkerPool(threads: self.threads)
    }

    /// `output`, noting `layer` as `firstNonFinite` if it is the first with a non-finite value
    /// (when watching numerics; one branch otherwise).
    @inline(__always)
    public func watch(_ output: Tensor, _ layer: @autoclosure () -> String) -> Tensor {
        if watchesNumerics && firstNonFinite == nil && !output.isFinite { firstNonFinite = layer() }
        return output
    }

    /// OpenBLAS's kernel family in use ("SkylakeX", "Haswell", ...). OpenBLAS runs single-threaded
    /// inside the engine's workers: its own threads busy-wait between calls and would take the cores
    /// from every kernel that is not a matrix product.
    public static let blasCore = String(cString: seg_blas_configure(1))

    /// A parallel loop on this context's threads (`WorkerPool.forEach`).
    @inline(__always)
    func forEach(_ count: Int, _ body: (Int) -> Void) { workers.forEach(count, body) }

    /// A scratch area from the pool that lives for one scope.
    @inline(__always)
    func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = pool.take(count)
        defer { pool.recycle(buffer, count: count) }
        return try body(buffer)
    }

    /// Runs `body`, adding its time to the profile when there is one (one branch otherwise). Kernels
    /// call it only from the thread that runs the network, never inside a parallel loop.
    @inline(__always)
    func measure<T>(_ kind: @autoclosure () -> String, shape: @autoclosure () -> String = "",
                    flop: @autoclosure () -> Double = 0, _ body: () -> T) -> T {
        guard let profile else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        profile.add(profile.byShape ? "\(kind()) \(shape())" : kind(), seconds: seconds, flop: flop())
        return result
    }
}

/// Which kernel a convolution or product goes to, and the budgets that bound their scratch. The
/// defaults are the fast choices; tests and A/B benchmarks turn paths off to compare them.
public struct KernelChoices: Sendable {
    /// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions where it pays off.
    public var winograd = true
    /// Winograd takes a 3x3 convolution where its multiplies (`Winograd.multiplyShare`) are below this
    /// share of the in-bounds taps' (tapwise's work): its products run less efficiently than
    /// tapwise's and it has transforms to do. ASPP's rate 12 took 12 % less time by Winograd at both
    /// 0.60 (45x60) and 0.73 (64x64) of tapwise's multiplies (deeplabv3_resnet50, 8 passes each way
    /// alternating in one process); the usual 3x3 layers are at 0.28-0.36.
    public var winogradAdvantage = 0.8
    /// Transformed Winograd filters of about this many floats at once (16 MB): deeper layers are done
    /// in blocks of input channels (FCN's 3x3 head on 2048 channels would need 151 MB in one go), at
    /// least `winogradMinimumBlock` deep. See `Winograd.conv` for why blocks of input channels.
    public var winogradFilterBudget = 4 << 20
    /// Input channels per Winograd block at the least, whatever the budget: shallower products ran
    /// slower (512-channel layers in blocks of 171 instead of 256: 6-18 % more time).
    public var winogradMinimumBlock = 256
    /// Transformed input and product tiles (V and M) of at most this many floats at once (32 MB):
    /// larger maps go in chunks of tiles.
    public var winogradTileBudget = columnTileBudget
    /// Stride-1 dense convolutions that Winograd does not take go tap by tap; off, to im2col (the
    /// tests' reference).
    public var tapwise = true
    /// The engine's AVX-512 matrix kernel where the CPU has it; off, OpenBLAS for every product.
    public var ownGEMM = seg_gemm_supported() != 0
    /// Plain products (no epilogue, no window) with fewer rows or a shallower depth than this
    /// (Winograd on narrow layers) go to OpenBLAS, whose small-matrix kernels were 1.1-2.5x faster
    /// there (8-64 rows or depth, one thread). With an epilogue the own kernel stays faster even
    /// when thin: such products (MobileNet's expansions: depth 16-32 on large maps) are bound by
    /// writing the result, which OpenBLAS would then read and write again for the epilogue.
    public var thinProduct = 64
    /// int8 products by AVX-512 VNNI where the CPU has it; off, by the portable kernel, which gives
    /// the same floats, slower (what runs int8 on a CPU without VNNI, for accuracy only).
    public var int8VNNI = Int8Kernels.available

    public init() {}
}

/// Time and work by kernel kind (or kind and layer shape), over the passes of one context.
public final class Profile: @unchecked Sendable {
    /// Tally convolutions by kind and shape (channels, input size, stride, dilation), not kind alone.
    public let byShape: Bool
    public private(set) var entries: [String: (calls: Int, seconds: Double, flop: Double)] = [:]

    public init(byShape: Bool = false) { self.byShape = byShape }

    public func reset() { entries = [:] }

    func add(_ key: String, seconds: Double, flop: Double) {
        let old = entries[key] ?? (0, 0, 0)
        entries[key] = (old.calls + 1, old.seconds + seconds, old.flop + flop)
    }
}

/// Work counted by the kernels, for `segview bench`: multiply-adds of convolutions, as
/// 2 x MACs ("FLOP"), over the full kernel window and over the taps that read inside the input.
public final class Counters: @unchecked Sendable {
    public private(set) var flop: Double = 0
    public private(set) var flopInBounds: Double = 0

    public func reset() {
        flop = 0
        flopInBounds = 0
    }

    /// Called once per convolution from the thread that launched it.
    @discardableResult
    func addConvolution(outChannels: Int, inPerGroup: Int, outputPlane: Int, taps: Int, tapsInBounds: Double) -> Double {
        let perTap = 2 * Double(outChannels) * Double(inPerGroup)
        let total = perTap * Double(taps) * Double(outputPlane)
        flop += total
        flopInBounds += perTap * tapsInBounds
        return total
    }
}
