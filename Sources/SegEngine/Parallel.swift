import BLASShim
import Dispatch
import Foundation
import Synchronization

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

    /// Calls `body(i)` for every `i` in `0..<count`, in order, each thread taking the next index
    /// when it is done with one: a core the host slows down (this machine's cores run at times
    /// 1.5x apart) then does less of the work instead of holding the others up at the end.
    /// Bodies must write disjoint memory.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= count { break }
                body(i)
            }
        }
    }
}
