import Foundation
import SegEngine
@testable import SegModels
import XCTest

/// Model files that are broken in every way we can think of give errors naming the problem.
final class ModelFileTests: XCTestCase {
    var scratch: URL!
    var tiny: String { Bundle.module.url(forResource: "tiny_deeplabv3", withExtension: "safetensors", subdirectory: "Fixtures")!.path }

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-models-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    func write(_ data: Data, _ name: String = "model.safetensors") throws -> String {
        let url = scratch.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    func assertLoadFails(_ path: String, containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelLoader.load(path: path), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(text), "'\(error)' does not mention '\(text)'", file: file, line: line)
        }
    }

    func testMetadataOfTheFixtureIsRead() throws {
        let model = try ModelLoader.load(path: tiny)
        XCTAssertEqual(model.metadata.architecture, "deeplabv3")
        XCTAssertEqual(model.metadata.numClasses, 21)
        XCTAssertEqual(model.metadata.classNames[15], "person")
        XCTAssertEqual(model.metadata.classColors[15], [192, 128, 128])
        XCTAssertEqual(model.metadata.std[0], 0.229, accuracy: 1e-7)
        XCTAssertEqual(model.metadata.outputStride, 8)
        XCTAssertEqual(try model.metadata.integers("backbone_layers"), [1, 2, 2, 1])
    }

    func testMissingTensorIsNamed() throws {
        var builder = try SafeTensorsBuilder(copying: SafeTensorsFile(path: tiny))
        builder.items.removeAll { $0.name == "backbone.layer3.1.conv2.weight" }
        assertLoadFails(try write(builder.data()), containing: "no tensor 'backbone.layer3.1.conv2.weight'")
    }

    func testShapeMismatchNamesTensorExpectedAndFound() throws {
        var builder = try SafeTensorsBuilder(copying: SafeTensorsFile(path: tiny))
        let index = builder.items.firstIndex { $0.name == "classifier.4.weight" }!
        builder.items[index].item.shape = [21, 8, 2, 1]
        XCTAssertThrowsError(try ModelLoader.load(path: try write(builder.data()))) { error in
            XCTAssertEqual(error as? SafeTensorsError,
                           .shapeMismatch(name: "classifier.4.weight", expected: [21, 16, 1, 1], found: [21, 8, 2, 1]))
        }
    }

    /// `resize_size` written by a Swift writer (the test's builder) and by the Python one
    /// (tools/set_metadata.py wrote it into the bundled models) reads back; absent, it is nil.
    func testResizeSizeRoundTrips() throws {
        let file = try SafeTensorsFile(path: tiny)
        XCTAssertNil(try ModelMetadata(file.metadata).resizeSize)
        var builder = try SafeTensorsBuilder(copying: file)
        builder.metadata["resize_size"] = "513"
        let written = try ModelLoader.load(path: try write(builder.data(), "resize.safetensors"))
        XCTAssertEqual(written.metadata.resizeSize, 513)
        XCTAssertNil(written.metadata.extra["resize_size"], "a known field, not an extra one")
        let bundled = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../samples/models/camvid_deeplabv3plus.safetensors").standardized.path
        XCTAssertEqual(try ModelMetadata(SafeTensorsFile(path: bundled).metadata).resizeSize, 360)
    }

    func testMetadataProblemsNameTheField() throws {
        let file = try SafeTensorsFile(path: tiny)
        for (field, value, message) in [("num_classes", "twenty", "'num_classes'"),
                                        ("class_names", "[\"a\", \"b\"]", "2 names for 21 classes"),
                                        ("architecture", "unet", "'unet' is not one of"),
                                        ("output_stride", "12", "expected 8, 16 or 32"),
                                        ("input_std", "1,0,1", "input_std"),
                                        ("format_version", "99", "newer than this segview"),
                                        ("resize_size", "0", "'resize_size': '0' is not a side of 8 to 16384 pixels"),
                                        ("resize_size", "9223372036854775807", "'resize_size'"),
                                        ("resize_size", "360px", "'resize_size'"),
                                        ("num_classes", "100000", "'num_classes': must be 1 to 1024"),
                                        ("aspp_rates", "9223372036854775807,1,1", "'aspp_rates': expected"),
                                        ("aspp_rates", "1000000000,12,18", "integers from 1 to 4096"),
                                        ("input_mean", "inf,0.4,0.4", "'input_mean': must be finite"),
                                        ("input_std", "1,nan,1", "'input_std': must be positive and finite")] {
            var builder = try SafeTensorsBuilder(copying: file)
            builder.metadata[field] = value
            assertLoadFails(try write(builder.data(), "\(field).safetensors"), containing: message)
        }
        var builder = try SafeTensorsBuilder(copying: file)
        builder.metadata["class_colors"] = nil
        assertLoadFails(try write(builder.data(), "nocolors.safetensors"), containing: "'class_colors': missing")
    }

    /// A negative BatchNorm variance (below -eps) made every output NaN; it is refused, named.
    func testImpossibleBatchNormVarianceIsRefused() throws {
        var builder = try SafeTensorsBuilder(copying: try SafeTensorsFile(path: tiny))
        let index = try XCTUnwrap(builder.items.firstIndex { $0.name == "backbone.bn1.running_var" })
        let count = builder.items[index].item.shape.reduce(1, *)
        builder.items.remove(at: index)
        builder.add("backbone.bn1.running_var", shape: [count], floats: [1] + Array(repeating: -1e-5 * 1.5, count: count - 1))
        assertLoadFails(try write(builder.data(), "variance.safetensors"),
                        containing: "tensor 'backbone.bn1.running_var' holds -1.5e-05 at index 1; a variance must be at least 0")
    }

    func testFilesThatAreNotSafeTensors() throws {
        assertLoadFails(try write(Data("tiny".utf8), "short.safetensors"), containing: "only 4 bytes")
        assertLoadFails(try write(Data(repeating: 0xff, count: 64), "huge.safetensors"), containing: "exceeds the file size")
        var notJSON = Data()
        withUnsafeBytes(of: UInt64(5).littleEndian) { notJSON.append(contentsOf: $0) }
        notJSON.append(Data("hello".utf8))
        assertLoadFails(try write(notJSON, "text.safetensors"), containing: "not a JSON object")
        assertLoadFails(scratch.appendingPathComponent("absent.safetensors").path, containing: "No such file")
        assertLoadFails(scratch.path, containing: "not a regular file")
        // A FIFO nobody writes to is refused at once (opening it waited for a writer forever).
        let fifo = scratch.appendingPathComponent("fifo.safetensors").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        assertLoadFails(fifo, containing: "not a regular file")
    }

    func testOffsetsOutsideTheFileAreRefused() throws {
        var builder = SafeTensorsBuilder()
        builder.add("w", shape: [2], floats: [1, 2])
        let header = Data(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}"#.utf8)
        XCTAssertThrowsError(try SafeTensorsFile(path: try write(builder.data(header: header)))) { error in
            XCTAssertTrue("\(error)".contains("do not hold [2] of F32"), "\(error)")
        }
        let header2 = Data(#"{"w": {"dtype": "F32", "shape": [200], "data_offsets": [0, 800]}}"#.utf8)
        XCTAssertThrowsError(try SafeTensorsFile(path: try write(builder.data(header: header2), "b"))) { error in
            XCTAssertTrue("\(error)".contains("ends at byte 800 of a 8-byte data section"), "\(error)")
        }
    }

    func testOverlappingTensorsAndOverflowingShapesAreRefused() throws {
        var builder = SafeTensorsBuilder()
        builder.add("a", shape: [2], floats: [1, 2])
        builder.add("b", shape: [2], floats: [3, 4])
        let shared = Data(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#.utf8)
        XCTAssertThrowsError(try SafeTensorsFile(path: try write(builder.data(header: shared), "overlap"))) { error in
            XCTAssertTrue("\(error)".contains("tensors 'a' and 'b' overlap"), "\(error)")
        }
        let huge = Data(#"{"a": {"dtype": "F64", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}}"#.utf8)
        XCTAssertThrowsError(try SafeTensorsFile(path: try write(builder.data(header: huge), "huge"))) { error in
            XCTAssertTrue("\(error)".contains("do not hold"), "\(error)")
        }
        let badType = Data(#"{"a": {"dtype": "F32", "shape": "two", "data_offsets": [0, 8]}}"#.utf8)
        XCTAssertThrowsError(try SafeTensorsFile(path: try write(builder.data(header: badType), "type"))) { error in
            XCTAssertTrue("\(error)".contains("tensor 'a' lacks dtype, shape or data_offsets"), "\(error)")
        }
    }

    func testNaNOrInfiniteWeightsNameTheTensor() throws {
        var builder = try SafeTensorsBuilder(copying: SafeTensorsFile(path: tiny))
        let index = builder.items.firstIndex { $0.name == "classifier.4.bias" }!
        builder.items[index].item.bytes.replaceSubrange(12..<16, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Data($0) })
        assertLoadFails(try write(builder.data()), containing: "tensor 'classifier.4.bias' holds nan at index 3")
    }

    func testTruncatedFileIsRefused() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: tiny))
        assertLoadFails(try write(whole.prefix(whole.count - 100), "cut.safetensors"), containing: "of a")
    }

    func testHalfAndBFloat16TensorsAreConverted() throws {
        var builder = SafeTensorsBuilder()
        builder.add("half", dtype: "F16", shape: [3], raw: [0x3C00, 0xC000, 0x3800])
        builder.add("brain", dtype: "BF16", shape: [1, 2], raw: [0x3F80, 0xC0A0])
        builder.add("count", dtype: "I16", shape: [1], raw: [7])
        let file = try SafeTensorsFile(path: try write(builder.data()))
        XCTAssertEqual(try file.floats("half", shape: [3]), [1, -2, 0.5])
        XCTAssertEqual(try file.floats("brain", shape: [1, 2]), [1, -5])
        XCTAssertThrowsError(try file.floats("count", shape: [1])) { error in
            XCTAssertEqual(error as? SafeTensorsError, .unsupportedDType(name: "count", dtype: "I16"))
        }
    }
}
