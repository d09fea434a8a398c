import Dispatch
import Foundation
import Synchronization

/// The threads of a context's parallel loops: the calling thread and `threads - 1` helpers that
/// live as long as the pool. A loop hands out its indices one at a time, each thread taking the
/// next when it is done with one (a core the host slows down does less of the loop). Between loops
/// the helpers stay awake for `awakeNanoseconds`, yielding the core to anything else that wants it,
/// before they sleep: a loop that follows another starts on every thread at once. With GCD's
/// `concurrentPerform` the second thread joined each loop 25-40 us late, and a pass runs hundreds.
final class WorkerPool: @unchecked Sendable {
    let threads: Int
    /// Held by the helpers too: gone when they are.
    let shared = SharedLoop()
    /// Whether a loop is running: one started inside it (or beside it, from another thread) runs
    /// on its caller alone.
    private let busy = Atomic<Bool>(false)

    /// How long an idle helper watches for the next loop before it sleeps.
    static let awakeNanoseconds: UInt64 = 1_000_000

    init(threads: Int) {
        self.threads = max(1, threads)
        for _ in 1..<self.threads {
            Thread { [shared] in
                Thread.current.name = "segview engine"  // in top -H, gdb and /proc
                shared.serve()
            }.start()
        }
    }

    deinit { shared.dismiss() }

    /// Calls `body(i)` for every `i` in `0..<count` on the pool's threads and returns when all are
    /// done. Bodies must write disjoint memory.
    func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count > Ticket.maximumCount {  // more indices than a ticket counts: loops of as many as it does
            for start in stride(from: 0, to: count, by: Ticket.maximumCount) {
                forEach(min(Ticket.maximumCount, count - start)) { body(start + $0) }
            }
            return
        }
        guard threads > 1 && count > 1,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { shared.run(count, $0) }
        busy.store(false, ordering: .releasing)
    }
}

/// A loop's number (modulo 2^19), its length and its next index in one word: threads claim an
/// index by advancing the word from the value they read, so a claim succeeds only while the word is
/// still the one read, and then names an unclaimed index of the loop running.
struct Ticket {
    static let indexBits = 22, countBits = 22, loopBits = 19
    static let maximumCount = 1 << countBits - 1

    let word: Int

    init(word: Int) { self.word = word }

    init(loop: Int, count: Int) {
        word = (loop & (1 << Self.loopBits - 1)) << (Self.indexBits + Self.countBits) | count << Self.indexBits
    }

    var loop: Int { word >> (Self.indexBits + Self.countBits) }
    var count: Int { word >> Self.indexBits & Self.maximumCount }
    var index: Int { word & (1 << Self.indexBits - 1) }
}

/// The loop a pool's threads share, and the helpers' sleep; the helpers keep it alive.
final class SharedLoop: @unchecked Sendable {
    private let ticket = Atomic<Int>(Ticket(loop: 0, count: 0).word)
    private let done = Atomic<Int>(0)
    private let body = UnsafeMutablePointer<((Int) -> Void)?>.allocate(capacity: 1)
    private let sleepers = Atomic<Int>(0)
    private let dismissed = Atomic<Bool>(false)
    private let wakeUp = NSCondition()
    /// The number of the last loop run (the caller's alone; helpers read numbers from the ticket).
    private var loop = 0

    init() { body.initialize(to: nil) }

    deinit { body.deinitialize(count: 1).deallocate() }

    private func currentLoop() -> Int { Ticket(word: ticket.load(ordering: .sequentiallyConsistent)).loop }

    /// Runs a loop on the caller and every helper. `body` and `done` change only between loops:
    /// when every claimed index is done, no thread reads them until it claims from the next ticket.
    func run(_ count: Int, _ body: @escaping (Int) -> Void) {
        self.body.pointee = body
        done.store(0, ordering: .relaxed)
        loop += 1
        let next = Ticket(loop: loop, count: count)
        // Sequentially consistent, as the sleepers count: either a helper going to sleep sees the
        // new loop, or this sees the sleeper and wakes it.
        ticket.store(next.word, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            wakeUp.lock()
            wakeUp.broadcast()
            wakeUp.unlock()
        }
        claimAndRun()
        while done.load(ordering: .acquiring) < count { sched_yield() }  // a helper finishes its index
        self.body.pointee = nil
    }

    /// Runs indices of the current loop until none is left.
    private func claimAndRun() {
        while true {
            let current = Ticket(word: ticket.load(ordering: .acquiring))
            guard current.index < current.count else { return }
            let claimed = ticket.compareExchange(expected: current.word, desired: current.word + 1,
                                                 ordering: .acquiring).exchanged
            if claimed {
                body.pointee!(current.index)
                done.add(1, ordering: .releasing)
            }
        }
    }

    /// A helper's life until dismissed: watch for a loop (awake, yielding the core), or sleep
    /// until one starts; take part in it.
    func serve() {
        var seen = 0
        while !dismissed.load(ordering: .relaxed) {
            let awakeUntil = DispatchTime.now().uptimeNanoseconds + WorkerPool.awakeNanoseconds
            var checks = 0
            while currentLoop() == seen {
                sched_yield()
                checks += 1
                if checks % 16 == 0 && DispatchTime.now().uptimeNanoseconds > awakeUntil { break }
            }
            if currentLoop() == seen {
                wakeUp.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while currentLoop() == seen && !dismissed.load(ordering: .relaxed) { wakeUp.wait() }
                sleepers.subtract(1, ordering: .relaxed)
                wakeUp.unlock()
            }
            seen = currentLoop()
            claimAndRun()
        }
    }

    func dismiss() {
        dismissed.store(true, ordering: .relaxed)
        wakeUp.lock()
        wakeUp.broadcast()
        wakeUp.unlock()
    }
}
