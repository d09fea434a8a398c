import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegTUI

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a model on a labelled folder: pixel accuracy, mean IoU, per-class IoU, confusion matrix, boundary F-score.",
        discussion: "Images and label PNGs are paired by file name (NAME.png with NAME.png, NAME_L.png or NAME_label.png). Label values of --ignore, or not below the class count, are not scored.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Folder of input images (PNG or JPEG).")
    var images: String

    @Option(help: "Folder of label PNGs (one class id per pixel).")
    var labels: String

    @Option(help: "Label value of unlabelled pixels.")
    var ignore = 255

    @Option(name: .customLong("boundary-tolerance"), help: "Pixels within which boundaries match for the boundary F-score.")
    var boundaryTolerance = 2

    @Flag(help: "One JSON object on stdout.")
    var json = false

    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    mutating func run() throws {
        engine.apply()
        let (network, stride) = try modelOptions.load()
        let meta = network.metadata
        let pairs = try Self.pairs(images: images, labels: labels)
        guard !pairs.isEmpty else { throw ValidationError("no image in \(images) has a label file in \(labels)") }

        var matrix = ConfusionMatrix(classes: meta.numClasses)
        var boundary = BoundaryScore(tolerance: boundaryTolerance)
        let progress = ProgressBar(total: pairs.count, label: "eval")
        for (index, pair) in pairs.enumerated() {
            let picture = try imageOptions.read(pair.image)
            let truth = try PNG.readLabels(pair.label)
            guard truth.width == picture.width && truth.height == picture.height else {
                throw ValidationError("\(pair.label) is \(truth.width)x\(truth.height), \(pair.image) \(picture.width)x\(picture.height)")
            }
            let prediction = argmax(network.predict(Normalization(meta).tensor(from: picture), outputStride: stride).scores)
            matrix.add(prediction: prediction, truth: truth.pixels, ignore: ignore)
            boundary.add(prediction: prediction, truth: truth.pixels, width: truth.width, height: truth.height, ignore: ignore)
            progress.update(index + 1)
        }
        progress.finish()
        let name = network.name(outputStride: stride)
        json ? try printJSON(matrix, boundary, meta, name, stride, count: pairs.count)
             : printText(matrix, boundary, meta, name, stride, count: pairs.count)
    }

    /// (image, label) paths paired by name, sorted.
    static func pairs(images: String, labels: String) throws -> [(image: String, label: String)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: images).filter { $0.lowercased().hasSuffix(".png") }.sorted()
        return names.compactMap { name in
            let stem = (name as NSString).deletingPathExtension
            for candidate in [name, "\(stem)_L.png", "\(stem)_label.png"] {
                let label = (labels as NSString).appendingPathComponent(candidate)
                if FileManager.default.fileExists(atPath: label) { return ((images as NSString).appendingPathComponent(name), label) }
            }
            return nil
        }
    }

    private func printText(_ matrix: ConfusionMatrix, _ boundary: BoundaryScore, _ meta: ModelMetadata, _ name: String, _ stride: Int, count: Int) {
        print("\(modelOptions.model): \(name) \(meta.backbone), output stride \(stride), \(count) images, \(matrix.labelledPixels) labelled pixels")
        print(String(format: "pixel accuracy %.2f%%, mean IoU %.2f%%, boundary F1 %.2f%% (precision %.2f%%, recall %.2f%%, %d px)",
                     matrix.pixelAccuracy * 100, matrix.meanIoU * 100, boundary.f1 * 100, boundary.precision * 100,
                     boundary.recall * 100, boundary.tolerance))
        print("\nclass                 IoU")
        for (c, iou) in matrix.classIoU.enumerated() {
            print("\(String(format: "%2d", c)) \(meta.classNames[c].padding(toLength: 16, withPad: " ", startingAt: 0)) \(iou.map { String(format: "%6.2f%%", $0 * 100) } ?? "     -")")
        }
        print("\nconfusion (rows: truth, columns: prediction)")
        print("   " + (0..<matrix.classes).map { String(format: "%8d", $0) }.joined())
        for t in 0..<matrix.classes {
            print(String(format: "%2d ", t) + (0..<matrix.classes).map { String(format: "%8d", matrix[t, $0]) }.joined())
        }
    }

    private func printJSON(_ matrix: ConfusionMatrix, _ boundary: BoundaryScore, _ meta: ModelMetadata, _ name: String, _ stride: Int, count: Int) throws {
        let report: [String: Any] = [
            "model": modelOptions.model, "architecture": name, "output_stride": stride, "images": count,
            "labelled_pixels": matrix.labelledPixels, "pixel_accuracy": matrix.pixelAccuracy, "mean_iou": matrix.meanIoU,
            "class_names": meta.classNames, "class_iou": matrix.classIoU.map { $0 as Any? ?? NSNull() },
            "confusion": (0..<matrix.classes).map { t in (0..<matrix.classes).map { matrix[t, $0] } },
            "boundary_f1": boundary.f1, "boundary_precision": boundary.precision, "boundary_recall": boundary.recall,
            "boundary_tolerance": boundary.tolerance,
        ]
        print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
    }
}

/// A progress bar on standard error when it is a terminal; silent otherwise.
struct ProgressBar {
    let total: Int
    let label: String
    private let visible = isatty(STDERR_FILENO) == 1

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    func update(_ done: Int) {
        guard visible else { return }
        let width = 30, filled = width * done / max(total, 1)
        FileHandle.standardError.write(Data("\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total)".utf8))
    }

    func finish() {
        if visible { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
