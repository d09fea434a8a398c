import Foundation

/// Recycles float buffers between layers, so a forward pass allocates its activations once.
///
/// Every `Tensor` and every scratch area (im2col columns, Winograd tiles) comes from here and goes
/// back when it is released. A request takes the smallest idle buffer that holds it, if that is
/// at most `reuseFactor` times its size, so buffers serve layers of different shapes and what the
/// pool holds stays near the pass's live high-water mark (free lists by exact size held about 3x
/// it: every shape kept its own buffers). New buffers are rounded up to a size class, which makes
/// them fit more later requests. The pool counts the bytes requested, which gives the peak
/// activation memory of a forward pass without any instrumentation in the models: all of it
/// (tensors and the kernels' scratch), and the tensors' alone.
public final class BufferPool: @unchecked Sendable {
    public init() {}

    /// Every lent buffer is back by now: tensors keep their context, and with it the pool, alive.
    deinit { idle.forEach { HugePages.deallocate($0.buffer, byteCount: $0.capacity * 4) } }

    /// An idle buffer serves a request of at least 1/reuseFactor of its capacity.
    static let reuseFactor = 4

    /// Buffers start on a cache line. malloc's large blocks start 16 bytes past a page, so every
    /// vector a kernel loaded or stored along a plane straddled two lines.
    static let alignment = 64

    private let lock = NSLock()
    /// Idle buffers, smallest capacity (in floats) first.
    private var idle: [(capacity: Int, buffer: UnsafeMutablePointer<Float>)] = []
    /// The capacity of every buffer handed out.
    private var lent: [UnsafeMutablePointer<Float>: Int] = [:]
    private var bytesInUse = 0
    private var peakInUse = 0
    private var tensorBytesInUse = 0
    private var peakTensorsInUse = 0

    /// Sizes above 4096 floats are rounded up to a quarter of their power of two (at most 25 %).
    static func sizeClass(_ count: Int) -> Int {
        guard count > 4096 else { return count }
        let quarter = 1 << (Int.bitWidth - count.leadingZeroBitCount - 3)
        return (count + quarter - 1) / quarter * quarter
    }

    /// A buffer of at least `count` floats, uninitialised; `tensor` counts it as a tensor's (not scratch).
    public func take(_ count: Int, tensor: Bool = false) -> UnsafeMutablePointer<Float> {
        let size = max(count, 1)
        lock.lock()
        defer { lock.unlock() }
        bytesInUse += size * 4
        peakInUse = max(peakInUse, bytesInUse)
        if tensor {
            tensorBytesInUse += size * 4
            peakTensorsInUse = max(peakTensorsInUse, tensorBytesInUse)
        }
        if let index = idle.firstIndex(where: { $0.capacity >= size }), idle[index].capacity <= size * Self.reuseFactor {
            let (capacity, buffer) = idle.remove(at: index)
            lent[buffer] = capacity
            return buffer
        }
        let capacity = Self.sizeClass(size)
        let buffer = HugePages.allocate(byteCount: capacity * 4).bindMemory(to: Float.self, capacity: capacity)
        lent[buffer] = capacity
        return buffer
    }

    /// Gives back a buffer from `take`, which was asked for `count` floats (`tensor` as it was taken).
    public func recycle(_ buffer: UnsafeMutablePointer<Float>, count: Int, tensor: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        guard let capacity = lent.removeValue(forKey: buffer) else { preconditionFailure("buffer not from this pool") }
        bytesInUse -= max(count, 1) * 4
        if tensor { tensorBytesInUse -= max(count, 1) * 4 }
        let index = idle.firstIndex { $0.capacity >= capacity } ?? idle.count
        idle.insert((capacity, buffer), at: index)
    }

    /// Returns every idle buffer to the system (after a forward pass, or when switching models).
    public func trim() {
        lock.lock()
        defer { lock.unlock() }
        idle.forEach { HugePages.deallocate($0.buffer, byteCount: $0.capacity * 4) }
        idle.removeAll()
        // glibc keeps freed heap pages (its mmap threshold grows with the large buffers freed
        // above) unless asked to return them.
        _ = malloc_trim(0)
    }

    /// Bytes handed out and not yet returned.
    public var liveBytes: Int { lock.lock(); defer { lock.unlock() }; return bytesInUse }

    /// The most bytes handed out at once since the last `resetPeak()`.
    public var peakBytes: Int { lock.lock(); defer { lock.unlock() }; return peakInUse }

    /// The same for the tensors alone: the largest set of activations alive at once.
    public var peakTensorBytes: Int { lock.lock(); defer { lock.unlock() }; return peakTensorsInUse }

    public func resetPeak() {
        lock.lock()
        defer { lock.unlock() }
        peakInUse = bytesInUse
        peakTensorsInUse = tensorBytesInUse
    }
}

/// glibc's `malloc_trim` (malloc.h, which Swift's Glibc module does not include).
@_silgen_name("malloc_trim")
private func malloc_trim(_ pad: Int) -> Int32
