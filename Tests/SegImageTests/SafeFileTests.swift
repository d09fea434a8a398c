import Foundation
import SegImage
import XCTest

final class SafeFileTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-safefile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// The hidden `.NAME.….partial` files in the scratch folder.
    func temporaries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasSuffix(".partial") }.sorted()
    }

    /// Temporary names are hidden, fill the template's six X's with letters and digits, and differ
    /// from write to write (the shim names them itself, so that a signal handler knows a name
    /// before its file exists).
    func testTemporaryNamesAreHiddenAndDistinct() throws {
        var names: Set<String> = []
        for _ in 0..<20 {
            try SafeFile.write(to: scratch.appendingPathComponent("mask.png").path, overwrite: true) { _ in
                let name = try XCTUnwrap(temporaries().first)
                let (prefix, suffix) = (".mask.png.", ".partial")
                XCTAssertTrue(name.hasPrefix(prefix) && name.hasSuffix(suffix), name)
                let letters = name.dropFirst(prefix.count).dropLast(suffix.count)
                XCTAssertEqual(letters.count, 6, name)
                XCTAssertTrue(letters.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }, name)
                XCTAssertNotEqual(letters, "XXXXXX", name)
                names.insert(name)
            }
        }
        XCTAssertEqual(names.count, 20)
        XCTAssertEqual(try temporaries(), [])
    }

    /// The temporary file is written through its descriptor and checked before it is linked into
    /// place: a name swapped for a symlink meanwhile (another user in a shared folder) is refused,
    /// and the symlink's target is left alone. (The PNG encoder used to reopen the name with fopen.)
    func testATemporaryFileSwappedDuringTheWriteIsRefused() throws {
        let target = scratch.appendingPathComponent("mask.png").path
        let victim = scratch.appendingPathComponent("victim")
        try Data("keep".utf8).write(to: victim)
        XCTAssertThrowsError(try SafeFile.write(to: target, overwrite: false) { descriptor in
            let name = scratch.appendingPathComponent(try temporaries()[0]).path
            XCTAssertEqual(unlink(name), 0)
            XCTAssertEqual(symlink(victim.path, name), 0)
            FileHandle(fileDescriptor: descriptor, closeOnDealloc: false).write(Data("new".utf8))
        }) {
            XCTAssertTrue("\($0)".hasSuffix("was replaced while being written"), "\($0)")
        }
        XCTAssertEqual(try String(contentsOf: victim, encoding: .utf8), "keep")
        XCTAssertFalse(FileManager.default.fileExists(atPath: target))
        XCTAssertEqual(try temporaries(), [], "nothing left behind")
    }

    /// Even with overwrite, a FIFO or a folder at the destination is refused and left as it was
    /// (as root, `--out /dev/null --force` replaced the device node with a PNG).
    func testOnlyRegularFilesAreReplaced() throws {
        let fifo = scratch.appendingPathComponent("pipe").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let folder = scratch.appendingPathComponent("folder").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        for path in [fifo, folder] {
            XCTAssertThrowsError(try SafeFile.write(Data("x".utf8), to: path, overwrite: true)) {
                XCTAssertTrue("\($0)".contains("is not a regular file"), "\($0)")
            }
        }
        var status = stat()
        XCTAssertEqual(lstat(fifo, &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFIFO, "the FIFO is still there")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(), ["folder", "pipe"],
                       "no temporary file is left")
    }

    /// A destination whose folder is missing, or is a file, says which (it said "cannot create a
    /// file beside it: No such file or directory").
    func testAMissingFolderIsNamed() throws {
        let missing = scratch.appendingPathComponent("nowhere/mask.png").path
        XCTAssertThrowsError(try SafeFile.write(Data("x".utf8), to: missing, overwrite: false)) {
            XCTAssertEqual("\($0)", "\(missing): its folder \(scratch.path)/nowhere does not exist")
        }
        let file = scratch.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        XCTAssertThrowsError(try SafeFile.write(Data("x".utf8), to: file.path + "/mask.png", overwrite: false)) {
            XCTAssertEqual("\($0)", "\(file.path)/mask.png: \(file.path) is not a folder")
        }
    }

    /// The temporary file is not the old predictable `.NAME.PID.partial`, and the output gets the
    /// permissions of any new file (not mkstemp's 0600).
    func testTemporaryNamesAreUnpredictableAndPermissionsOrdinary() throws {
        let target = scratch.appendingPathComponent("out.bin").path
        // A symlink planted at the old name would have been followed.
        let planted = scratch.appendingPathComponent(".out.bin.\(getpid()).partial").path
        let victim = scratch.appendingPathComponent("victim").path
        try Data("keep".utf8).write(to: URL(fileURLWithPath: victim))
        XCTAssertEqual(symlink(victim, planted), 0)
        var seen: [String] = []
        try SafeFile.write(to: target, overwrite: false) { descriptor in
            seen = try temporaries()
            FileHandle(fileDescriptor: descriptor, closeOnDealloc: false).write(Data("new".utf8))
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep")
        XCTAssertEqual(seen.count, 2, "the planted name and the real temporary file")
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "new")
        let mask = umask(0o022)
        umask(mask)
        let permissions = try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int
        XCTAssertEqual(permissions, 0o666 & ~Int(mask))
    }
}
