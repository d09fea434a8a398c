import Foundation
import XCTest
@testable import SegEngine

final class HugePagesTests: XCTestCase {
    /// The kernel's flags for the mapping that holds `address` ("hg": marked for huge pages).
    static func mappingFlags(of address: UnsafeMutableRawPointer) throws -> [String] {
        let target = UInt(bitPattern: address)
        var inside = false
        // Read to the end: String(contentsOfFile:) stops at the size /proc reports for the file.
        let smaps = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/smaps")).readDataToEndOfFile()
        for line in String(decoding: smaps, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && bounds[0] <= target && target < bounds[1]
            } else if inside && fields.first == "VmFlags:" {
                return fields.dropFirst().map(String.init)
            }
        }
        return []
    }

    func testLargeBuffersAreAlignedAndMarkedForHugePages() throws {
        let large = HugePages.allocate(byteCount: 3 * HugePages.size + 4096)
        defer { large.deallocate() }
        XCTAssertEqual(UInt(bitPattern: large) % UInt(HugePages.size), 0)
        XCTAssertTrue(try Self.mappingFlags(of: large).contains("hg"))
        // The part past the last whole huge page is not marked: it would be resident in full.
        XCTAssertFalse(try Self.mappingFlags(of: large + 3 * HugePages.size).contains("hg"))
    }

    func testSmallBuffersStayOnCacheLines() throws {
        let small = HugePages.allocate(byteCount: HugePages.size / 2)
        defer { small.deallocate() }
        XCTAssertEqual(UInt(bitPattern: small) % UInt(BufferPool.alignment), 0)
        XCTAssertFalse(try Self.mappingFlags(of: small).contains("hg"))
    }
}
