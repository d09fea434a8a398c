import Foundation
import SegEngine
import SegImage

/// The files one result may be written to; nil: not wanted.
public struct OutputFiles: Equatable, Sendable {
    /// Class colours, PNG.
    public var mask: String?
    /// Class colours blended over the image, PNG.
    public var overlay: String?
    /// The border map: the model's own, or the mask's boundaries, PNG.
    public var border: String?
    /// Class ids as 8-bit grey, PNG.
    public var ids: String?
    /// Class scores, float32 .npy of shape [C, H, W].
    public var logits: String?

    public init(mask: String? = nil, overlay: String? = nil, border: String? = nil, ids: String? = nil,
                logits: String? = nil) {
        self.mask = mask
        self.overlay = overlay
        self.border = border
        self.ids = ids
        self.logits = logits
    }

    public var all: [String] { [mask, overlay, border, ids, logits].compactMap { $0 } }
}

/// Writes a result's files at the size of its source image: every file atomically (a temporary
/// file renamed into place), and an existing file is replaced only with `overwrite`.
public struct OutputWriter {
    public var palette: Palette
    public var borderColors: ValueMap
    public var overlayOpacity: Float
    public var overwrite: Bool

    public init(palette: Palette, borderColors: ValueMap = .grey, overlayOpacity: Float = 0.5,
                overwrite: Bool = false) {
        self.palette = palette
        self.borderColors = borderColors
        self.overlayOpacity = overlayOpacity
        self.overwrite = overwrite
    }

    /// Writes `files` at `width` x `height` (default: the result's source size). `image`, needed
    /// for the overlay, must be of that size. The files are a set: each is checked before any is
    /// written, and the new ones are removed again if a later one cannot be written.
    public func write(_ result: SegmentationResult, image: RGBImage?, to files: OutputFiles,
                      width: Int? = nil, height: Int? = nil) throws {
        let (width, height) = (width ?? result.sourceWidth, height ?? result.sourceHeight)
        if let path = files.overlay, image?.width != width || image?.height != height {
            throw ImageError(path: path, reason: "the overlay needs the image at \(width)x\(height)")
        }
        if let path = files.ids, result.scores.channels > 256 {
            throw ImageError(path: path, reason: "\(result.scores.channels) classes do not fit 8-bit class ids")
        }
        for path in files.all { try SafeFile.check(path, overwrite: overwrite) }
        let existing = Set(files.all.filter { path in var status = stat(); return lstat(path, &status) == 0 })
        var written: [String] = []
        func emit(_ path: String?, _ write: (String) throws -> Void) throws {
            guard let path else { return }
            try write(path)
            written.append(path)
        }
        do {
            let labels = result.labels(width: width, height: height)
            try emit(files.mask) {
                try PNG.write(palette.colorize(labels, width: width, height: height), to: $0, overwrite: overwrite)
            }
            if let image {
                try emit(files.overlay) {
                    try PNG.write(palette.overlay(labels, on: image, opacity: overlayOpacity), to: $0,
                                  overwrite: overwrite)
                }
            }
            try emit(files.border) {
                let map = result.borderMap(width: width, height: height, labels: labels)
                try PNG.write(borderColors.image(map, width: width, height: height), to: $0, overwrite: overwrite)
            }
            try emit(files.ids) {
                let ids = RGBImage(width: width, height: height, channels: 1, pixels: labels.map { UInt8($0) })
                try PNG.write(ids, to: $0, overwrite: overwrite)
            }
            try emit(files.logits) {
                try SafeFile.write(NumPyFile.encode(result.scores(width: width, height: height)), to: $0,
                                   overwrite: overwrite)
            }
        } catch {
            // What this call created goes again; a file it replaced (with `overwrite`) cannot come back.
            for path in written where !existing.contains(path) { unlink(path) }
            throw error
        }
    }
}
