import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegTUI

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the forward pass of a model: warm-up, then min/median/max, GFLOP/s and peak memory.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Input size as HxW (a synthetic picture).")
    var size = "512x512"

    @Option(help: "Time on this PNG instead of a synthetic picture (--size is then the image's).")
    var image: String?

    @Option(help: "Timed runs after the warm-up.")
    var runs = 5

    @Option(help: "Untimed warm-up runs.")
    var warmup = 1

    @Flag(help: "One JSON object on stdout instead of text.")
    var json = false

    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    mutating func run() throws {
        engine.apply()
        let picture: RGBImage
        if let image {
            picture = try imageOptions.read(image)
            size = "\(picture.height)x\(picture.width)"
        } else {
            let sides = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard sides.count == 2, sides.allSatisfy({ $0 >= 8 && $0 <= 8192 }) else {
                throw ValidationError("--size must be HxW with sides from 8 to 8192, e.g. 360x480")
            }
            picture = benchImage(height: sides[0], width: sides[1])
        }
        let parts = [picture.height, picture.width]
        guard runs >= 1, warmup >= 0 else { throw ValidationError("--runs must be at least 1") }
        let (network, stride) = try modelOptions.load()
        let meta = network.metadata
        let input = Normalization(meta).tensor(from: picture)

        for _ in 0..<warmup { _ = network.predict(input, outputStride: stride) }
        BufferPool.shared.resetPeak()
        var times: [Double] = []
        for _ in 0..<runs {
            Counters.reset()
            var clock = Stopwatch()
            _ = network.predict(input, outputStride: stride)
            times.append(clock.lap())
        }
        times.sort()
        let median = times[times.count / 2]
        let report: [String: Any] = [
            "model": modelOptions.model, "architecture": network.name(outputStride: stride), "backbone": network.metadata.backbone,
            "height": parts[0], "width": parts[1], "output_stride": stride, "threads": Parallel.threads,
            "blas_core": Parallel.blasCore, "runs": runs,
            "min_ms": times[0], "median_ms": median, "max_ms": times[times.count - 1],
            "gflop": Counters.flop / 1e9, "gflop_in_bounds": Counters.flopInBounds / 1e9,
            "gflops": Counters.flop / 1e6 / median,
            "weights_mb": Double(network.parameterCount * 4) / 1e6,
            "activation_peak_mb": Double(BufferPool.shared.peakBytes) / 1e6,
            "peak_rss_mb": Double(peakResidentBytes()) / 1e6,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(modelOptions.model): \(network.name(outputStride: stride)) \(network.metadata.backbone), \(size), output stride \(stride), \(Parallel.threads) threads (OpenBLAS \(Parallel.blasCore))")
        print(String(format: "forward: min %.1f ms, median %.1f ms, max %.1f ms over %d runs", times[0], median, times[times.count - 1], runs))
        print(String(format: "work: %.1f GFLOP (%.1f in bounds), %.0f GFLOP/s", Counters.flop / 1e9, Counters.flopInBounds / 1e9, Counters.flop / 1e6 / median))
        print(String(format: "memory: weights %.1f MB, activation peak %.1f MB, process peak RSS %.1f MB",
                     Double(network.parameterCount * 4) / 1e6, Double(BufferPool.shared.peakBytes) / 1e6, Double(peakResidentBytes()) / 1e6))
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
