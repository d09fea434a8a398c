import Foundation
import Synchronization
import XCTest
@testable import SegEngine

/// The engine's own threads: every index of every loop runs once, loops inside loops and from two
/// threads at once run to the end, helpers take part, and they leave with their pool.
final class WorkerPoolTests: XCTestCase {
    /// Per-index run counts, written from any thread.
    final class Tally: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Atomic<Int>>
        let capacity: Int

        init(_ capacity: Int) {
            self.capacity = capacity
            counts = .allocate(capacity: capacity)
            for i in 0..<capacity { (counts + i).initialize(to: Atomic(0)) }
        }

        deinit { counts.deallocate() }

        func record(_ i: Int) { counts[i].add(1, ordering: .relaxed) }

        /// The indices that did not run exactly once in a loop of `count`, zeroing every count.
        func takeMistakes(count: Int) -> [Int] {
            (0..<capacity).filter { counts[$0].exchange(0, ordering: .relaxed) != ($0 < count ? 1 : 0) }
        }
    }

    /// Spins for about `iterations` steps: bodies of uneven length, so threads finish out of turn.
    static func work(_ iterations: Int) {
        let sink = Atomic<Int>(0)
        for i in 0..<iterations { sink.store(i, ordering: .relaxed) }
    }

    /// Loops of random lengths back to back: a helper that read one loop's ticket while the next
    /// began must claim nothing of either twice.
    func testEveryIndexRunsOnceInEveryLoop() {
        var random = SeededGenerator(state: 21)
        for threads in [2, 3] {
            let pool = WorkerPool(threads: threads)
            let tally = Tally(64)
            for loop in 0..<10_000 {
                let count = Int.random(in: 2...48, using: &random), slow = Int.random(in: 0..<count, using: &random)
                pool.forEach(count) { i in
                    if i == slow { Self.work(300) }
                    tally.record(i)
                }
                let mistakes = tally.takeMistakes(count: count)
                XCTAssertEqual(mistakes, [], "\(threads) threads, loop \(loop) of \(count)")
                if !mistakes.isEmpty { return }
            }
        }
    }

    func testALoopInsideALoopRunsOnItsCaller() {
        let pool = WorkerPool(threads: 2)
        let tally = Tally(64)
        let strays = Atomic<Int>(0)
        pool.forEach(8) { outer in
            let caller = pthread_self()
            pool.forEach(8) { inner in
                tally.record(outer * 8 + inner)
                if pthread_self() != caller { strays.add(1, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(tally.takeMistakes(count: 64), [])
        XCTAssertEqual(strays.load(ordering: .relaxed), 0, "inner indices ran on another thread")
    }

    /// More indices than a ticket can count go as several loops.
    func testLoopsLongerThanATicketRunWhole() {
        let pool = WorkerPool(threads: 2)
        let count = Ticket.maximumCount + 5
        let runs = Atomic<Int>(0), sum = Atomic<Int>(0)
        pool.forEach(count) { i in
            runs.add(1, ordering: .relaxed)
            sum.add(i, ordering: .relaxed)
        }
        XCTAssertEqual(runs.load(ordering: .relaxed), count)
        XCTAssertEqual(sum.load(ordering: .relaxed), count * (count - 1) / 2)
    }

    func testLoopsFromTwoThreadsAtOnceEachRunWhole() {
        let pool = WorkerPool(threads: 2)
        let tallies = [Tally(32), Tally(32)]
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for _ in 0..<2_000 {
                pool.forEach(32) { tallies[caller].record($0) }
                if !tallies[caller].takeMistakes(count: 32).isEmpty { failures.add(1, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(failures.load(ordering: .relaxed), 0)
    }

    /// A loop's first index waits (up to a deadline) for another thread to take one: in a loop right
    /// after another, and in one after the helper has gone to sleep, which must wake it.
    func testHelpersTakePart() {
        let pool = WorkerPool(threads: 2)
        for pause in [0, 20_000] {  // microseconds: the second well past `awakeNanoseconds`
            usleep(useconds_t(pause))
            let threads = Mutex<Set<pthread_t>>([])
            pool.forEach(2) { _ in
                threads.withLock { _ = $0.insert(pthread_self()) }
                let deadline = Date().addingTimeInterval(5)
                while threads.withLock({ $0.count }) < 2 && Date() < deadline { usleep(100) }
            }
            XCTAssertEqual(threads.withLock { $0.count }, 2, "after a pause of \(pause) us")
        }
    }

    /// Each helper holds its pool's shared loop until it leaves.
    func testHelpersLeaveWithTheirPool() {
        weak var shared: SharedLoop?
        do {
            let pool = WorkerPool(threads: 4)
            pool.forEach(4) { _ in }
            shared = pool.shared
        }
        let deadline = Date().addingTimeInterval(5)
        while shared != nil && Date() < deadline { usleep(10_000) }
        XCTAssertNil(shared, "a helper is still there")
    }
}
