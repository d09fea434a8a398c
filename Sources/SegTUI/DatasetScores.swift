import Dispatch
import Foundation
import SegPipeline

/// In which order `n` and `p` walk the images.
public enum ImageOrder: Sendable {
    /// As named on the command line (folders sorted by name).
    case name
    /// Lowest mean IoU against the labels first (images without labels last).
    case worstFirst
}

/// Per-image mean IoU of one model run over the labelled images, computed in the background one
/// image at a time (so the view's own passes wait for at most one), cached per model, stride and
/// scale, and the worst-first order they give.
final class DatasetScores: @unchecked Sendable {
    struct Run: Hashable {
        var model: Int, stride: Int, scale: WorkingScale
    }

    private let lock = NSLock()
    /// Image index -> mean IoU, nil where the image could not be scored.
    private var scores: [Run: [Int: Double?]] = [:]
    private var inFlight = false

    /// How many of `labelled` images `run` has scored.
    func progress(_ run: Run, labelled: [Int]) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return labelled.filter { scores[run]?[$0] != nil }.count
    }

    /// Scores the next image of `labelled` that `run` lacks on `queue`, unless one is being scored.
    func pump(_ run: Run, labelled: [Int], queue: DispatchQueue, score: @escaping @Sendable (Int) -> Double?,
              done: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !inFlight, let next = labelled.first(where: { scores[run]?[$0] == nil }) else { return }
        inFlight = true
        queue.async { [self] in
            let value = score(next)
            lock.lock()
            scores[run, default: [:]][next] = .some(value)
            inFlight = false
            lock.unlock()
            done()
        }
    }

    /// Image indices worst first once every labelled image is scored (unlabelled and failed ones
    /// last, in name order), else nil.
    func worstFirst(_ run: Run, labelled: [Int], count: Int) -> [Int]? {
        lock.lock()
        defer { lock.unlock() }
        guard let known = scores[run], labelled.allSatisfy({ known[$0] != nil }) else { return nil }
        func key(_ index: Int) -> Double { (known[index] ?? nil) ?? .infinity }
        return (0..<count).sorted { (key($0), $0) < (key($1), $1) }
    }
}
