import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an int8 model file: calibrate a model on sample images, keep float32 where int8 strays.",
        discussion: """
            Runs the model on the images to learn each convolution's input range, gives every dense convolution \
            int8 weights (one scale per output channel) and the scale of its input, then runs each one both ways \
            on the same images and keeps float32 for those whose int8 output differs from the float32 one by more \
            than --max-error (relative RMS). Depthwise and transposed convolutions stay float32. The file keeps \
            every original tensor and adds the scales; it runs in int8 by default (--precision fp32 runs it as the \
            original). Finally the int8 and float32 models' classes are compared pixel by pixel on the images. \
            On a CPU without AVX-512 VNNI the int8 passes use the portable kernel: slower, with the same results. \
            An image that cannot be read stops the command before anything is written: the calibration set \
            should be what you meant it to be.
            """)

    @Argument(help: "The model file (.safetensors or a PyTorch checkpoint) to quantize.")
    var model: String

    @OptionGroup var checkpoint: CheckpointArguments

    @Option(help: "Sample images: a folder of PNG and JPEG files (or one image).")
    var images: String

    @Option(help: "Calibrate on at most this many of the images, evenly spread over the sorted list.")
    var limit = 32

    @Option(name: .customLong("max-error"),
            help: "Keep a convolution in float32 where its int8 output's relative RMS error is above this.")
    var maxError = 0.05

    @Option(name: .customLong("output-stride"), help: "Calibrate at this stride (default: the trained one).")
    var outputStride: Int?

    @Option(help: ArgumentHelp("Working resolution, as for predict.", valueName: "auto|native|N"))
    var scale: WorkingScale = .auto

    @Option(help: "The int8 model file to write (.safetensors).")
    var out: String

    @Flag(help: "Overwrite --out.")
    var force = false

    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    @OptionGroup var imageOptions: ImageOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        guard maxError > 0 && maxError.isFinite else {
            throw ValidationError("--max-error must be positive and finite")
        }
        guard !out.isEmpty else { throw ValidationError("--out must name a file") }
        if let outputStride, ![8, 16, 32].contains(outputStride) {
            throw ValidationError("--output-stride must be 8, 16 or 32")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try Failure.refuseColliding(outputs: [out], options: "--out", inputs: [(model, "the model to quantize")])
        try Failure.refuseExisting([out], force: force)
        let all = try Dataset.images([images])
        guard !all.isEmpty else { throw Failure("\(images) holds no PNG or JPEG images") }
        let samples = (0..<min(limit, all.count)).map { all[$0 * all.count / min(limit, all.count)] }
        let quantizer: ModelQuantizer
        do {
            quantizer = try ModelQuantizer(ModelLoader.file(path: model, checkpoint: checkpoint.options()))
        } catch {
            throw Failure(naming: model, error)
        }
        func segmenter(_ calibration: Calibration?) throws -> Segmenter {
            do {
                var segmenter = try Segmenter(model: quantizer.model, outputStride: outputStride, scale: scale,
                                              context: EngineContext(threads: threads ?? 0, calibration: calibration))
                imageOptions.apply(to: &segmenter)
                return segmenter
            } catch let error as UnsupportedStride {
                throw Failure(naming: model, error)
            }
        }
        /// Each sample's classes, from passes with `segmenter`.
        func classes(_ segmenter: Segmenter, _ label: String) throws -> [[Int32]] {
            let progress = ProgressBar(total: samples.count, label: label)
            defer { progress.finish() }
            return try samples.enumerated().map { index, path in
                let result: SegmentationResult
                do {
                    let decoded = try segmenter.read(path)
                    result = try segmenter.segment(decoded.image, sourceWidth: decoded.sourceWidth,
                                                   sourceHeight: decoded.sourceHeight, name: path)
                } catch {
                    throw imageOptions.explain(error)
                }
                progress.update(index + 1)
                return result.labels
            }
        }

        let ranges = Calibration(.ranges)
        _ = try classes(segmenter(ranges), "calibrate")
        let quantized = quantizer.quantize(from: ranges)
        let errors = Calibration(.errors)
        let float32 = try classes(segmenter(errors), "compare layers")
        let kept = quantizer.keepFloat32(where: errors, maximumError: maxError).filter { $0.error != nil && !$0.int8 }
        let int8Layers = quantized - kept.count
        guard int8Layers > 0 else {
            throw Failure("\(model): no convolution stays within --max-error \(maxError) in int8; nothing written")
        }
        let int8 = try classes(segmenter(nil), "compare classes")
        let agreeing = zip(float32, int8).map { zip($0, $1).filter { $0 == $1 }.count }.reduce(0, +)
        let pixels = float32.map(\.count).reduce(0, +)

        let calibrated = counted(samples.count, "image")
        let stride = outputStride ?? quantizer.model.metadata.outputStride
        let summary = "\(int8Layers) of \(quantizer.candidates) dense convolutions in int8"
        let note = "\(summary); calibrated on \(calibrated) from \(images) at output stride \(stride), "
            + "max error \(maxError)"
        try SafeFile.write(try quantizer.encoded(calibrationNote: note), to: out, overwrite: force)
        print("wrote \(oneLine(out)): \(summary), calibrated on \(calibrated)")
        for report in kept {
            print("  float32: \(report.name) (int8 error \(String(format: "%.3f", report.error ?? 0)))")
        }
        print(String(format: "int8 and float32 classes agree on %.2f %% of %d pixels", 100 * Double(agreeing)
                     / Double(max(pixels, 1)), pixels))
        if !Int8Kernels.available {
            printToStandardError("segview: this CPU has no AVX-512 VNNI: the file runs in float32 here unless "
                                 + "--precision int8 is given")
        }
    }
}
