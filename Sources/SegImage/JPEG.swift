import Foundation
import JPEGShim

/// JPEG through libjpeg(-turbo), via the C shim that owns its setjmp/longjmp error handling.
public enum JPEG {
    /// Decodes a JPEG (gray, YCbCr or RGB; baseline or progressive) to 8-bit RGB, turned upright
    /// by its EXIF orientation. `maxPixels` (0: none) refuses huge images before decoding them.
    public static func read(_ path: String, maxPixels: Int = 0) throws -> RGBImage {
        try read(path, contents: nil, maxPixels: maxPixels, shortSide: 0).image
    }

    /// Decodes at 1/2, 1/4 or 1/8 of the size where the short side stays at least `shortSide`
    /// (0: the full size) with libjpeg's DCT scaling, which skips most of the work for the pixels
    /// it leaves out; also gives the full, upright size. A truncated or corrupt file is an error
    /// unless `allowTruncated` (then libjpeg's grey fill stands for the missing rows).
    /// `contents`: the file's bytes when already read (a pipe), else nil.
    public static func read(_ path: String, contents: Data? = nil, maxPixels: Int, shortSide: Int,
                            allowTruncated: Bool = false) throws -> (image: RGBImage, fullWidth: Int, fullHeight: Int) {
        var image = seg_jpeg_image()
        var message = [CChar](repeating: 0, count: 512)
        let side = UInt32(clamping: max(0, shortSide))
        let status = withBytes(contents) { bytes, count in
            seg_jpeg_read(path, bytes, count, UInt64(maxPixels), side, allowTruncated ? 1 : 0, &image, &message,
                          message.count)
        }
        guard status == 0 else { throw ImageError(path: path, reason: String(cString: message)) }
        defer { seg_jpeg_free(&image) }
        let count = Int(image.width) * Int(image.height) * 3
        let picture = RGBImage(width: Int(image.width), height: Int(image.height),
                               pixels: Array(UnsafeBufferPointer(start: image.pixels, count: count)))
        return (picture, Int(image.full_width), Int(image.full_height))
    }
}

/// Calls `body` with `contents`' bytes and count, or (nil, 0) when there are none.
func withBytes<R>(_ contents: Data?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let contents, !contents.isEmpty else { return body(nil, 0) }
    return contents.withUnsafeBytes { body($0.baseAddress, $0.count) }
}

/// Pictures users point segview at: PNG or JPEG, told apart by their first bytes, not their name.
public enum ImageFile {
    public enum Format: String, Sendable { case png = "PNG", jpeg = "JPEG" }

    /// The default pixel budget: 100 megapixels (a 10000x10000 photo; 1.2 GB as float32 input).
    public static let defaultMaxPixels = 100_000_000

    /// Whether `path` is a name listed from a folder that was not UTF-8 there (U+FFFD stands for its
    /// bytes, so it names no file): reading it fails and says why; two such names may look alike.
    public static func isUnopenableName(_ path: String) -> Bool {
        var status = stat()
        return path.contains("\u{FFFD}") && !(stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG)
    }

    /// What is said of a file whose name `isUnopenableName`.
    public static let unopenableNameReason = "its name is not valid UTF-8 (shown with \u{FFFD}), which segview "
        + "cannot open; rename the file"

    /// The format of the file's content, or an error naming what it is not.
    public static func format(of path: String) throws -> Format {
        guard let file = fopen(path, "rb") else {
            throw ImageError.cannotOpen(path)
        }
        defer { fclose(file) }
        var magic = [UInt8](repeating: 0, count: 8)
        magic.removeLast(8 - fread(&magic, 1, 8, file))
        return try format(ofBytes: magic, path: path)
    }

