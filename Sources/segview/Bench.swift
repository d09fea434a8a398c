import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the forward pass of a model: warm-up, then min/median/max, GFLOP/s and peak memory.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Input size as HxW (a synthetic picture, run at this size whatever --scale says).")
    var size = SizeArgument(512, 512)

    @Option(help: "Time on this PNG or JPEG at its working size (--scale) instead of a synthetic picture.")
    var image: String?

    @Option(help: "Timed runs after the warm-up.")
    var runs = 5

    @Option(help: "Untimed warm-up runs.")
    var warmup = 1

    @Flag(help: "Also time one more forward pass kernel by kernel and show where the time goes.")
    var profile = false

    @Flag(help: "With --profile: a line per kernel kind and layer shape (input -> output channels, input size, stride, dilation).")
    var byShape = false

    @Flag(help: "One JSON object on stdout instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Turn a kernel path off, for A/B runs (repeatable): winograd, tapwise, own-gemm.",
                               valueName: "path"))
    var without: [KernelPath] = []

    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        try modelOptions.requireOne("bench")
        guard size.within(8...8192) else {
            throw ValidationError("--size must be HxW with sides from 8 to 8192, e.g. 360x480")
        }
        guard runs >= 1, warmup >= 0 else { throw ValidationError("--runs must be at least 1, --warmup at least 0") }
        guard profile || !byShape else { throw ValidationError("--by-shape refines --profile: give both") }
    }

    mutating func run() throws {
        let segmenter = try modelOptions.segmenter(imageOptions, engine, kernels: without.reduce(into: KernelChoices()) {
            $1.turnOff(&$0)
        })
        let network = segmenter.model, stride = segmenter.outputStride, context = segmenter.context
        let input: Tensor
        if let image {
            let decoded: (image: RGBImage, sourceWidth: Int, sourceHeight: Int)
            do {
                decoded = try segmenter.read(image)
            } catch {
                throw imageOptions.explain(error)
            }
            input = try segmenter.input(for: decoded.image, sourceWidth: decoded.sourceWidth,
                                        sourceHeight: decoded.sourceHeight, name: image)
            size = SizeArgument(input.height, input.width)
        } else {
            input = Normalization(network.metadata).tensor(from: benchImage(height: size.first, width: size.second),
                                                                  in: context)
        }
        let parts = [input.height, input.width]

        let augmentation = segmenter.augmentation
        for _ in 0..<warmup { _ = augmentation.predict(network, input, outputStride: stride) }
        context.pool.resetPeak()
        // Memory of the passes themselves: the loaded weights are resting memory, measured after
        // the warm-up with the pool's idle buffers returned; loading the file's peak is left out.
        context.pool.trim()
        let restingBytes = residentBytes()
        resetPeakResident()
        // The trim gave the pool's buffers back: after a warm-up, one more pass takes them again, so
        // that no timed pass pays for their page faults (the first did, and the median of three
        // runs was then the slower of the other two).
        if warmup > 0 { _ = augmentation.predict(network, input, outputStride: stride) }
        var times: [Double] = []
        for _ in 0..<runs {
            context.counters.reset()
            var clock = Stopwatch()
            _ = augmentation.predict(network, input, outputStride: stride)
            times.append(clock.lap())
        }
        times.sort()
        let median = times[times.count / 2]
        let (flop, flopInBounds) = (context.counters.flop, context.counters.flopInBounds)  // of one pass, before the profiled one
        var kernels: [(kind: String, calls: Int, ms: Double, gflop: Double)] = []
        if profile {
            // A context of its own: the timed passes above pay nothing for profiling.
            let profiled = EngineContext(threads: context.threads, kernels: context.kernels,
                                         profile: Profile(byShape: byShape))
            let profiledInput = input.copy(to: profiled)
            _ = network.predict(profiledInput, outputStride: stride)  // fills the new context's pool
            profiled.profile!.reset()
            var clock = Stopwatch()
            _ = network.predict(profiledInput, outputStride: stride)
            let total = clock.lap()
            kernels = profiled.profile!.entries.map { ($0.key, $0.value.calls, $0.value.seconds * 1000, $0.value.flop / 1e9) }
                .sorted { $0.ms > $1.ms }
            kernels.append(("(between kernels)", 0, max(0, total - kernels.reduce(0) { $0 + $1.ms }), 0))
        }
        var report: [String: Any] = [
            "model": modelOptions.model, "architecture": network.name(outputStride: stride), "backbone": network.metadata.backbone,
            "height": parts[0], "width": parts[1], "output_stride": stride, "threads": context.threads,
            "blas_core": EngineContext.blasCore, "runs": runs, "tta": "\(augmentation)",
            "precision": network.metadata.precision.rawValue,
            "min_ms": times[0], "median_ms": median, "max_ms": times[times.count - 1],
            "gflop": flop / 1e9, "gflop_in_bounds": flopInBounds / 1e9, "gflops": flop / 1e6 / median,
            "weights_mb": Double(network.parameterCount * 4) / 1e6,
            "activation_peak_mb": Double(context.pool.peakBytes) / 1e6,
            "tensor_peak_mb": Double(context.pool.peakTensorBytes) / 1e6,
            "resting_rss_mb": Double(restingBytes) / 1e6,
            "forward_peak_rss_mb": Double(peakResidentBytes()) / 1e6,
        ]
        if profile {
            report["profile"] = kernels.map { ["kind": $0.kind, "calls": $0.calls, "ms": $0.ms, "gflop": $0.gflop] }
        }
        if json {
            try printJSON(report)
            return
        }
        print("\(modelOptions.model): \(segmenter.title), \(size), output stride \(stride), \(context.threads) threads "
              + "(OpenBLAS \(EngineContext.blasCore))")
        if !augmentation.isEmpty {
            print("test-time augmentation \(augmentation): \(augmentation.passes) forward passes per run")
        }
        print(String(format: "forward: min %.1f ms, median %.1f ms, max %.1f ms over %d runs", times[0], median, times[times.count - 1], runs))
        print(String(format: "work: %.1f GFLOP (%.1f in bounds), %.0f GFLOP/s", flop / 1e9, flopInBounds / 1e9, flop / 1e6 / median))
        print("memory: \(weightsAndActivationPeak(network, context.pool)); "
              + String(format: "process RSS %.1f MB at rest, peak %.1f MB during the passes",
                       Double(restingBytes) / 1e6, Double(peakResidentBytes()) / 1e6))
        if profile {
            let total = kernels.reduce(0) { $0 + $1.ms }
            print("profile of one more pass (\(String(format: "%.1f", total)) ms):")
            let width = max(22, kernels.map(\.kind.count).max() ?? 0)
            print("  " + "kernel".padding(toLength: width, withPad: " ", startingAt: 0) + "  calls        ms       %    GFLOP  GFLOP/s")
            for k in kernels {
                let rate = k.gflop > 0 ? String(format: "%8.0f", k.gflop / k.ms * 1000) : "        "
                let name = k.kind.padding(toLength: width, withPad: " ", startingAt: 0)
                print("  " + name + String(format: " %6d %9.1f %6.1f%% %8.2f", k.calls, k.ms, k.ms / total * 100, k.gflop) + " " + rate)
            }
        }
    }
}

/// A deterministic photo-like input (smooth gradients and edges), so runs are comparable.
func benchImage(height: Int, width: Int) -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = (y * width + x) * 3
            pixels[i] = UInt8((x * 255) / max(width - 1, 1))
            pixels[i + 1] = UInt8((y * 255) / max(height - 1, 1))
            pixels[i + 2] = ((x / 16 + y / 16) % 2 == 0) ? 200 : 40
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}
