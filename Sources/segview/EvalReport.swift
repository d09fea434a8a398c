import Foundation
import SegImage

/// What `eval` found: the totals as counts (so that partial runs add up to exactly what one run
/// gives) and one row per image. Printed as text, JSON (which is also the partial-file format that
/// `eval merge` reads back), a worst-first table or CSV.
struct EvalReport {
    struct Image {
        var name: String
        var pixelAccuracy: Double
        var meanIoU: Double
        var classIoU: [Double?]
        var boundaryF1: Double
        var seconds: Double

        init(name: String, matrix: ConfusionMatrix, boundary: BoundaryScore, seconds: Double) {
            self.name = name
            pixelAccuracy = matrix.pixelAccuracy
            meanIoU = matrix.meanIoU
            classIoU = matrix.classIoU
            boundaryF1 = boundary.f1
            self.seconds = seconds
        }

        var json: [String: Any] {
            ["image": name, "pixel_accuracy": pixelAccuracy, "mean_iou": meanIoU,
             "class_iou": classIoU.map { $0 as Any? ?? NSNull() }, "boundary_f1": boundaryF1, "seconds": seconds]
        }

        init(json: [String: Any]) throws {
            guard let name = json["image"] as? String, let pixelAccuracy = json["pixel_accuracy"] as? Double,
                  let meanIoU = json["mean_iou"] as? Double, let classIoU = json["class_iou"] as? [Any],
                  let boundaryF1 = json["boundary_f1"] as? Double, let seconds = json["seconds"] as? Double else {
                throw Failure("a per_image entry is not one eval writes")
            }
            self.name = name
            self.pixelAccuracy = pixelAccuracy
            self.meanIoU = meanIoU
            self.classIoU = classIoU.map { $0 as? Double }
            self.boundaryF1 = boundaryF1
            self.seconds = seconds
        }
    }

    /// The model file, its architecture as run ("fcn8s") and backbone, and how it was run.
    var model: String
    var architecture: String
    var backbone: String
    var outputStride: Int
    var scale: String
    /// Test-time augmentation ("none", "flip", ...).
    var tta = "none"
    /// What the convolutions ran in ("fp32" or "int8"; nil: a partial file written before it was recorded).
    var precision: String?
    /// The label value not scored (nil: a partial file written before it was recorded).
    var ignore: Int?
    /// The share of the images scored ("2/8"), nil for all of them or a file from before 0.17.
    var shard: String?
    var classNames: [String]
    var matrix: ConfusionMatrix
    var boundary: BoundaryScore
    var images: [Image] = []

    /// The images sorted worst first (lowest mean IoU; name breaks ties).
    var worstFirst: [Image] {
        images.sorted { ($0.meanIoU, $0.name) < ($1.meanIoU, $1.name) }
    }

    /// What partial reports must share to add up: what the model is, how it ran and how it was
    /// scored (the model file's path may differ between machines).
    private var mustMatch: KeyValuePairs<String, String> {
        ["architecture": architecture, "backbone": backbone, "output stride": "\(outputStride)", "scale": scale,
         "test-time augmentation": tta, "precision": precision ?? "unknown",
         "ignored label": ignore.map { "\($0)" } ?? "unknown", "class count": "\(classNames.count)",
         "boundary tolerance": "\(boundary.tolerance)"]
    }

    /// Adds a partial report of the same model, run and classes, read from `file`.
    mutating func merge(_ other: EvalReport, from file: String) throws {
        for (mine, theirs) in zip(mustMatch, other.mustMatch) where mine.value != theirs.value {
            let old = [mine.value, theirs.value].contains("unknown") ? " (segview before 0.15 did not record it)" : ""
            throw Failure("\(file): \(mine.key) \(theirs.value), where the partial results before it have "
                          + "\(mine.value)\(old): they do not add up")
        }
        if let index = classNames.indices.first(where: { classNames[$0] != other.classNames[$0] }) {
            throw Failure("\(file): class \(index) is '\(other.classNames[index])', where the partial results before "
                          + "it have '\(classNames[index])': they do not add up")
        }
        let repeated = Set(images.map(\.name)).intersection(other.images.map(\.name))
        guard repeated.isEmpty else {
            throw Failure("\(file): \(repeated.sorted().first!) is in the partial results before it too "
                          + "(the same shard twice?)")
        }
        let limit = ConfusionMatrix.maximumPixels
        guard matrix.labelledPixels <= limit - other.matrix.labelledPixels,
              boundary.predictedBoundary <= limit - other.boundary.predictedBoundary,
              boundary.truthBoundary <= limit - other.boundary.truthBoundary else {
            throw Failure("\(file): the pixel counts add up to more than \(limit): not what eval writes")
        }
        matrix.merge(other.matrix)
        boundary.merge(other.boundary)
        images += other.images
        images.sort { $0.name < $1.name }
    }

    var json: [String: Any] {
        [
            "model": model, "architecture": architecture, "backbone": backbone, "output_stride": outputStride,
            "scale": scale, "tta": tta, "precision": precision as Any? ?? NSNull(),
            "ignore": ignore as Any? ?? NSNull(), "shard": shard as Any? ?? NSNull(),
            "images": images.count,
            "labelled_pixels": matrix.labelledPixels, "pixel_accuracy": matrix.pixelAccuracy,
            "mean_iou": matrix.meanIoU,
            "class_names": classNames, "class_iou": matrix.classIoU.map { $0 as Any? ?? NSNull() },
            "confusion": (0..<matrix.classes).map { t in (0..<matrix.classes).map { matrix[t, $0] } },
            "boundary_f1": boundary.f1, "boundary_precision": boundary.precision, "boundary_recall": boundary.recall,
            "boundary_tolerance": boundary.tolerance,
            "boundary_counts": ["predicted": boundary.predictedBoundary, "predicted_matched": boundary.predictedMatched,
                                "truth": boundary.truthBoundary, "truth_matched": boundary.truthMatched],
            "per_image": images.map(\.json),
        ]
    }

