import Foundation
@testable import TorchCheckpoint
import XCTest

/// The reader against files torch.save wrote (tools/checkpoint_fixtures.py): every layout and dtype
/// in the zip and legacy formats, and hostile files that must be refused with nothing run.
final class CheckpointReaderTests: XCTestCase {
    func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
    }

    func floats(_ tensor: CheckpointTensor?) -> [Float] {
        guard let tensor, tensor.dtype == "F32" else { return [] }
        return tensor.bytes.withUnsafeBytes { raw in
            (0..<tensor.bytes.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
    }

    func words<T: FixedWidthInteger>(_ tensor: CheckpointTensor?, as type: T.Type) -> [T] {
        guard let tensor else { return [] }
        return tensor.bytes.withUnsafeBytes { raw in
            (0..<tensor.bytes.count / MemoryLayout<T>.size).map {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
    }

    func testEveryLayoutAndDTypeInBothFormats() throws {
        for file in ["layouts.pt", "layouts_legacy.pt"] {
            let tensors = try TorchCheckpoint(path: fixture(file)).tensors
            XCTAssertEqual(tensors.count, 10, file)
            XCTAssertEqual(tensors["transposed"]?.shape, [4, 3], file)
            XCTAssertEqual(floats(tensors["transposed"]), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11],
                           "a transpose, \(file)")
            XCTAssertEqual(tensors["offset_f64"]?.dtype, "F64")
            let offset = words(tensors["offset_f64"], as: UInt64.self).map { Double(bitPattern: $0) }
            XCTAssertEqual(offset, [2, 3, 4, 5, 6], "a view from element 2, \(file)")
            XCTAssertEqual(words(tensors["half"], as: UInt16.self), [0x3E00, 0xC000, 0x7BFF], file)
            XCTAssertEqual(words(tensors["bfloat"], as: UInt16.self), [0x3F80, 0xC060], file)
            XCTAssertEqual(tensors["long"]?.isFloatingPoint, false)
            XCTAssertEqual(words(tensors["long"], as: Int64.self), [1, -2, 3], file)
            XCTAssertEqual(floats(tensors["shared_row0"]), [0, 1, 2, 3], "two views of one storage, \(file)")
            XCTAssertEqual(floats(tensors["shared_row1"]), [4, 5, 6, 7], file)
            XCTAssertEqual(tensors["scalar"]?.shape, [])
            XCTAssertEqual(floats(tensors["scalar"]), [7.25], file)
            XCTAssertEqual(tensors["empty"]?.shape, [0, 3])
            XCTAssertEqual(tensors["empty"]?.bytes, [])
            XCTAssertEqual(floats(tensors["strided"]), [1, 3, 9, 11, 13, 15, 21, 23], "steps of 2 on two axes, \(file)")
        }
    }

    /// Loading these with Python's pickle would run `touch /tmp/segview-pickle-ran`; the reader refuses
    /// them at the global they name, and the marker never appears.
    func testPicklesThatWouldRunCodeAreRefusedWithNothingRun() throws {
        let marker = "/tmp/segview-pickle-ran"
        unlink(marker)
        for (file, global) in [("runs_system.pt", "posix.system"), ("runs_eval_legacy.pt", "__builtin__.eval"),
                               ("runs_after_tensors.pt", "posix.system")] {
            XCTAssertThrowsError(try TorchCheckpoint(path: fixture(file)), file) {
                XCTAssertEqual($0 as? CheckpointError, .forbiddenGlobal(global), file)
                XCTAssertTrue("\($0)".contains("'\(global)'"), "\($0)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    func testBrokenAndHostileFilesAreClearErrors() throws {
        for (file, message) in [
            ("truncated.pt", "no end of the zip directory"),
            ("truncated_legacy.pt", "past the end of the file"),
            ("traversal.pt", "has a path that leaves the archive"),
            ("short_storage.pt", "storage 0 holds 8 bytes, not 12 elements of F32"),
            ("deep.pt", "no state dict"),
            ("cycle.pt", "no state dict"),
            ("expanded.pt", "tensor 'x' has 2147483647 elements, more than its storage's 1 (an expanded view)"),
            ("repeated_views.pt", "the tensors' views repeat the file's storages more than a state dict's do"),
        ] {
            XCTAssertThrowsError(try TorchCheckpoint(path: fixture(file)), file) {
                XCTAssertTrue("\($0)".contains(message), "\(file): \($0)")
            }
        }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(getpid()).pt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        defer { unlink(empty) }
        XCTAssertThrowsError(try TorchCheckpoint(path: empty)) {
            XCTAssertEqual($0 as? CheckpointError, .corrupt("the file is empty"))
        }
    }

    /// An entry of layouts.pt whose central-directory record declares 2 GB: refused, nothing allocated.
    func testDeclaredSizesBeyondTheFileAreRefused() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("layouts.pt"))))
        let signature: [UInt8] = [0x50, 0x4B, 0x01, 0x02]
        let record = try XCTUnwrap((0..<bytes.count - 4).first { index in
            Array(bytes[index..<index + 4]) == signature
                && String(decoding: bytes[index + 46..<index + 46 + Int(bytes[index + 28])], as: UTF8.self)
                    .hasSuffix("/data/0")
        })
        for field in [record + 20, record + 24] {
            bytes.replaceSubrange(field..<field + 4, with: [0xF0, 0xFF, 0xFF, 0x7F])
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("oversized-\(getpid()).pt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        defer { unlink(path) }
        XCTAssertThrowsError(try TorchCheckpoint(path: path)) {
            XCTAssertTrue("\($0)".contains("/data/0' declares 2147483632 bytes past the end of the file"), "\($0)")
        }
    }

    /// A size-1 dimension's stride is never walked, whatever it is (2^63 - 1 overflowed).
    func testASizeOneDimensionWithAHugeStride() throws {
        let tensors = try TorchCheckpoint(path: fixture("huge_stride.pt")).tensors
        XCTAssertEqual(tensors["x"]?.shape, [2, 1])
        XCTAssertEqual(floats(tensors["x"]), [0, 2])
    }

    /// A score tensor beside the state dict does not hide it.
    func testTheWrapperComesBeforeATensorBesideIt() throws {
        let checkpoint = try TorchCheckpoint(path: fixture("score_beside.pt"))
        XCTAssertEqual(checkpoint.wrappers, ["state_dict"])
        XCTAssertEqual(checkpoint.tensors.count, 10)
    }

    /// torchvision's reference trainer saves its `args` (an argparse.Namespace) beside `model`: the
    /// file was refused for naming a global a state dict does not need.
    func testTorchvisionsReferenceTrainerCheckpoint() throws {
        let checkpoint = try TorchCheckpoint(path: fixture("torchvision_reference.pth"))
        XCTAssertEqual(checkpoint.wrappers, ["model"])
        XCTAssertEqual(checkpoint.tensors.keys.sorted(), ["conv.bias", "conv.weight"])
        XCTAssertEqual(floats(checkpoint.tensors["conv.weight"]), [Float](repeating: 1, count: 6))
    }

    func testRecognisesZipAndLegacyHeads() throws {
        for file in ["layouts.pt", "layouts_legacy.pt"] {
            let head = Array(try Data(contentsOf: URL(fileURLWithPath: fixture(file))).prefix(16))
            XCTAssertTrue(TorchCheckpoint.recognises(head), file)
        }
        XCTAssertFalse(TorchCheckpoint.recognises(Array("{\"__metadata__\"".utf8)))
        // A safetensors file whose header is 640 bytes long starts with 80 02 too.
        XCTAssertFalse(TorchCheckpoint.recognises([0x80, 0x02, 0, 0, 0, 0, 0, 0] + Array("{\"__metadata__\"".utf8)))
    }
}
