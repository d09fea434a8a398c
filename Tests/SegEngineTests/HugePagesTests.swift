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

    func testLargeBuffersAreMarkedForHugePagesAndGivenBack() throws {
        guard FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled") else {
            throw XCTSkip("this kernel has no transparent huge pages")
        }
        let byteCount = 3 * HugePages.size + 4096
        let large = HugePages.allocate(byteCount: byteCount)
        XCTAssertEqual(UInt(bitPattern: large) % UInt(HugePages.size), 0)
        XCTAssertTrue(try Self.mappingFlags(of: large).contains("hg"))
        XCTAssertTrue(try Self.mappingFlags(of: large + 3 * HugePages.size - 1).contains("hg"))
        // The part past the last whole huge page is not marked: it would be resident in full.
        XCTAssertFalse(try Self.mappingFlags(of: large + 3 * HugePages.size).contains("hg"))
        HugePages.deallocate(large, byteCount: byteCount)
        XCTAssertEqual(try Self.mappingFlags(of: large), [], "still mapped after deallocate")
    }

    func testSmallBuffersComeFromTheAllocatorOnCacheLines() throws {
        let small = HugePages.allocate(byteCount: HugePages.size / 2)
        defer { HugePages.deallocate(small, byteCount: HugePages.size / 2) }
        XCTAssertEqual(UInt(bitPattern: small) % UInt(BufferPool.alignment), 0)
        XCTAssertFalse(try Self.mappingFlags(of: small).contains("hg"))
    }
}
