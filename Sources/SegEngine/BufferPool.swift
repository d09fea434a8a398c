import Foundation

/// Recycles float buffers between layers, so a forward pass allocates each activation size once.
///
/// Every `Tensor` and every scratch area (im2col columns) comes from here and goes back when it is
/// released. The pool counts the bytes it has handed out, which gives the peak activation memory
/// of a forward pass without any instrumentation in the models.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var bytesInUse = 0
    private var bytesFree = 0
    private var peakInUse = 0

    /// A buffer of exactly `count` floats, uninitialised.
    public func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let size = max(count, 1)
        lock.lock()
        defer { lock.unlock() }
        bytesInUse += size * 4
        peakInUse = max(peakInUse, bytesInUse)
        if var list = free[size], let buffer = list.popLast() {
            free[size] = list
            bytesFree -= size * 4
            return buffer
        }
        return UnsafeMutablePointer<Float>.allocate(capacity: size)
    }

    public func recycle(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        let size = max(count, 1)
        lock.lock()
        defer { lock.unlock() }
        bytesInUse -= size * 4
        bytesFree += size * 4
        free[size, default: []].append(buffer)
    }

    /// Returns every idle buffer to the system (after a forward pass, or when switching models).
    public func trim() {
        lock.lock()
        defer { lock.unlock() }
        for list in free.values { list.forEach { $0.deallocate() } }
        free.removeAll()
        bytesFree = 0
        // glibc keeps freed heap pages (its mmap threshold grows with the large buffers freed
        // above) unless asked to return them.
        _ = malloc_trim(0)
    }

    /// Bytes handed out and not yet returned.
    public var liveBytes: Int { lock.lock(); defer { lock.unlock() }; return bytesInUse }

    /// The most bytes handed out at once since the last `resetPeak()`.
    public var peakBytes: Int { lock.lock(); defer { lock.unlock() }; return peakInUse }

    public func resetPeak() {
        lock.lock()
        defer { lock.unlock() }
        peakInUse = bytesInUse
    }
}

/// glibc's `malloc_trim` (malloc.h, which Swift's Glibc module does not include).
@_silgen_name("malloc_trim")
private func malloc_trim(_ pad: Int) -> Int32

/// A scratch area from the pool that lives for one scope.
@inline(__always)
func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
    let buffer = BufferPool.shared.take(count)
    defer { BufferPool.shared.recycle(buffer, count: count) }
    return try body(buffer)
}