    /// The format told by a file's first (up to 8) bytes.
    static func format(ofBytes magic: [UInt8], path: String) throws -> Format {
        let count = magic.count
        if count == 8 && magic == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if count >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF { return .jpeg }
        if count == 0 { throw ImageError(path: path, reason: "the file is empty") }
        let others: [(String, [UInt8])] = [("GIF", Array("GIF8".utf8)), ("BMP", Array("BM".utf8)), ("TIFF", [0x49, 0x49, 0x2A, 0]),
                                          ("TIFF", [0x4D, 0x4D, 0, 0x2A]), ("WebP", Array("RIFF".utf8))]
        if let (name, _) = others.first(where: { count >= $0.1.count && Array(magic.prefix($0.1.count)) == $0.1 }) {
            throw ImageError(path: path, reason: "a \(name) image; segview reads PNG and JPEG (convert it first)")
        }
        throw ImageError(path: path, reason: "not a PNG or JPEG image")
    }

    /// Decodes a PNG or JPEG to 8-bit RGB; images over `maxPixels` (0: no limit) are refused
    /// before decoding, with their size.
    public static func read(_ path: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try read(path, maxPixels: maxPixels, shortSide: 0).image
    }

    /// Decodes a PNG or JPEG no smaller than needed for a short side of `shortSide` pixels: a JPEG
    /// whose short side is 2, 4 or 8 times that is decoded at that fraction (DCT scaling), a PNG at
    /// its size. Also gives the full size, which outputs are written at. `-` is standard input;
    /// it, FIFOs and devices (`/dev/stdin`) are read once into memory and decoded from there.
    public static func read(_ path: String, maxPixels: Int, shortSide: Int, allowTruncated: Bool = false)
        throws -> (image: RGBImage, fullWidth: Int, fullHeight: Int) {
        let contents = try streamContents(path)
        let kind = try contents.map { try format(ofBytes: Array($0.prefix(8)), path: path) } ?? format(of: path)
        switch kind {
        case .png:
            let image = try PNG.read(path, contents: contents, maxPixels: maxPixels)
            return (image, image.width, image.height)
        case .jpeg:
            return try JPEG.read(path, contents: contents, maxPixels: maxPixels, shortSide: shortSide,
                                 allowTruncated: allowTruncated)
        }
    }

    /// The most a pipe may send: far more than any photo's file (`/dev/zero` must not fill memory).
    static let maximumStreamBytes = 1 << 30

    /// How long a FIFO may wait for a writer: opening one that nobody writes to blocks forever.
    static let fifoWriterTimeout = 30.0

    /// The bytes of standard input (`-`) or of a FIFO or device, which can be read only once; nil
    /// for a regular (or missing) file, which the decoders open themselves.
    static func streamContents(_ path: String, writerTimeout: Double = fifoWriterTimeout) throws -> Data? {
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            var status = stat()
            let kind = stat(path, &status) == 0 ? status.st_mode & S_IFMT : S_IFREG
            guard kind != S_IFREG && kind != S_IFDIR else { return nil }
            // Opened without blocking, so that a FIFO without a writer can be waited for with a limit.
            let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw ImageError.cannotOpen(path)
            }
            handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            if kind == S_IFIFO { try awaitWriter(descriptor, path: path, timeout: writerTimeout) }
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        }
        var data = Data()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                data.append(chunk)
                guard data.count <= maximumStreamBytes else {
                    throw ImageError(path: path, reason: "more than \(maximumStreamBytes >> 20) MB from a pipe")
                }
            }
        } catch let error as ImageError {
            throw error
        } catch {
            throw ImageError(path: path, reason: "read failed: \(error.localizedDescription)")
        }
        return data
    }

    /// Waits until the FIFO has data or its writer has come and gone; an error after `timeout` seconds.
    private static func awaitWriter(_ descriptor: Int32, path: String, timeout: Double) throws {
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                throw ImageError(path: path, reason: String(format: "a FIFO that nothing wrote to in %g s", timeout))
            }
            let ready = poll(&request, 1, Int32(min(left, 1) * 1000) + 1)
            if ready > 0 { return }
            if ready < 0 && errno != EINTR {
                throw ImageError(path: path, reason: "cannot wait for data: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Whether a directory entry looks like an image by name (directories are walked by name;
    /// the content still decides how each file is read).
    public static func hasImageExtension(_ name: String) -> Bool {
        ["png", "jpg", "jpeg", "jpe"].contains((name as NSString).pathExtension.lowercased())
    }
}
