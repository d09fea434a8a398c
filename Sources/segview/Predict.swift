import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegTUI

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment a PNG or JPEG (or a folder of them) and write the colour mask, an overlay, the border map and/or the raw class scores.",
        discussion: """
            Nothing is resized: the network runs on the image at its own size. With no output option, the mask goes to \
            ./<image name>.mask.png. Given a folder, every PNG and JPEG in it is segmented and the output options name \
            folders (created if needed) that receive <image name>.png (.npy for scores); a file that fails is reported and \
            the rest go on.
            """)

    @Argument(help: "Input image (PNG or JPEG, told apart by content) or a folder of them.")
    var image: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Colour mask PNG to write (a folder when the input is one).")
    var out: String?

    @Option(help: "Mask blended over the image, PNG (a folder when the input is one).")
    var overlay: String?

    @Option(name: .customLong("save-logits"), help: "Class scores at input resolution, float32 .npy of shape [C, H, W].")
    var saveLogits: String?

    @Option(help: ArgumentHelp("Border map PNG: DFN's border network, or for other models the boundaries of the mask.",
                               valueName: "png"))
    var border: String?

    @Option(name: .customLong("border-colors"), help: "Border map colours: grey or heat.")
    var borderColors: ValueMap = .grey

    @Flag(help: "Overwrite existing output files.")
    var force = false

    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    /// Where one image's outputs go.
    struct Outputs {
        var mask, overlay, logits, border: String?
        var all: [String] { [mask, overlay, logits, border].compactMap { $0 } }
    }

    mutating func run() throws {
        engine.apply()
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: image, isDirectory: &isDirectory), isDirectory.boolValue {
            return try runFolder()
        }
        if out == nil && overlay == nil && saveLogits == nil && border == nil {
            out = URL(fileURLWithPath: image).deletingPathExtension().lastPathComponent + ".mask.png"
        }
        let outputs = Outputs(mask: out, overlay: overlay, logits: saveLogits, border: border)
        try refuseExisting(outputs)  // before any work, not after a long forward pass

        var clock = Stopwatch()
        let (network, stride) = try modelOptions.load()
        let loadTime = clock.lap()
        BufferPool.shared.resetPeak()
        let report = try segment(image, with: network, stride: stride, to: outputs)
        let meta = network.metadata
        print("\(image): \(report.width)x\(report.height), \(network.name(outputStride: stride)) \(meta.backbone), output stride \(stride), \(Parallel.threads) threads")
        print(String(format: "time: load %.1f ms, preprocess %.1f ms, forward %.1f ms, postprocess %.1f ms",
                     loadTime, report.preprocess, report.forward, report.postprocess))
        print("memory: \(weightsAndActivationPeak(network)), "
              + String(format: "process peak RSS %.1f MB", Double(peakResidentBytes()) / 1e6))
        if let note = report.note { print(note) }
        for path in outputs.all { print("wrote \(path)") }
    }

    private func refuseExisting(_ outputs: Outputs) throws {
        for path in outputs.all where !force && FileManager.default.fileExists(atPath: path) {
            throw ValidationError("\(path) already exists (use --force to overwrite)")
        }
    }

    struct Report {
        var width = 0, height = 0
        var preprocess = 0.0, forward = 0.0, postprocess = 0.0
        var note: String?
    }

    /// Reads, segments and writes one image.
    private func segment(_ path: String, with network: SegmentationModel, stride: Int, to outputs: Outputs) throws -> Report {
        var clock = Stopwatch()
        var report = Report()
        let picture = try imageOptions.read(path)
        let input = Normalization(network.metadata).tensor(from: picture)
        (report.width, report.height, report.preprocess) = (picture.width, picture.height, clock.lap())
        let prediction = network.predict(input, outputStride: stride)
        report.forward = clock.lap()

        let labels = argmax(prediction.scores)
        let palette = Palette(colors: network.metadata.classColors)
        if let mask = outputs.mask {
            try PNG.write(palette.colorize(labels, width: picture.width, height: picture.height), to: mask, overwrite: force)
        }
        if let overlay = outputs.overlay {
            try PNG.write(palette.overlay(labels, on: picture), to: overlay, overwrite: force)
        }
        if let logits = outputs.logits {
            try SafeFile.write(NumPyFile.encode(prediction.scores), to: logits, overwrite: force)
        }
        if let border = outputs.border {
            let map = prediction.border?.toArray()
                ?? SegmentationResult.boundaries(of: labels, width: picture.width, height: picture.height)
            try PNG.write(borderColors.image(map, width: picture.width, height: picture.height), to: border, overwrite: force)
            if prediction.border == nil {
                report.note = "note: \(network.metadata.architecture) has no border network; \(border) shows the boundaries of the mask"
            }
        }
        report.postprocess = clock.lap()
        return report
    }

    /// Every image of a folder; failures are collected, reported at the end and make the exit status 1.
    private func runFolder() throws {
        guard out != nil || overlay != nil || saveLogits != nil || border != nil else {
            throw ValidationError("\(image) is a folder: name an output folder with --out (and/or --overlay, --border, --save-logits)")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: image).filter(ImageFile.hasImageExtension).sorted()
        guard !names.isEmpty else { throw ValidationError("\(image) has no PNG or JPEG files") }
        for folder in [out, overlay, saveLogits, border].compactMap({ $0 }) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let (network, stride) = try modelOptions.load()
        var failures: [(String, String)] = []
        var written = 0
        let progress = ProgressBar(total: names.count, label: "predict")
        for (index, name) in names.enumerated() {
            let stem = (name as NSString).deletingPathExtension
            func inside(_ folder: String?, _ suffix: String) -> String? {
                folder.map { ($0 as NSString).appendingPathComponent(stem + suffix) }
            }
            let outputs = Outputs(mask: inside(out, ".png"), overlay: inside(overlay, ".png"),
                                  logits: inside(saveLogits, ".npy"), border: inside(border, ".png"))
            let path = (image as NSString).appendingPathComponent(name)
            do {
                try refuseExisting(outputs)
                _ = try segment(path, with: network, stride: stride, to: outputs)
                written += 1
            } catch {
                failures.append((path, "\(error)"))
            }
            progress.update(index + 1)
        }
        progress.finish()
        print("\(names.count) images, \(network.name(outputStride: stride)) at output stride \(stride): \(written) segmented, \(failures.count) failed")
        for (path, reason) in failures { print("  failed: \(path): \(reason.hasPrefix(path) ? String(reason.dropFirst(path.count + 2)) : reason)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

extension ValueMap: ExpressibleByArgument {}
