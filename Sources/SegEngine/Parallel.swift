import BLASShim
import Dispatch
import Foundation

/// The engine's threads. Kernels split their work with `Parallel.forEach`; OpenBLAS itself runs
/// single-threaded inside those workers, because its own threads busy-wait between calls and
/// would take the cores from every kernel that is not a matrix product.
public enum Parallel {
    nonisolated(unsafe) public private(set) static var threads = configure(0)
    /// OpenBLAS's kernel family in use ("SkylakeX", "Haswell", ...).
    nonisolated(unsafe) public private(set) static var blasCore = ""

    private static func configure(_ count: Int) -> Int {
        blasCore = String(cString: seg_blas_configure(1))
        return count > 0 ? count : max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    public static func setThreads(_ count: Int) {
        threads = configure(max(1, count))
    }

    /// Calls `body(i)` for every `i` in `0..<count`, split into one contiguous chunk per thread.
    /// Bodies must write disjoint memory.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = count * worker / workers
            let end = count * (worker + 1) / workers
            for i in start..<end { body(i) }
        }
    }
}
