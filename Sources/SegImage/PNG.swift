import Foundation
import PNGShim

/// An image file (or folder of them) that could not be read, processed or written, with the path and the
/// reason (libpng's, libjpeg's or ours).
public struct ImageError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(oneLine(path)): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// `path` could not be opened, for the reason `errno` gives. A name that is not UTF-8 on disk
    /// reaches segview with U+FFFD in place of its bytes (Swift's strings cannot hold them), so it
    /// is not found under the name segview has: that says to rename it.
    static func cannotOpen(_ path: String) -> ImageError {
        let failure = errno
        guard failure == ENOENT && ImageFile.isUnopenableName(path) else {
            return ImageError(path: path, reason: "cannot open: \(String(cString: strerror(failure)))")
        }
        return ImageError(path: path, reason: "cannot open: \(ImageFile.unopenableNameReason)")
    }
}

/// A file name as part of one line of a message: a newline or carriage return in it would begin a
/// line that reads like segview's own (the filter for terminals keeps newlines, lines need them).
public func oneLine(_ path: String) -> String {
    guard path.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return path }
    return path.unicodeScalars.map { $0 == "\n" ? "\\n" : $0 == "\r" ? "\\r" : String($0) }.joined()
}

/// PNG through libpng (via the C shim, which owns libpng's setjmp/longjmp error handling).
public enum PNG {
    /// Decodes any PNG (gray, gray+alpha, RGB, RGBA, palette; 1-16 bits; interlaced) to 8-bit RGB:
    /// alpha is dropped and 16-bit samples are scaled (rounded) to 8 bits.
    /// `contents`: the file's bytes when already read (a pipe), else nil.
    public static func read(_ path: String, contents: Data? = nil, maxPixels: Int = 0) throws -> RGBImage {
        try decode(path, contents: contents, mode: SEG_PNG_RGB, maxPixels: maxPixels)
    }

    /// Decodes a label map: one byte per pixel, the palette index or the gray level, never a colour.
    public static func readLabels(_ path: String, maxPixels: Int = 0) throws -> RGBImage {
        try decode(path, contents: nil, mode: SEG_PNG_INDEX, maxPixels: maxPixels)
    }

    private static func decode(_ path: String, contents: Data?, mode: seg_png_mode, maxPixels: Int) throws -> RGBImage {
        var image = seg_png_image()
        var message = [CChar](repeating: 0, count: 512)
        let status = withBytes(contents) { bytes, count in
            seg_png_read(path, bytes, count, mode, UInt64(maxPixels), &image, &message, message.count)
        }
        guard status == 0 else {
            throw ImageError(path: path, reason: String(cString: message))
        }
        defer { seg_png_free(&image) }
        let count = Int(image.width) * Int(image.height) * Int(image.channels)
        return RGBImage(width: Int(image.width), height: Int(image.height), channels: Int(image.channels),
                        pixels: Array(UnsafeBufferPointer(start: image.pixels, count: count)))
    }

    /// `image` encoded as PNG (for a terminal's inline images); `fast` compresses less, in about
    /// two thirds of the time.
    public static func encode(_ image: RGBImage, fast: Bool = false) throws -> Data {
        // An unlinked temporary file: the encoder writes to a descriptor.
        guard let file = tmpfile() else { throw ImageError(path: "(memory)", reason: String(cString: strerror(errno))) }
        defer { fclose(file) }
        let descriptor = fileno(file)
        var message = [CChar](repeating: 0, count: 512)
        let status = image.pixels.withUnsafeBufferPointer {
            seg_png_write(descriptor, $0.baseAddress, UInt32(image.width), UInt32(image.height),
                          UInt32(image.channels), fast ? 1 : 0, &message, message.count)
        }
        if status != 0 { throw ImageError(path: "(memory)", reason: String(cString: message)) }
        let size = Int(lseek(descriptor, 0, SEEK_END))
        var data = Data(count: max(0, size))
        let read = data.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, size, 0) }
        guard read == size else { throw ImageError(path: "(memory)", reason: "could not read the encoded PNG back") }
        return data
    }

    /// Writes `image` (gray, RGB or RGBA) to `path`: encoded to a temporary file beside it and
    /// renamed into place, so a failure never leaves a partial file. An existing file is
    /// replaced only with `overwrite`.
    public static func write(_ image: RGBImage, to path: String, overwrite: Bool = false) throws {
        try SafeFile.write(to: path, overwrite: overwrite) { descriptor in
            var message = [CChar](repeating: 0, count: 512)
            let status = image.pixels.withUnsafeBufferPointer {
                seg_png_write(descriptor, $0.baseAddress, UInt32(image.width), UInt32(image.height),
                              UInt32(image.channels), 0, &message, message.count)
            }
            if status != 0 { throw ImageError(path: path, reason: String(cString: message)) }
        }
    }
}
