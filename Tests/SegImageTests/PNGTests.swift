import Foundation
import SegImage
import XCTest

final class PNGTests: XCTestCase {
    var fixtures: URL { Bundle.module.url(forResource: "png", withExtension: nil, subdirectory: "Fixtures")! }
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-png-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Gray 1-16 bit, gray+alpha, RGB, RGBA, palette with transparency, interlaced: all decode to
    /// the RGB8 pixels tools/png_fixtures.py says they hold (16-bit rounded, alpha dropped).
    func testEveryColourTypeDecodesToItsPixels() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: fixtures.path).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(names.count, 18)
        for name in names.sorted() {
            let url = fixtures.appendingPathComponent(name)
            let image = try PNG.read(url.path)
            XCTAssertEqual([image.width, image.height, image.channels], [13, 7, 3], name)
            let expected = try [UInt8](Data(contentsOf: url.deletingPathExtension().appendingPathExtension("rgb")))
            XCTAssertEqual(image.pixels, expected, name)
        }
    }

    func testLabelMapsDecodeToIndicesNotColours() throws {
        for name in ["palette1", "palette4", "palette8", "palette4_interlaced", "gray1", "gray4", "gray8", "labels16"] {
            let url = fixtures.appendingPathComponent(name + ".png")
            let labels = try PNG.readLabels(url.path)
            XCTAssertEqual(labels.channels, 1, name)
            let expected = try [UInt8](Data(contentsOf: url.deletingPathExtension().appendingPathExtension("index")))
            XCTAssertEqual(labels.pixels, expected, name)
        }
        XCTAssertThrowsError(try PNG.readLabels(fixtures.appendingPathComponent("rgb8.png").path)) { error in
            XCTAssertTrue("\(error)".contains("gray or palette"), "\(error)")
        }
        // A 16-bit map's samples are its labels (they were cut to their high byte: label 3 read 0);
        // one past 255 is refused, not wrapped.
        XCTAssertThrowsError(try PNG.readLabels(fixtures.appendingPathComponent("gray16.png").path)) { error in
            XCTAssertTrue("\(error)".contains("of a 16-bit label map is past 255"), "\(error)")
        }
    }

    func testWriteReadRoundTripForGrayRGBAndRGBA() throws {
        for channels in [1, 3, 4] {
            let pixels = (0..<(11 * 5 * channels)).map { UInt8(($0 * 53) % 256) }
            let image = RGBImage(width: 11, height: 5, channels: channels, pixels: pixels)
            let path = scratch.appendingPathComponent("round\(channels).png").path
            try PNG.write(image, to: path)
            let back = try PNG.read(path)
            // Reading always gives RGB: gray is replicated, alpha dropped.
            let expected: [UInt8] = (0..<55).flatMap { i -> [UInt8] in
                channels == 1 ? Array(repeating: pixels[i], count: 3) : Array(pixels[i * channels..<i * channels + 3])
            }
            XCTAssertEqual(back.pixels, expected, "\(channels) channels")
        }
    }

    /// A 60-byte PNG that declares 100000 x 100000 pixels (40 GB decoded) is refused from its header.
    func testDecompressionBombIsRefusedBeforeDecoding() throws {
        func crc32(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return ~crc
        }
        func chunk(_ kind: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(kind.utf8) + body
            return withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + typed
                + withUnsafeBytes(of: crc32(typed).bigEndian, Array.init)
        }
        let side = withUnsafeBytes(of: UInt32(100_000).bigEndian, Array.init)
        let bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", side + side + [8, 2, 0, 0, 0])
            + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
        let bomb = scratch.appendingPathComponent("bomb.png")
        try Data(bytes).write(to: bomb)
        XCTAssertThrowsError(try ImageFile.read(bomb.path)) { error in
            XCTAssertEqual((error as? ImageError)?.reason, "image is 100000x100000, more than the limit of 100000000 pixels")
        }
    }

    func testErrorsNameTheFileAndTheReason() throws {
        let text = scratch.appendingPathComponent("notes.png")
        try Data("hello".utf8).write(to: text)
        XCTAssertThrowsError(try PNG.read(text.path)) { error in
            XCTAssertEqual(error as? ImageError, ImageError(path: text.path, reason: "not a PNG file (bad signature)"))
        }
        let truncated = fixtures.appendingPathComponent("truncated.bad").path
        XCTAssertThrowsError(try PNG.read(truncated)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(truncated + ": "), message)
            XCTAssertGreaterThan(message.count, truncated.count + 5, "libpng's reason is kept: \(message)")
        }
        // Cut inside the image data: not libpng's bare "Read Error" but where the file ends.
        let whole = try Data(contentsOf: fixtures.appendingPathComponent("rgb8.png"))
        let cut = scratch.appendingPathComponent("cut.png")
        try whole.prefix(whole.count - 30).write(to: cut)
        XCTAssertThrowsError(try PNG.read(cut.path)) { error in
            XCTAssertEqual("\(error)", "\(cut.path): truncated: the file ends after \(whole.count - 30) bytes, inside the image data")
        }
        XCTAssertThrowsError(try PNG.read(scratch.appendingPathComponent("missing.png").path)) { error in
            XCTAssertTrue("\(error)".contains("No such file"), "\(error)")
        }
        XCTAssertThrowsError(try PNG.read(fixtures.appendingPathComponent("rgb8.png").path, maxPixels: 90)) { error in
            XCTAssertTrue("\(error)".contains("13x7"), "\(error)")
        }
    }

    func testWritesNeverOverwriteWithoutPermissionAndLeaveNoPartialFiles() throws {
        let image = RGBImage(width: 2, height: 2, filledWith: 7)
        let path = scratch.appendingPathComponent("mask.png").path
        try Data("precious".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try PNG.write(image, to: path)) { error in
            XCTAssertTrue("\(error)".contains("already exists"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "precious")
        try PNG.write(image, to: path, overwrite: true)
        XCTAssertEqual(try PNG.read(path).pixels, Array(repeating: 7, count: 12))

        let missingDirectory = scratch.appendingPathComponent("no/such/dir/out.png").path
        XCTAssertThrowsError(try PNG.write(image, to: missingDirectory))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["mask.png"],
                       "no temporary file is left behind")
    }
}
