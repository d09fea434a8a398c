import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a model on a labelled folder: pixel accuracy, mean IoU, per-class IoU, confusion matrix, "
            + "boundary F-score.",
        discussion: "Images (PNG or JPEG) and label PNGs are paired by name: NAME.jpg or NAME.png with NAME.png, "
            + "NAME_L.png or NAME_label.png. The network runs at the working resolution (--scale) and is scored at the "
            + "labels' size. Label values of --ignore, or not below the class count, are not scored.")

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

    func validate() throws {
        guard (0...255).contains(ignore) else { throw ValidationError("--ignore must be a label value, 0 to 255") }
        guard (0...64).contains(boundaryTolerance) else { throw ValidationError("--boundary-tolerance must be 0 to 64") }
    }

    mutating func run() throws {
        engine.apply()
        let segmenter = try modelOptions.segmenter(imageOptions)
        let meta = segmenter.model.metadata
        let imageFiles = try Dataset.images(inFolder: images)
        guard Dataset.isDirectory(labels) else { throw Failure("\(labels): not a folder of label PNGs") }
        let labelFiles = try Dataset.labels(for: imageFiles, from: labels)
        let pairs = imageFiles.compactMap { image in labelFiles[image].map { (image: image, label: $0) } }
        guard !pairs.isEmpty else {
            throw Failure("no image in \(images) has a label file in \(labels) (NAME.png, NAME_L.png or NAME_label.png)")
        }

        var matrix = ConfusionMatrix(classes: meta.numClasses)
        var boundary = BoundaryScore(tolerance: boundaryTolerance)
        let progress = ProgressBar(total: pairs.count, label: "eval")
        var failures: [String] = []
        for (index, pair) in pairs.enumerated() {
            do {
                let (truth, prediction) = try predict(pair, with: segmenter)
                matrix.add(prediction: prediction, truth: truth.pixels, ignore: ignore)
                boundary.add(prediction: prediction, truth: truth.pixels, width: truth.width, height: truth.height,
                             ignore: ignore)
            } catch {
                failures.append("\(error)")
            }
            progress.update(index + 1)
        }
        progress.finish()
        let name = segmenter.model.name(outputStride: segmenter.outputStride)
        let scored = pairs.count - failures.count
        json ? try printJSON(matrix, boundary, meta, name, segmenter, count: scored)
             : printText(matrix, boundary, meta, name, segmenter, count: scored)
        guard failures.isEmpty else {
            let list = failures.map { "  failed: \($0)" }.joined(separator: "\n")
            FileHandle.standardError.write(Data(terminalSafe("\(failures.count) of \(pairs.count) images failed:\n\(list)\n").utf8))
            throw ExitCode(1)
        }
    }

    /// The labels of one pair and the prediction at their size.
    private func predict(_ pair: (image: String, label: String), with segmenter: Segmenter) throws
        -> (truth: RGBImage, prediction: [Int32]) {
        let truth = try PNG.readLabels(pair.label, maxPixels: imageOptions.maxPixels)
        let decoded: (image: RGBImage, sourceWidth: Int, sourceHeight: Int)
        do {
            decoded = try segmenter.read(pair.image)
        } catch {
            throw imageOptions.explain(error)
        }
        guard truth.width == decoded.sourceWidth && truth.height == decoded.sourceHeight else {
            throw Failure("\(pair.label) is \(truth.width)x\(truth.height), \(pair.image) "
                          + "\(decoded.sourceWidth)x\(decoded.sourceHeight)")
        }
        let result = try segmenter.segment(decoded.image, sourceWidth: decoded.sourceWidth,
                                           sourceHeight: decoded.sourceHeight, name: pair.image)
        return (truth, result.labels(width: truth.width, height: truth.height))
    }

    private func printText(_ matrix: ConfusionMatrix, _ boundary: BoundaryScore, _ meta: ModelMetadata, _ name: String,
                           _ segmenter: Segmenter, count: Int) {
        print("\(modelOptions.model): \(name) \(meta.backbone), output stride \(segmenter.outputStride), scale "
              + "\(segmenter.scale), \(count) images, \(matrix.labelledPixels) labelled pixels")
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

    private func printJSON(_ matrix: ConfusionMatrix, _ boundary: BoundaryScore, _ meta: ModelMetadata, _ name: String,
                           _ segmenter: Segmenter, count: Int) throws {
        let report: [String: Any] = [
            "model": modelOptions.model, "architecture": name, "output_stride": segmenter.outputStride,
            "scale": "\(segmenter.scale)", "images": count,
            "labelled_pixels": matrix.labelledPixels, "pixel_accuracy": matrix.pixelAccuracy, "mean_iou": matrix.meanIoU,
            "class_names": meta.classNames, "class_iou": matrix.classIoU.map { $0 as Any? ?? NSNull() },
            "confusion": (0..<matrix.classes).map { t in (0..<matrix.classes).map { matrix[t, $0] } },
            "boundary_f1": boundary.f1, "boundary_precision": boundary.precision, "boundary_recall": boundary.recall,
            "boundary_tolerance": boundary.tolerance,
        ]
        print(try jsonLine(report))
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
