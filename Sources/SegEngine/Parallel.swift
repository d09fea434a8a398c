import Dispatch
import Foundation
import Synchronization

/// A parallel loop with no state of its own, on GCD's threads: the viewer's, with the cores it
/// draws on. (The engine's loops run on its context's `WorkerPool`.)
public enum Parallel {
    /// The cores this process may run on.
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body(i)` for every `i` in `0..<count`, in order, on up to `threads` threads, each taking
    /// the next index when it is done with one: a core the host slows down (this machine's cores run
    /// at times 1.5x apart) then does less of the work instead of holding the others up at the end.
    /// Bodies must write disjoint memory.
    public static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
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
