/// Counts of (truth, prediction) pairs over labelled pixels, and the scores derived from them.
/// Pixels whose truth is `ignore` or outside 0..<classes are not counted.
public struct ConfusionMatrix: Equatable, Sendable {
    public let classes: Int
    /// Row = truth, column = prediction.
    public private(set) var counts: [Int]

    public init(classes: Int) {
        self.classes = classes
        counts = Array(repeating: 0, count: classes * classes)
    }

    /// The most pixels a matrix counts: every sum of counts stays exact as a Double and far from
    /// overflowing, whatever a file read back claims.
    public static let maximumPixels = 1 << 53

    /// A matrix from its counts, row-major (row = truth), as `counts` gives them; nil for a negative
    /// count or a total past `maximumPixels`.
    public init?(classes: Int, counts: [Int]) {
        guard classes > 0, counts.count == classes * classes else { return nil }
        var total = 0
        for count in counts {
            guard count >= 0, count <= Self.maximumPixels - total else { return nil }
            total += count
        }
        self.classes = classes
        self.counts = counts
    }

    /// Adds another matrix of the same classes (the counts of more images).
    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classes == classes, "merging confusion matrices of different class counts")
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    public mutating func add(prediction: [Int32], truth: [UInt8], ignore: Int) {
        precondition(prediction.count == truth.count, "prediction and truth differ in size")
        for (p, t) in zip(prediction, truth) where Int(t) != ignore && Int(t) < classes {
            precondition(p >= 0 && Int(p) < classes, "predicted label \(p) outside 0..<\(classes)")
            counts[Int(t) * classes + Int(p)] += 1
        }
    }

    public subscript(truth: Int, prediction: Int) -> Int { counts[truth * classes + prediction] }

    public var labelledPixels: Int { counts.reduce(0, +) }

    public var pixelAccuracy: Double {
        let correct = (0..<classes).reduce(0) { $0 + self[$1, $1] }
        return labelledPixels > 0 ? Double(correct) / Double(labelledPixels) : 0
    }

    /// IoU per class, TP / (TP + FP + FN); nil for a class absent from both truth and prediction.
    public var classIoU: [Double?] {
        (0..<classes).map { c in
            let tp = self[c, c]
            let fn = (0..<classes).reduce(0) { $0 + self[c, $1] } - tp
            let fp = (0..<classes).reduce(0) { $0 + self[$1, c] } - tp
            return tp + fp + fn > 0 ? Double(tp) / Double(tp + fp + fn) : nil
        }
    }

    /// Mean IoU over the classes present in the truth or the prediction.
    public var meanIoU: Double {
        let present = classIoU.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }
}

/// Boundary F-score: boundary pixels (a 4-neighbour with another label) of prediction and truth
/// are matched within `tolerance` pixels (a square window); precision, recall and F1 are summed
/// over images as counts. Unlabelled truth pixels (`ignore`, or outside 0..<classes, as the
/// confusion matrix has them) neither form nor break truth boundaries.
public struct BoundaryScore: Equatable, Sendable {
    public let tolerance: Int
    public private(set) var predictedBoundary = 0, predictedMatched = 0
    public private(set) var truthBoundary = 0, truthMatched = 0

    public init(tolerance: Int = 2) { self.tolerance = tolerance }

    /// A score from its four counts (as a saved partial result holds them).
    public init(tolerance: Int, predictedBoundary: Int, predictedMatched: Int, truthBoundary: Int, truthMatched: Int) {
        self.tolerance = tolerance
        (self.predictedBoundary, self.predictedMatched) = (predictedBoundary, predictedMatched)
        (self.truthBoundary, self.truthMatched) = (truthBoundary, truthMatched)
    }

    /// Adds the counts of another score with the same tolerance.
    public mutating func merge(_ other: BoundaryScore) {
        precondition(other.tolerance == tolerance, "merging boundary scores of different tolerances")
        predictedBoundary += other.predictedBoundary
        predictedMatched += other.predictedMatched
        truthBoundary += other.truthBoundary
        truthMatched += other.truthMatched
    }

    public mutating func add(prediction: [Int32], truth: [UInt8], width: Int, height: Int, ignore: Int,
                             classes: Int) {
        let predicted = Self.boundary(width: width, height: height) { prediction[$0] == prediction[$1] }
        let labelled = truth.map { Int($0) != ignore && Int($0) < classes }
        let actual = Self.boundary(width: width, height: height) { !labelled[$0] || !labelled[$1] || truth[$0] == truth[$1] }
        let nearActual = dilate(actual, width: width, height: height)
        let nearPredicted = dilate(predicted, width: width, height: height)
        for i in 0..<predicted.count where labelled[i] {
            if predicted[i] { predictedBoundary += 1; if nearActual[i] { predictedMatched += 1 } }
            if actual[i] { truthBoundary += 1; if nearPredicted[i] { truthMatched += 1 } }
        }
    }

    public var precision: Double { predictedBoundary > 0 ? Double(predictedMatched) / Double(predictedBoundary) : 0 }
    public var recall: Double { truthBoundary > 0 ? Double(truthMatched) / Double(truthBoundary) : 0 }
    public var f1: Double { precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0 }

    /// Pixels with a right or lower neighbour that `same` says differs (and those neighbours).
    static func boundary(width: Int, height: Int, same: (Int, Int) -> Bool) -> [Bool] {
        var edge = [Bool](repeating: false, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                if x + 1 < width && !same(i, i + 1) { edge[i] = true; edge[i + 1] = true }
                if y + 1 < height && !same(i, i + width) { edge[i] = true; edge[i + width] = true }
            }
        }
        return edge
    }

    /// Marks every pixel within `tolerance` (Chebyshev distance) of a marked one.
    func dilate(_ mask: [Bool], width: Int, height: Int) -> [Bool] {
        var rows = [Bool](repeating: false, count: mask.count)
        for y in 0..<height {
            for x in 0..<width where mask[y * width + x] {
                for dx in max(0, x - tolerance)...min(width - 1, x + tolerance) { rows[y * width + dx] = true }
            }
        }
        var out = [Bool](repeating: false, count: mask.count)
        for y in 0..<height {
            for x in 0..<width where rows[y * width + x] {
                for dy in max(0, y - tolerance)...min(height - 1, y + tolerance) { out[dy * width + x] = true }
            }
        }
        return out
    }
}
