import Foundation

/// Large buffers on transparent huge pages (2 MB): the kernels read activations, scratch and
/// weights across many pages at once (each plane of a 32x32 map is a 4 KB page, so one tile of a
/// product touches hundreds), and with small pages each wants its own TLB entry. ResNet-101's and
/// Xception's DeepLabV3+ passes took about 4 % less time (docs/benchmarks.md).
///
/// A buffer of a huge page or more is a mapping of its own, so that marking it cannot reach memory
/// the allocator hands out later, and unmapping it gives it back whole.
enum HugePages {
    static let size = 2 << 20

    /// Memory for `byteCount` bytes, given back by `deallocate(_:byteCount:)`: from a huge page or
    /// more, a mapping that starts on a huge page, its whole huge pages marked for them (where the
    /// kernel's setting is "madvise", as here, only marked memory gets them); else the allocator's,
    /// on a cache line.
    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        guard byteCount >= size else { return .allocate(byteCount: byteCount, alignment: BufferPool.alignment) }
        // A huge page more than needed, then the ends outside the aligned range unmapped.
        let mapped = byteCount + size
        guard let region = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              region != MAP_FAILED else {
            fatalError("out of memory: cannot map \(byteCount) bytes")
        }
        let lead = (size - Int(bitPattern: UInt(bitPattern: region) % UInt(size))) % size
        let kept = (byteCount + pageSize - 1) / pageSize * pageSize
        if lead > 0 { munmap(region, lead) }
        munmap(region + lead + kept, mapped - lead - kept)
        let memory = region + lead
        _ = madvise(memory, byteCount / size * size, MADV_HUGEPAGE)  // whole huge pages only
        return memory
    }

    /// Gives back memory from `allocate(byteCount:)`, with the same count.
    static func deallocate(_ memory: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= size { munmap(memory, byteCount) } else { memory.deallocate() }
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
}
