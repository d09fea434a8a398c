import Dispatch
import Foundation
import SegEngine
import SegImage
import SegModels

/// An output stride the model's weights cannot run at (an FCN-32s file has no skip scores).
public struct UnsupportedStride: Error, CustomStringConvertible, Equatable {
    public let architecture: String
    public let stride: Int
    public let available: [Int]
    public var description: String {
        "output stride \(stride) is not available for \(architecture); choose one of \(available)"
    }
}

/// A working size whose forward pass is estimated to need more memory than the limit allows.
public struct MemoryLimitExceeded: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let width: Int
    public let height: Int
    public let neededBytes: Int
    public let limitBytes: Int
    /// The largest short side whose pass fits the limit, at the same aspect ratio (0: none does).
    public let fittingShortSide: Int

    public var description: String {
        let advice = fittingShortSide > 0
            ? "use --scale auto or a smaller --scale (at most \(fittingShortSide) here)"
            : "no --scale fits an image of this shape: crop it"
        return String(format: "%@: working size %dx%d would need about %.1f GB for the forward pass (estimated from "
                          + "two small passes), more than the limit of %.1f GB (--max-memory); %@", path, width, height,
                      Double(neededBytes) / 1e9, Double(limitBytes) / 1e9, advice)
    }
}

/// What a forward pass takes from the buffer pool beyond the weights, as a function of the working
/// size's pixels: activations and kernel scratch grow with them from a fixed part, and the result
/// keeps the input, scores, probabilities and labels.
public struct PassCost: Equatable {
    public let fixedBytes: Double
    public let bytesPerPixel: Double
    /// A second bound, for thin sizes: at least this much per pixel, whatever the line says.
    public var leastBytesPerPixel = 0.0

    public func bytes(pixels: Int) -> Int {
        Int(max(fixedBytes + bytesPerPixel * Double(pixels), leastBytesPerPixel * Double(pixels)))
    }
}

/// Pass costs measured on first use, one per kind of probe (`Segmenter.ProbeShape`).
private final class PassCostCache: @unchecked Sendable {
    private let lock = NSLock()
    private var costs: [Segmenter.ProbeShape: PassCost] = [:]

    func value(_ shape: Segmenter.ProbeShape, _ measure: () -> PassCost) -> PassCost {
        lock.lock()
        defer { lock.unlock() }
        if let cost = costs[shape] { return cost }
        let measured = measure()
        costs[shape] = measured
        return measured
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return costs.count
    }
}

/// A model, the output stride it runs at and the working resolution: the one road from an image
/// file to a `SegmentationResult` that every command and the viewer take.
public struct Segmenter {
    public let model: SegmentationModel
    public let outputStride: Int
    public private(set) var scale: WorkingScale
    /// Where the forward passes run: threads, kernel choices and the buffer pool. Segmenters that
    /// share one must not run at the same time.
    public let context: EngineContext
    /// Images (from their header) and working sizes with more pixels are refused: decoding's and
    /// the forward pass's memory grow with them.
    public var maxPixels: Int
    /// The estimates, made once per probe shape and shared by the copies `at(_:)` makes: the probe
    /// passes' peaks vary a little with how the threads interleave, and a size offered as fitting must fit.
    private let passCost = PassCostCache()
    /// Keep what a truncated or corrupt JPEG decodes to instead of refusing it.
    public var allowTruncated = false
    /// Passes estimated to need more bytes than this are refused before they start (0: no limit).
    public var maxMemory = Segmenter.defaultMaxMemory
    /// Extra passes (mirrored, rescaled) whose probabilities are averaged with the plain one.
    public var augmentation: TestTimeAugmentation = []

