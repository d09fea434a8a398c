import Dispatch
import Foundation
import SegPipeline

/// In which order `n` and `p` walk the images.
public enum ImageOrder: Sendable {
    /// As named on the command line (folders sorted by name).
    case name
    /// Lowest mean IoU against the labels first (images without labels last).
    case worstFirst
    /// Lowest mean top-class probability first: where the model is least sure, labels or not.
    case leastConfident

    var label: String {
        switch self {
        case .name: ""
        case .worstFirst: " worst first"
        case .leastConfident: " least confident first"
        }
    }
}

/// Per-image scores (mean IoU or mean confidence) of one model run, computed in the background one
/// image at a time (so the view's own passes wait for at most one), cached per model, stride, scale
/// and measure, and the lowest-first order they give.
final class DatasetScores: @unchecked Sendable {
    struct Run: Hashable {
        var model: Int, stride: Int, scale: WorkingScale, order: ImageOrder
    }

    private let lock = NSLock()
    /// Image index -> score, nil where the image could not be scored.
    private var scores: [Run: [Int: Double?]] = [:]
    private var inFlight = false

    /// How many of the `scored` images `run` has scored.
    func progress(_ run: Run, scored: [Int]) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return scored.filter { scores[run]?[$0] != nil }.count
    }

    /// Scores the next image of `scored` that `run` lacks on `queue`, unless one is being scored.
    func pump(_ run: Run, scored: [Int], queue: DispatchQueue, score: @escaping @Sendable (Int) -> Double?,
              done: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !inFlight, let next = scored.first(where: { scores[run]?[$0] == nil }) else { return }
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

    /// Image indices lowest score first once every one of `scored` is scored (the others and
    /// failed ones last, in name order), else nil.
    func lowestFirst(_ run: Run, scored: [Int], count: Int) -> [Int]? {
        lock.lock()
        defer { lock.unlock() }
        guard let known = scores[run], scored.allSatisfy({ known[$0] != nil }) else { return nil }
        func key(_ index: Int) -> Double { (known[index] ?? nil) ?? .infinity }
        return (0..<count).sorted { (key($0), $0) < (key($1), $1) }
    }
}
