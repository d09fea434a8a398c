import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegTUI

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment one PNG and write the colour mask, an overlay and/or the raw class scores.",
        discussion: "Nothing is resized: the network runs on the image at its own size. With no output option, the mask goes to ./<image name>.mask.png.")

    @Argument(help: "Input PNG.")
    var image: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Colour mask PNG to write.")
    var out: String?

    @Option(help: "Mask blended over the image, PNG.")
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

    @OptionGroup var engine: EngineOptions

    var outputs: [String] { [out, overlay, saveLogits, border].compactMap { $0 } }

    mutating func run() throws {
        engine.apply()
        if out == nil && overlay == nil && saveLogits == nil && border == nil {
            out = URL(fileURLWithPath: image).deletingPathExtension().lastPathComponent + ".mask.png"
        }
        // Refuse before any work, not after a long forward pass.
        for path in outputs where !force && FileManager.default.fileExists(atPath: path) {
            throw ValidationError("\(path) already exists (use --force to overwrite)")
        }

        var clock = Stopwatch()
        let (network, stride) = try modelOptions.load()
        let meta = network.metadata
        let loadTime = clock.lap()

        let picture = try PNG.read(image)
        let input = Normalization(meta).tensor(from: picture)
        let preprocessTime = clock.lap()

        BufferPool.shared.resetPeak()
        let prediction = network.predict(input, outputStride: stride)
        let forwardTime = clock.lap()
        let activationPeak = BufferPool.shared.peakBytes

        let labels = argmax(prediction.scores)
        let palette = Palette(colors: meta.classColors)
        if let out {
            try PNG.write(palette.colorize(labels, width: picture.width, height: picture.height), to: out, overwrite: force)
        }
        if let overlay {
            try PNG.write(palette.overlay(labels, on: picture), to: overlay, overwrite: force)
        }
        if let saveLogits {
            try SafeFile.write(NumPyFile.encode(prediction.scores), to: saveLogits, overwrite: force)
        }
        if let border {
            let map = prediction.border?.toArray()
                ?? SegmentationResult.boundaries(of: labels, width: picture.width, height: picture.height)
            try PNG.write(borderColors.image(map, width: picture.width, height: picture.height), to: border, overwrite: force)
            if prediction.border == nil {
                print("note: \(meta.architecture) has no border network; \(border) shows the boundaries of the mask")
            }
        }
        let postprocessTime = clock.lap()

        let weightBytes = network.parameterCount * 4
        print("\(image): \(picture.width)x\(picture.height), \(network.name(outputStride: stride)) \(meta.backbone), output stride \(stride), \(Parallel.threads) threads")
        print(String(format: "time: load %.1f ms, preprocess %.1f ms, forward %.1f ms, postprocess %.1f ms",
                     loadTime, preprocessTime, forwardTime, postprocessTime))
        print(String(format: "memory: weights %.1f MB, activation peak %.1f MB, process peak RSS %.1f MB",
                     Double(weightBytes) / 1e6, Double(activationPeak) / 1e6, Double(peakResidentBytes()) / 1e6))
        for path in outputs { print("wrote \(path)") }
    }
}

extension ValueMap: ExpressibleByArgument {}
