import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline

/// `segview eval` scores a folder (`eval run`, the default) or adds up partial results (`eval merge`).
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a model on a labelled folder, or merge partial results.",
        discussion: "Without a subcommand, eval is `eval run`: `segview eval --model FILE --images DIR --labels DIR`. "
            + "Its options are listed by `segview eval run --help`.",
        subcommands: [EvalRun.self, EvalMerge.self], defaultSubcommand: EvalRun.self)
}

struct EvalRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Score a model on a labelled folder: pixel accuracy, mean IoU, per-class IoU, confusion matrix, "
            + "boundary F-score, and every image's own scores.",
        discussion: "Images (PNG or JPEG) and label PNGs are paired by name: NAME.jpg or NAME.png with NAME.png, "
            + "NAME_L.png or NAME_label.png. The network runs at the working resolution (--scale) and is scored at the "
            + "labels' size. Label values of --ignore, or not below the class count, are not scored. A big folder "
            + "can be split with --shard K/N over machines, each writing --save-partial FILE, and `segview eval "
            + "merge FILE...` gives exactly the figures of one run. Two --model options score two models on the "
            + "same images and list the images where one beats the other most.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Folder of input images (PNG or JPEG).")
    var images: String

    @Option(help: "Folder of label PNGs (one class id per pixel).")
    var labels: String

    @Option(help: "Label value of unlabelled pixels.")
    var ignore = 255

    @Option(name: .customLong("boundary-tolerance"), help: "Pixels within which boundaries match for the boundary F-score.")
    var boundaryTolerance = 2

    @OptionGroup var output: EvalOutput

    @Option(help: ArgumentHelp("Score only share K of N of the images (a stable split by file name; K from 1 to "
                               + "N), e.g. 2/8.",
                               valueName: "K/N"))
    var shard: Shard?

    @Option(name: .customLong("save-partial"), help: "Also write the result as JSON for `segview eval merge`.")
    var savePartial: String?

    @Flag(help: "Overwrite existing --csv and --save-partial files.")
    var force = false

    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        guard modelOptions.models.count <= 2 else { throw ValidationError("eval compares at most two models") }
        guard ![output.csv, savePartial].contains("") else {
            throw ValidationError("--csv and --save-partial must name a file")
        }
        guard modelOptions.models.count == 1 || (output.csv == nil && savePartial == nil) else {
            throw ValidationError("--csv and --save-partial take one model: run eval once per model")
        }
        guard (0...255).contains(ignore) else { throw ValidationError("--ignore must be a label value, 0 to 255") }
        guard (0...64).contains(boundaryTolerance) else {
            throw ValidationError("--boundary-tolerance must be 0 to 64")
        }
    }

    mutating func run() throws {
        let outputs = [output.csv, savePartial].compactMap { $0 }
        try Failure.refuseColliding(outputs: outputs, options: "--csv and --save-partial",
                                    inputs: modelOptions.models.map { ($0, "a model to score") })
        try Failure.refuseExisting(outputs, force: force)
        let segmenters = try modelOptions.models.map { try modelOptions.segmenter(imageOptions, engine, path: $0) }
        if let other = segmenters.dropFirst().first,
           other.model.metadata.classNames != segmenters[0].model.metadata.classNames {
            throw Failure("\(modelOptions.models[0]) and \(modelOptions.models[1]) have different classes; "
                          + "one set of labels cannot score both")
        }
        let folderImages = try Dataset.images(inFolder: images)
        guard Dataset.isDirectory(labels) else { throw Failure("\(labels): not a folder of label PNGs") }
        // Over the whole folder: two images of one label in two shards would add up in `eval merge`.
        let folderLabels = try Dataset.labels(for: folderImages, from: labels)
        var scoredAgainst: [String: String] = [:]
        for image in folderImages where !ImageFile.isUnopenableName(image) {
            guard let label = folderLabels[image] else { continue }
            if let other = scoredAgainst[label] {
                throw Failure("\(other) and \(image) would both be scored against \(label), which would count it "
                              + "twice; move one away")
            }
            scoredAgainst[label] = image
        }
        let imageFiles = folderImages.filter { shard?.contains($0) ?? true }
        let chosen = Set(imageFiles)
        let labelFiles = folderLabels.filter { chosen.contains($0.key) }
        let pairs = imageFiles.compactMap { image in labelFiles[image].map { (image: image, label: $0) } }
        guard !pairs.isEmpty else {
            throw Failure("no image in \(images)\(shard.map { " (shard \($0))" } ?? "") has a label file in \(labels) "
                          + "(\(Dataset.labelNameRule))")
        }
        let unlabelled = imageFiles.filter { labelFiles[$0] == nil }.map { oneLine(($0 as NSString).lastPathComponent) }
        if !unlabelled.isEmpty {
            let names = unlabelled.prefix(5).joined(separator: ", ") + (unlabelled.count > 5 ? ", ..." : "")
            printToStandardError("segview: \(unlabelled.count) of \(imageFiles.count) images have no label file in "
                                 + "\(labels) and are not scored: \(names)")
        }

        var reports = zip(modelOptions.models, segmenters).map { path, segmenter in
            let (model, stride) = (segmenter.model, segmenter.outputStride)
            var report = EvalReport(model: path, architecture: model.name(outputStride: stride),
                                    backbone: model.metadata.backbone, outputStride: stride,
                                    scale: "\(segmenter.scale)", classNames: model.metadata.classNames,
                                    tolerance: boundaryTolerance)
            report.tta = "\(segmenter.augmentation)"
            report.precision = model.metadata.precision.rawValue
            report.ignore = ignore
            report.shard = shard?.description
            return report
        }
        let progress = ProgressBar(total: pairs.count, label: "eval")
        var failures: [String] = []
        for (index, pair) in pairs.enumerated() {
            do {
                // Every model scores the image, or none does: a comparison needs both.
                let images = try segmenters.map { try score(pair, with: $0) }
                for (model, image) in images.enumerated() { reports[model].add(image) }
            } catch {
                failures.append("\(error)")
            }
            progress.update(index + 1)
        }
        progress.finish()
        if let savePartial {
            try SafeFile.write(Data((try jsonLine(reports[0].json) + "\n").utf8), to: savePartial, overwrite: force)
        }
        if reports.count == 2 {
            try output.emit(EvalComparison(a: reports[0], b: reports[1]))
        } else {
            try output.emit(reports[0], overwrite: force)
        }
        guard failures.isEmpty else {
            let list = failures.map { "  failed: \($0)" }.joined(separator: "\n")
            let text = "\(failures.count) of \(pairs.count) images failed:\n\(list)\n"
            FileHandle.standardError.write(Data(terminalSafe(text).utf8))
            throw ExitCode(1)
        }
    }

    /// One image's confusion matrix and boundary counts under one model. With two models the image is
    /// read for each: their working resolutions (and so JPEG decoding scales) may differ.
    private func score(_ pair: (image: String, label: String), with segmenter: Segmenter) throws
        -> (image: EvalReport.Image, matrix: ConfusionMatrix, boundary: BoundaryScore) {
        var clock = Stopwatch()
        let (truth, prediction) = try predict(pair, with: segmenter)
        var matrix = ConfusionMatrix(classes: segmenter.model.metadata.numClasses)
        var boundary = BoundaryScore(tolerance: boundaryTolerance)
        matrix.add(prediction: prediction, truth: truth.pixels, ignore: ignore)
        boundary.add(prediction: prediction, truth: truth.pixels, width: truth.width, height: truth.height,
                     ignore: ignore, classes: matrix.classes)
        let image = EvalReport.Image(name: (pair.image as NSString).lastPathComponent, matrix: matrix,
                                     boundary: boundary, seconds: clock.lap() / 1000)
        return (image, matrix, boundary)
    }

    /// The labels of one pair and the prediction at their size.
    private func predict(_ pair: (image: String, label: String), with segmenter: Segmenter) throws
        -> (truth: RGBImage, prediction: [Int32]) {
        // The image first: one that cannot be opened is named as such, not as a missing label.
        let decoded: (image: RGBImage, sourceWidth: Int, sourceHeight: Int)
        do {
            decoded = try segmenter.read(pair.image)
        } catch {
            throw imageOptions.explain(error)
        }
        let truth = try PNG.readLabels(pair.label, maxPixels: imageOptions.maxPixels)
        guard truth.width == decoded.sourceWidth && truth.height == decoded.sourceHeight else {
            throw Failure("\(pair.label) is \(truth.width)x\(truth.height), \(pair.image) "
                          + "\(decoded.sourceWidth)x\(decoded.sourceHeight)")
        }
        let result = try segmenter.segment(decoded.image, sourceWidth: decoded.sourceWidth,
                                           sourceHeight: decoded.sourceHeight, name: pair.image)
        return (truth, result.labels(width: truth.width, height: truth.height))
    }
}

