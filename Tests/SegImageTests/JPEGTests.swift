import Foundation
@testable import SegImage
import XCTest

/// JPEG decoding (libjpeg-turbo through the C shim) against Pillow's decodes made by tools/jpeg_fixtures.py.
final class JPEGTests: XCTestCase {
    func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/jpeg")!.path
    }

    func expected(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name)))) }

    /// Pillow bundles its own libjpeg-turbo build; decoders may round differently by a level or two.
    func assertClose(_ image: RGBImage, _ reference: [UInt8], _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(image.pixels.count, reference.count, name, file: file, line: line)
        let worst = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertLessThanOrEqual(worst, 3, "\(name): max difference \(worst)", file: file, line: line)
    }

    func testBaselineProgressiveAndGrayDecodeToRGB() throws {
        for name in ["baseline", "progressive", "gray"] {
            let image = try JPEG.read(fixture("\(name).jpg"))
            XCTAssertEqual([image.width, image.height, image.channels], [23, 17, 3], name)
            assertClose(image, try expected("\(name).rgb"), name)
        }
    }

    func testEveryEXIFOrientationIsTurnedUpright() throws {
        for value in 1...8 {
            let image = try JPEG.read(fixture("orientation\(value).jpg"))
            XCTAssertEqual([image.width, image.height], [23, 17], "orientation \(value) shows the picture upright")
            assertClose(image, try expected("orientation\(value).rgb"), "orientation \(value)")
            // The white bar sits at the top left whatever the camera's orientation was.
            XCTAssertGreaterThan(image.pixels[(2 * 23 + 3) * 3], 200, "orientation \(value)")
            XCTAssertLessThan(image.pixels[(15 * 23 + 20) * 3 + 2], 200, "orientation \(value)")
        }
    }

    func testUnsupportedAndBrokenFilesAreRefusedWithTheReason() {
        XCTAssertThrowsError(try JPEG.read(fixture("cmyk.jpg"))) { error in
            XCTAssertTrue("\(error)".contains("CMYK JPEGs are not supported"), "\(error)")
        }
        XCTAssertThrowsError(try JPEG.read(fixture("truncated_header.jpg"))) { error in
            XCTAssertTrue("\(error)".hasPrefix(fixture("truncated_header.jpg") + ": not a readable JPEG"), "\(error)")
        }
        // 600 scans of a few bytes each, every one a pass over the whole image (a decoding bomb).
        let scans = fixture("many_scans.jpg")
        XCTAssertThrowsError(try JPEG.read(scans, maxPixels: 0, shortSide: 0, allowTruncated: true)) { error in
            XCTAssertTrue("\(error)".hasSuffix("many_scans.jpg: not a readable JPEG: more than 500 progressive scans"),
                          "\(error)")
        }
    }

    func testPixelBudgetRefusesBeforeDecoding() {
        XCTAssertThrowsError(try ImageFile.read(fixture("baseline.jpg"), maxPixels: 100)) { error in
            XCTAssertEqual((error as? ImageError)?.reason, "image is 23x17, more than the limit of 100 pixels")
        }
        XCTAssertNoThrow(try ImageFile.read(fixture("baseline.jpg"), maxPixels: 23 * 17))
    }

    func testFormatIsChosenByContentNotName() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-jpeg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let misnamed = scratch.appendingPathComponent("photo.png")
        try FileManager.default.copyItem(atPath: fixture("baseline.jpg"), toPath: misnamed.path)
        XCTAssertEqual(try ImageFile.format(of: misnamed.path), .jpeg)
        assertClose(try ImageFile.read(misnamed.path), try expected("baseline.rgb"), "JPEG named .png")
        let text = scratch.appendingPathComponent("notes.jpg")
        try Data("hello".utf8).write(to: text)
        XCTAssertThrowsError(try ImageFile.read(text.path)) { error in
            XCTAssertEqual((error as? ImageError)?.reason, "not a PNG or JPEG image")
        }
        let empty = scratch.appendingPathComponent("empty.jpg")
        try Data().write(to: empty)
        XCTAssertThrowsError(try ImageFile.read(empty.path)) { XCTAssertEqual(($0 as? ImageError)?.reason, "the file is empty") }
    }

    /// A JPEG cut anywhere after its header used to decode (grey rows) with no error.
    func testTruncatedJPEGsAreRefusedUnlessAllowed() throws {
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("baseline.jpg"))))
        let scan = try XCTUnwrap((0..<whole.count - 1).first { whole[$0] == 0xFF && whole[$0 + 1] == 0xDA })
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-cut-\(UUID().uuidString).jpg")
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Inside the entropy-coded data, and just the end-of-image marker missing.
        for length in [scan + 20, scan + (whole.count - scan) * 2 / 3, whole.count - 2] {
            try Data(whole.prefix(length)).write(to: scratch)
            XCTAssertThrowsError(try JPEG.read(scratch.path), "cut at \(length) of \(whole.count)") { error in
                XCTAssertTrue("\(error)".contains("truncated or corrupt JPEG (Premature end of JPEG file)"), "\(error)")
            }
            let kept = try JPEG.read(scratch.path, maxPixels: 0, shortSide: 0, allowTruncated: true).image
            XCTAssertEqual([kept.width, kept.height], [23, 17])
        }
    }

    /// DCT scaling: a JPEG twice the wanted short side or more decodes at 1/2, 1/4 or 1/8.
    func testReducedDecodingKeepsTheFullSize() throws {
        let full = try JPEG.read(fixture("baseline.jpg"), maxPixels: 0, shortSide: 0)
        XCTAssertEqual([full.image.width, full.image.height, full.fullWidth, full.fullHeight], [23, 17, 23, 17])
        let half = try JPEG.read(fixture("baseline.jpg"), maxPixels: 0, shortSide: 8)
        XCTAssertEqual([half.image.width, half.image.height, half.fullWidth, half.fullHeight], [12, 9, 23, 17])
        let eighth = try JPEG.read(fixture("baseline.jpg"), maxPixels: 0, shortSide: 2)
        XCTAssertEqual([eighth.image.width, eighth.image.height], [3, 3])
        // The full size is the upright one, as the full decode shows it.
        let upright = try JPEG.read(fixture("orientation6.jpg"))
        let rotated = try JPEG.read(fixture("orientation6.jpg"), maxPixels: 0, shortSide: 2)
        XCTAssertEqual([rotated.fullWidth, rotated.fullHeight], [upright.width, upright.height])
        XCTAssertLessThan(rotated.image.width, upright.width)
    }
}

/// Images from a FIFO: read once, and waited for with a limit (opening a FIFO nobody writes to
/// used to block forever).
final class FIFOTests: XCTestCase {
    var fifo: String!

    override func setUpWithError() throws {
        fifo = FileManager.default.temporaryDirectory.appendingPathComponent("segview-fifo-\(UUID().uuidString)").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
    }

    override func tearDownWithError() throws { unlink(fifo) }

    func testAFIFOWithoutAWriterIsAnErrorAfterTheTimeout() throws {
        let start = Date()
        XCTAssertThrowsError(try ImageFile.streamContents(fifo, writerTimeout: 0.3)) {
            XCTAssertEqual("\($0)", "\(fifo!): a FIFO that nothing wrote to in 0.3 s")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testAWriterThatComesLaterIsReadWhole() throws {
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let path: String = fifo
        let writer = Thread {
            Thread.sleep(forTimeInterval: 0.2)
            let handle = FileHandle(forWritingAtPath: path)!
            handle.write(bytes)
            try? handle.close()
        }
        writer.start()
        XCTAssertEqual(try ImageFile.streamContents(fifo, writerTimeout: 10), bytes)
    }
}