    /// A report read back from `eval --json` or `--save-partial` output.
    init(json: [String: Any], file: String) throws {
        guard let model = json["model"] as? String, let architecture = json["architecture"] as? String,
              let backbone = json["backbone"] as? String,
              let outputStride = json["output_stride"] as? Int, let scale = json["scale"] as? String,
              let classNames = json["class_names"] as? [String], let rows = json["confusion"] as? [[Int]],
              let matrix = ConfusionMatrix(classes: classNames.count, counts: rows.flatMap { $0 }),
              let tolerance = json["boundary_tolerance"] as? Int,
              let counts = json["boundary_counts"] as? [String: Int],
              let predicted = counts["predicted"], let predictedMatched = counts["predicted_matched"],
              let truth = counts["truth"], let truthMatched = counts["truth_matched"],
              let images = json["per_image"] as? [[String: Any]] else {
            throw Failure("\(file): not a partial result of segview eval (--json or --save-partial)")
        }
        self.init(model: model, architecture: architecture, backbone: backbone, outputStride: outputStride,
                  scale: scale, classNames: classNames, tolerance: tolerance)
        self.matrix = matrix
        tta = json["tta"] as? String ?? "none"  // files written before --tta existed
        precision = json["precision"] as? String
        ignore = json["ignore"] as? Int
        shard = json["shard"] as? String
        boundary = BoundaryScore(tolerance: tolerance, predictedBoundary: predicted, predictedMatched: predictedMatched,
                                 truthBoundary: truth, truthMatched: truthMatched)
        self.images = try images.map(Image.init(json:))
        guard [predicted, truth].allSatisfy({ (0...ConfusionMatrix.maximumPixels).contains($0) }),
              (0...predicted).contains(predictedMatched), (0...truth).contains(truthMatched) else {
            throw Failure("\(file): boundary_counts are not counts eval writes")
        }
        var names = Set<String>()
        if let repeated = self.images.first(where: { !names.insert($0.name).inserted }) {
            throw Failure("\(file): \(repeated.name) is listed twice in per_image")
        }
    }

    init(model: String, architecture: String, backbone: String, outputStride: Int, scale: String, classNames: [String],
         tolerance: Int) {
        self.model = model
        self.architecture = architecture
        self.backbone = backbone
        self.outputStride = outputStride
        self.scale = scale
        self.classNames = classNames
        matrix = ConfusionMatrix(classes: classNames.count)
        boundary = BoundaryScore(tolerance: tolerance)
    }

    /// One image's scores, added to the totals.
    mutating func add(_ scored: (image: Image, matrix: ConfusionMatrix, boundary: BoundaryScore)) {
        matrix.merge(scored.matrix)
        boundary.merge(scored.boundary)
        images.append(scored.image)
    }

    func printText() {
        let int8 = precision == "int8" ? " int8" : ""
        print("\(model): \(architecture) \(backbone)\(int8), output stride \(outputStride), scale \(scale), "
              + (tta == "none" ? "" : "test-time augmentation \(tta), ")
              + "\(counted(images.count, "image")), \(matrix.labelledPixels) labelled pixels")
        print(String(format: "pixel accuracy %.2f%%, mean IoU %.2f%%, boundary F1 %.2f%% "
                     + "(precision %.2f%%, recall %.2f%%, %d px)", matrix.pixelAccuracy * 100, matrix.meanIoU * 100,
                     boundary.f1 * 100, boundary.precision * 100, boundary.recall * 100, boundary.tolerance))
        print("\nclass                 IoU")
        for (c, iou) in matrix.classIoU.enumerated() {
            let name = classNames[c].padding(toLength: 16, withPad: " ", startingAt: 0)
            print("\(String(format: "%2d", c)) \(name) \(iou.map { String(format: "%6.2f%%", $0 * 100) } ?? "     -")")
        }
        print("\nconfusion (rows: truth, columns: prediction)")
        print("   " + (0..<matrix.classes).map { String(format: "%8d", $0) }.joined())
        for t in 0..<matrix.classes {
            let row = (0..<matrix.classes).map { String(format: "%8d", matrix[t, $0]) }.joined()
            print(String(format: "%2d ", t) + row)
        }
    }

    /// One line per image, worst mean IoU first.
    func printPerImage() {
        let width = max(5, images.map { oneLine($0.name).count }.max() ?? 0)
        let header = "image".padding(toLength: width, withPad: " ", startingAt: 0)
        print("\n" + header + "   pixel acc    mIoU  boundary F1   seconds")
        for image in worstFirst {
            print(oneLine(image.name).padding(toLength: width, withPad: " ", startingAt: 0)
                  + String(format: "   %8.2f%% %6.2f%%      %6.2f%%  %8.3f", image.pixelAccuracy * 100,
                           image.meanIoU * 100, image.boundaryF1 * 100, image.seconds))
        }
    }

    /// The per-image rows as CSV, a column per class IoU (empty where the class is absent).
    var csv: String {
        func field(_ text: String) -> String {
            guard text.contains(where: { ",\"\n\r".contains($0) }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        let header = ["image", "pixel_accuracy", "mean_iou", "boundary_f1", "seconds"] + classNames.map { "iou_" + $0 }
        let rows = images.map { image in
            [field(image.name), "\(image.pixelAccuracy)", "\(image.meanIoU)", "\(image.boundaryF1)", "\(image.seconds)"]
                + image.classIoU.map { $0.map { "\($0)" } ?? "" }
        }
        return ([header.map(field)] + rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}