/// How `eval` and `eval merge` show a report.
struct EvalOutput: ParsableArguments {
    @Flag(help: "One JSON object on stdout, with every image's scores under per_image.")
    var json = false

    @Flag(name: .customLong("per-image"), help: "Also list every image's scores, worst mean IoU first.")
    var perImage = false

    @Option(help: "Write every image's scores to this CSV file.")
    var csv: String?

    func emit(_ report: EvalReport, overwrite: Bool) throws {
        if let csv { try SafeFile.write(Data(report.csv.utf8), to: csv, overwrite: overwrite) }
        if json { return try printJSON(report.json) }
        report.printText()
        if perImage { report.printPerImage() }
    }

    func emit(_ comparison: EvalComparison) throws {
        if json { return try printJSON(comparison.json) }
        comparison.printText(perImage: perImage)
    }
}

/// `--shard K/N`: the images whose name hashes to K of N (FNV-1a, so a file stays in its shard
/// whatever else the folder holds).
struct Shard: ExpressibleByArgument, CustomStringConvertible {
    let index: Int
    let count: Int

    init?(argument: String) {
        let parts = argument.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let index = parts[0], let count = parts[1], count >= 1,
              (1...count).contains(index) else {
            return nil
        }
        (self.index, self.count) = (index, count)
    }