    /// Three quarters of the machine's physical memory.
    public static var defaultMaxMemory: Int {
        Int(Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE))) * 0.75)
    }

    /// Working sizes up to this many pixels, with no side past `unestimatedSide`, are run without
    /// an estimate: their passes take well under a gigabyte with any model here.
    static let unestimatedPixels = 1 << 20
    static let unestimatedSide = 2048
    /// Working sizes with a shorter side are probed at that short side: padding (FCN's 100 pixels,
    /// a dilated convolution's) then outweighs the pixels, which square probes do not see.
    static let thinSide = 128

    /// `outputStride` nil: the stride the model was trained at.
    public init(model: SegmentationModel, outputStride: Int? = nil, scale: WorkingScale = .auto,
                maxPixels: Int = ImageFile.defaultMaxPixels, context: EngineContext = EngineContext()) throws {
        let stride = outputStride ?? model.metadata.outputStride
        guard model.outputStrides.contains(stride) else {
            throw UnsupportedStride(architecture: model.name(outputStride: model.metadata.outputStride), stride: stride,
                                    available: model.outputStrides)
        }
        self.model = model
        self.outputStride = stride
        self.scale = scale
        self.maxPixels = maxPixels
        self.context = context
    }

    /// The same segmenter at another working resolution.
    public func at(_ scale: WorkingScale) -> Segmenter {
        var copy = self
        copy.scale = scale
        return copy
    }

    /// The network's name as run here and its backbone ("fcn8s vgg16", "deeplabv3plus resnet").
    public var title: String {
        "\(model.name(outputStride: outputStride)) \(model.metadata.backbone)"
            + (model.metadata.precision == .int8 ? " int8" : "")
    }

    /// The size a `width` x `height` image is run at.
    public func workingSize(width: Int, height: Int) -> (width: Int, height: Int) {
        scale.workingSize(width: width, height: height, resizeSize: model.metadata.resizeSize)
    }

    /// Decodes an image file: a JPEG much larger than the working size is decoded straight at a
    /// fraction of its size, unless `fullSize` (an overlay is written at the source's size).
    public func read(_ path: String, fullSize: Bool = false)
        throws -> (image: RGBImage, sourceWidth: Int, sourceHeight: Int) {
        let target = fullSize ? nil : scale.targetShortSide(resizeSize: model.metadata.resizeSize)
        let decoded = try ImageFile.read(path, maxPixels: maxPixels, shortSide: target ?? 0,
                                         allowTruncated: allowTruncated)
        return (decoded.image, decoded.fullWidth, decoded.fullHeight)
    }

    /// The network input for `image`, a picture of a `sourceWidth` x `sourceHeight` source
    /// (it may have been decoded smaller): brought to the working size (area average to shrink,
    /// bilinear to enlarge) and normalised as the model's metadata says.
    public func input(for image: RGBImage, sourceWidth: Int, sourceHeight: Int, name: String = "image")
        throws -> Tensor {
        let size = workingSize(width: sourceWidth, height: sourceHeight)
        guard size.width * size.height <= maxPixels else {
            throw ImageError(path: name, reason: "working size \(size.width)x\(size.height) is more than the limit of "
                                + "\(maxPixels) pixels")
        }
        if maxMemory > 0, let needed = neededBytes(width: size.width, height: size.height), needed > maxMemory {
            throw MemoryLimitExceeded(path: name, width: size.width, height: size.height, neededBytes: needed,
                                      limitBytes: maxMemory,
                                      fittingShortSide: fittingShortSide(below: min(size.width, size.height),
                                                                         sourceWidth: sourceWidth,
                                                                         sourceHeight: sourceHeight))
        }
        let normalization = Normalization(model.metadata)
        if (size.width, size.height) == (image.width, image.height) {
            return normalization.tensor(from: image, in: context)
        }
        if size.width <= image.width && size.height <= image.height {
            return normalization.tensor(from: image.downscaled(width: size.width, height: size.height), in: context)
        }
        return resize(normalization.tensor(from: image, in: context), height: size.height, width: size.width,
                      mode: .bilinear(alignCorners: false))
    }

    /// The estimated bytes of a pass at `width` x `height`, or nil for a size run without an estimate.
    /// The largest pass decides: test-time augmentation's 1.25x scale has 1.5625 times the pixels.
    func neededBytes(width: Int, height: Int) -> Int? {
        let scale = augmentation.contains(.scales) ? TestTimeAugmentation.extraScales.max()! : 1
        let largest = Int(Double(width * height) * scale * scale)
        guard largest > Self.unestimatedPixels || Double(max(width, height)) * scale > Double(Self.unestimatedSide)
        else { return nil }
        return estimatedPassCost(width: width, height: height).bytes(pixels: largest)
    }

    /// The largest short side under `side` whose working size for the source fits `maxMemory`, by
    /// the same estimate the pass is checked with (0: none does). A binary search: the cost grows
    /// with the side, and each candidate's own estimate counts (a thin one's probes differ).
    func fittingShortSide(below side: Int, sourceWidth: Int, sourceHeight: Int) -> Int {
        func fits(_ side: Int) -> Bool {
            let size = WorkingScale.shortSide(side).workingSize(width: sourceWidth, height: sourceHeight,
                                                                resizeSize: nil)
            return (neededBytes(width: size.width, height: size.height) ?? 0) <= maxMemory
        }
        var (fitting, tooBig) = (0, side)
        while tooBig - fitting > 1 {
            let middle = (fitting + tooBig) / 2
            if fits(middle) { fitting = middle } else { tooBig = middle }
        }
        return fitting
    }

    /// What the probe passes of an estimate look like: squares, or for a working size with a short
    /// side under `thinSide`, that short side (across or down) with two lengths.
    struct ProbeShape: Hashable {
        var thinSide: Int?
        var wide = false
        /// The thin probes' lengths: as many pixels as the squares', but at most a quarter and a half
        /// of the working length, so that probing never costs more than the pass it guards.
        var lengths: [Int] = []

        init(width: Int, height: Int) {
            guard min(width, height) < Segmenter.thinSide else { return }
            let side = max(1, min(width, height)), length = max(width, height)
            thinSide = side
            wide = width > height
            let short = max(side + 1, min(64 * 64 / side, length / 4))
            lengths = [short, max(short + 1, min(128 * 128 / side, length / 2))]
        }

        /// The probes' sizes: 64x64 and 128x128, or the thin side across `lengths`.
        var sizes: [(width: Int, height: Int)] {
            guard let thinSide else { return [(64, 64), (128, 128)] }
            return lengths.map { wide ? ($0, thinSide) : (thinSide, $0) }
        }
    }

    /// The cost of a pass at this stride for working sizes shaped like `width` x `height`: the
    /// buffer pool's peaks during two probe passes (in a context of their own) give the fixed part
    /// and the part per pixel, extrapolated (kernels cap some scratch, and padding's share shrinks
    /// as sizes grow, so large sizes come out high, the safe side); the input, scores,
    /// probabilities and labels the result keeps are added per pixel.
    public func estimatedPassCost(width: Int, height: Int) -> PassCost {
        let shape = ProbeShape(width: width, height: height)
        return passCost.value(shape) { measurePassCost(shape) }
    }

    /// How many probe shapes have been measured (by this segmenter or a copy of it).
    var measuredEstimates: Int { passCost.count }

    private func measurePassCost(_ shape: ProbeShape) -> PassCost {
        let sizes = shape.sizes
        let (small, large) = (Double(sizes[0].width * sizes[0].height), Double(sizes[1].width * sizes[1].height))
        func peaks(_ size: (width: Int, height: Int)) -> (all: Double, tensors: Double) {
            let probe = EngineContext(threads: context.threads, kernels: context.kernels)
            _ = model.predict(Tensor(channels: 3, height: size.height, width: size.width, repeating: 0, in: probe),
                              outputStride: outputStride)
            return (Double(probe.pool.peakBytes), Double(probe.pool.peakTensorBytes))
        }
        /// The line through two peaks: fixed part and slope.
        func line(_ atSmall: Double, _ atLarge: Double) -> (fixed: Double, slope: Double) {
            let slope = max(0, atLarge - atSmall) / (large - small)
            return (max(0, atSmall - slope * small), slope)
        }
        let (first, second) = (peaks(sizes[0]), peaks(sizes[1]))
        let kept = Double(4 * (3 + 2 * model.metadata.numClasses + 1))
        // The peak of all buffers may be scratch at one size and feature maps at the other (small
        // probes of a small model on OpenBLAS's paths: the line through them gave 0.6x the pass at
        // 384x256), so the estimate also bounds it by the most scratch beside the feature maps
        // plus the feature maps' own line, and takes the larger part of each.
        let all = line(first.all, second.all), tensors = line(first.tensors, second.tensors)
        let scratch = max(first.all - first.tensors, second.all - second.tensors)
        var cost = PassCost(fixedBytes: max(all.fixed, scratch + tensors.fixed),
                            bytesPerPixel: max(all.slope, tensors.slope) + kept)
        if shape.thinSide != nil {
            // A thin pass is extrapolated far along its length, where the kernels' scratch jumps with
            // their tiling (the line alone came out under FCN's peak on 1x999999 pixels): the larger cost
            // per pixel of the two probes bounds it too.
            cost.leastBytesPerPixel = max(first.all / small, second.all / large) + kept
        }
        return cost
    }

    /// A NaN or infinite score would make an arbitrary mask; it means broken weights or metadata
    /// (an overflow no finite weight check catches), so it is an error, which names the first layer
    /// that produced a non-finite value (found by a second, watched pass on the same input).
    func checkFinite(_ scores: Tensor, input: Tensor, name: String) throws {
        guard let index = (0..<scores.count).first(where: { !scores.data[$0].isFinite }) else { return }
        let (channel, pixel) = index.quotientAndRemainder(dividingBy: scores.plane)
        let (x, y) = (pixel % scores.width, pixel / scores.width)
        let watched = EngineContext(threads: context.threads, kernels: context.kernels, watchesNumerics: true)
        _ = model.predict(input.copy(to: watched), outputStride: outputStride)
        let origin = watched.firstNonFinite.map { "the first layer with a non-finite output is \($0)" }
            ?? "no layer's output has one (an operation between layers made it)"
        throw ImageError(path: name, reason: "the network's score for class \(channel) at pixel (\(x), \(y)) is "
                         + "\(scores.data[index]); \(origin): the model's weights or metadata are broken")
    }

    /// Runs the network on `image` at the working size.
    public func segment(_ image: RGBImage, sourceWidth: Int? = nil, sourceHeight: Int? = nil,
                        name: String = "image") throws -> SegmentationResult {
        let (width, height) = (sourceWidth ?? image.width, sourceHeight ?? image.height)
        let tensor = try input(for: image, sourceWidth: width, sourceHeight: height, name: name)
        let start = DispatchTime.now().uptimeNanoseconds
        let prediction = augmentation.predict(model, tensor, outputStride: outputStride)
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        try checkFinite(prediction.scores, input: tensor, name: name)
        return SegmentationResult(prediction: prediction, milliseconds: milliseconds, sourceWidth: width,
                                  sourceHeight: height)
    }
}
