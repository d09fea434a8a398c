import Dispatch
import Foundation
import SegImage
import SegPipeline

/// In which order `n` and `p` walk the images.
public enum ImageOrder: Sendable {
    /// As named on the command line (folders sorted by name).
    case name
    /// Lowest mean IoU against the labels first (images without labels last).
    case worstFirst
    /// Lowest mean top-class probability first: where the model is least sure, labels or not.
    case leastConfident
    /// Compare mode: lowest share of pixels where models A and B agree first.
    case mostDisagreement

    var label: String {
        switch self {
        case .name: ""
        case .worstFirst: " worst first"
        case .leastConfident: " least confident first"
        case .mostDisagreement: " most disagreement first"
        }
    }

    /// What the scores are, as the image list heads them.
    var measure: String {
        switch self {
        case .name, .worstFirst: "mIoU"
        case .leastConfident: "mean confidence"
        case .mostDisagreement: "A = B share"
        }
    }
}

/// Per-image scores (mean IoU, mean confidence or A/B agreement) of one run, computed in the background one
/// image at a time (so the view's own passes wait for at most one), cached per model, stride, scale
/// and measure, and the lowest-first order they give.
final class DatasetScores: @unchecked Sendable {
    struct Run: Hashable {
        var model: Int, stride: Int, scale: WorkingScale, augmentation: TestTimeAugmentation, order: ImageOrder
        /// Model B and its stride, for `.mostDisagreement`.
        var comparison: Int?, comparisonStride: Int?
    }

    private let lock = NSLock()
    /// Image index -> score, nil where the image could not be scored.
    private var scores: [Run: [Int: Double?]] = [:]
    private var inFlight = false
    /// Complete runs' orders, sorted once: every frame asks for them.
    private var orders: [Run: [Int]] = [:]

    /// How many of the `scored` images `run` has scored.
    func progress(_ run: Run, scored: [Int]) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return scored.filter { scores[run]?[$0] != nil }.count
    }

    /// The scores `run` has so far: image index -> score, nil where the image could not be scored.
    func known(_ run: Run) -> [Int: Double?] {
        lock.lock()
        defer { lock.unlock() }
        return scores[run] ?? [:]
    }

    /// Scores the next image of `scored` that `run` lacks on `queue`, unless one is being scored.
    /// `score` gives every measure its pass yields, each kept for the run of that order: the pass
    /// for mean IoU gives the mean confidence too, so the next ordering need not run it again.
    func pump(_ run: Run, scored: [Int], queue: DispatchQueue,
              score: @escaping @Sendable (Int) -> [ImageOrder: Double?], done: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !inFlight, let next = scored.first(where: { scores[run]?[$0] == nil }) else { return }
        inFlight = true
        queue.async { [self] in
            let values = score(next)
            lock.lock()
            for (order, value) in values {
                var sibling = run
                sibling.order = order
                if order != .mostDisagreement { (sibling.comparison, sibling.comparisonStride) = (nil, nil) }
                scores[sibling, default: [:]][next] = .some(value)
            }
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
        if let order = orders[run], order.count == count { return order }
        guard let known = scores[run], scored.allSatisfy({ known[$0] != nil }) else { return nil }
        func key(_ index: Int) -> Double { (known[index] ?? nil) ?? .infinity }
        let order = (0..<count).sorted { (key($0), $0) < (key($1), $1) }
        orders[run] = order
        return order
    }
}

/// Scores one image for a `DatasetScores.Run`: the model's mean confidence, its mean IoU against the
/// image's labels where it has them, and for `.mostDisagreement` the share of pixels where models A
/// and B agree.
struct ImageScorer {
    var order: ImageOrder
    var model: Segmenter
    /// Model B, for `.mostDisagreement`.
    var comparison: Segmenter?
    var images: [String]
    var labels: [String: String]
    var ignoreLabel: Int

    /// The scores by order, nil where the image (or its labels) cannot be read or the pass fails.
    func score(_ index: Int) -> [ImageOrder: Double?] {
        defer {
            model.context.pool.trim()
            comparison?.context.pool.trim()
        }
        guard let decoded = try? model.read(images[index]),
              let result = try? model.segment(decoded.image, sourceWidth: decoded.sourceWidth,
                                              sourceHeight: decoded.sourceHeight) else { return [order: nil] }
        let confidence = result.maxProbability
        var scores: [ImageOrder: Double?] = [
            .leastConfident: confidence.reduce(0.0) { $0 + Double($1) } / Double(max(1, confidence.count)),
        ]
        if let labelPath = labels[images[index]] {
            scores[.worstFirst] = .some(meanIoU(result, labelPath, width: decoded.sourceWidth,
                                                height: decoded.sourceHeight))
        }
        if order == .mostDisagreement {
            scores[.mostDisagreement] = .some(agreement(result, index, width: decoded.sourceWidth,
                                                        height: decoded.sourceHeight))
        }
        return scores
    }

    private func meanIoU(_ result: SegmentationResult, _ labelPath: String, width: Int, height: Int) -> Double? {
        guard let truth = try? PNG.readLabels(labelPath, maxPixels: model.maxPixels),
              (truth.width, truth.height) == (width, height) else { return nil }
        var matrix = ConfusionMatrix(classes: model.model.metadata.numClasses)
        matrix.add(prediction: result.labels(width: width, height: height), truth: truth.pixels, ignore: ignoreLabel)
        return matrix.meanIoU
    }

    /// The share of pixels where model B's class is A's, at the image's own size (as `predict`
    /// writes both masks).
    private func agreement(_ result: SegmentationResult, _ index: Int, width: Int, height: Int) -> Double? {
        guard let comparison, let other = try? comparison.read(images[index]),
              let second = try? comparison.segment(other.image, sourceWidth: other.sourceWidth,
                                                   sourceHeight: other.sourceHeight) else { return nil }
        let a = result.labels(width: width, height: height), b = second.labels(width: width, height: height)
        let agreeing = zip(a, b).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
        return Double(agreeing) / Double(max(1, a.count))
    }
}
