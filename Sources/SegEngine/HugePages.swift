import Foundation

/// Large buffers on transparent huge pages (2 MB): the kernels read activations, scratch and
/// weights across many pages at once (each plane of a 32x32 map is a 4 KB page, so one tile of a
/// product touches hundreds), and with small pages each wants its own TLB entry. ResNet-101's and
/// Xception's DeepLabV3+ passes took 4-5 % less time (docs/benchmarks.md).
enum HugePages {
    static let size = 2 << 20

    /// Memory for `byteCount` bytes, freed by `deallocate()`: aligned to a huge page and marked for
    /// them where it spans one (Linux's "madvise" mode, the usual default, backs only marked memory
    /// with them), else aligned to a cache line.
    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        var memory: UnsafeMutableRawPointer?
        guard byteCount >= size, posix_memalign(&memory, size, byteCount) == 0, let memory else {
            return .allocate(byteCount: byteCount, alignment: BufferPool.alignment)
        }
        // Whole huge pages only: one that ran past the buffer's end would be resident in full.
        _ = madvise(memory, byteCount / size * size, MADV_HUGEPAGE)
        return memory
    }
}