    var description: String { "\(index)/\(count)" }

    func contains(_ path: String) -> Bool {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in (path as NSString).lastPathComponent.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return Int(hash % UInt64(count)) == index - 1
    }
}

/// `segview eval merge`: partial results (`eval --save-partial` or `--json`) added up into the
/// report one run over all their images gives.
struct EvalMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Add up partial eval results (--save-partial or --json files) into one report.")

    @Argument(help: "Partial result files.")
    var partials: [String]

    @OptionGroup var output: EvalOutput

    @Flag(help: "Overwrite an existing --csv file.")
    var force = false

    func validate() throws {
        guard !partials.isEmpty else { throw ValidationError("name the partial result files to merge") }
        guard output.csv != "" else { throw ValidationError("--csv must name a file") }
    }

    func run() throws {
        try Failure.refuseColliding(outputs: [output.csv].compactMap { $0 }, options: "--csv",
                                    inputs: partials.map { ($0, "a partial result to merge") })
        var merged: EvalReport?
        var shards: [(file: String, shard: Shard)] = []
        for file in partials {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw Failure("\(file): cannot read: \(error.localizedDescription)")
            }
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw Failure("\(file): not JSON")
            }
            let report = try EvalReport(json: json, file: file)
            if let shard = report.shard {
                guard let parsed = Shard(argument: shard) else { throw Failure("\(file): shard \(shard) is not K/N") }
                shards.append((file, parsed))
            }
            if merged == nil { merged = report } else { try merged!.merge(report, from: file) }
        }
        try Self.checkOneSplit(shards)
        merged!.shard = nil
        try output.emit(merged!, overwrite: force)
    }

    /// Sharded partial results are shares of one split; a share that is not among them is named
    /// (a shard that held no labelled image writes no file, so it is not an error).
    static func checkOneSplit(_ shards: [(file: String, shard: Shard)]) throws {
        guard let count = shards.first?.shard.count else { return }
        if let other = shards.first(where: { $0.shard.count != count }) {
            throw Failure("\(other.file): shard \(other.shard), where the partial results before it are shares of "
                          + "\(count): they are not one split")
        }
        // N may be huge (any K/N is valid): count the missing shares and name the first few.
        let present = Set(shards.map(\.shard.index))
        let missingCount = count - present.count
        if missingCount > 0 {
            let first = (1...count).lazy.filter { !present.contains($0) }.prefix(5).map { "\($0)/\(count)" }
            let list = first.joined(separator: ", ") + (missingCount > 5 ? " and \(missingCount - 5) more" : "")
            printToStandardError("segview: no partial result of shard\(missingCount == 1 ? "" : "s") \(list): "
                                 + "the images \(missingCount == 1 ? "it" : "they") held, if any, are left out")
        }
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
