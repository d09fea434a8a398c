import Foundation
import XCTest

/// Nothing from a file reaches the terminal raw: escape sequences in model metadata and in file
/// names are shown in caret notation.
final class TerminalSafetyTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("segview-escapes") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// A copy of a model fixture with metadata entries replaced.
    func model(_ changes: [String: String]) throws -> String {
        let data = try Data(contentsOf: modelFixtures.appendingPathComponent("tiny_five_classes.safetensors"))
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: data[8..<8 + length]) as? [String: Any])
        var metadata = try XCTUnwrap(header["__metadata__"] as? [String: String])
        metadata.merge(changes) { _, new in new }
        header["__metadata__"] = metadata
        var encoded = try JSONSerialization.data(withJSONObject: header)
        encoded.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - encoded.count % 8) % 8))
        var file = withUnsafeBytes(of: UInt64(encoded.count).littleEndian) { Data($0) }
        file.append(encoded)
        file.append(data[(8 + length)...])
        let url = scratch.appendingPathComponent("hostile.safetensors")
        try file.write(to: url)
        return url.path
    }

    func testInfoAndModelsShowControlCharactersEscaped() throws {
        let hostile = try model(["class_names": #"["sky\u001b]0;pwned\u0007", "building", "road", "car", "tree"]"#,
                                 "description": "nice\u{1b}[2J\u{9b}31m"])
        for arguments in [["info", hostile], ["models", hostile]] {
            let (status, output) = try runSegview(arguments)
            XCTAssertEqual(status, 0, output)
            XCTAssertFalse(output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B },
                           "\(arguments[0]) printed a raw control character: \(output.debugDescription)")
        }
        let info = try runSegview(["info", hostile]).output
        XCTAssertTrue(info.contains("sky^[]0;pwned^G"), info)
        XCTAssertTrue(info.contains("nice^[[2J\\x9b31m"), info)
    }

    func testErrorMessagesEscapeFileNames() throws {
        let name = scratch.appendingPathComponent("evil\u{1b}]2;title\u{07}.png")
        try Data("not an image".utf8).write(to: name)
        let (status, output) = try runSegview(["predict", name.path, "--model",
                                               modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path],
                                              in: scratch)
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("evil^[]2;title^G.png: not a PNG or JPEG image"), output.debugDescription)
        XCTAssertFalse(output.unicodeScalars.contains { $0.value == 0x1B }, output.debugDescription)
    }

    /// A newline in a file name cannot start a line that reads like segview's own, and a
    /// right-to-left override cannot reorder what follows it on screen.
    func testFileNamesCannotForgeLinesOrReorderText() throws {
        let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        let forged = scratch.appendingPathComponent("x\nwrote everything.png")
        try Data("not an image".utf8).write(to: forged)
        var (status, output) = try runSegview(["predict", forged.path, "--model", model], in: scratch)
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("x\\nwrote everything.png: not a PNG or JPEG image"), output.debugDescription)
        XCTAssertFalse(output.split(separator: "\n").contains { $0.hasPrefix("wrote") }, output.debugDescription)
        let image = modelFixtures.appendingPathComponent("street_37x53.png").path
        (status, output) = try runSegview(["predict", image, "--model", model, "--out", "a\u{202e}gnp.exe\nb.png"],
                                          in: scratch)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("wrote a\\u{202e}gnp.exe\\nb.png"), output.debugDescription)
        XCTAssertFalse(output.unicodeScalars.contains { $0.value == 0x202E }, output.debugDescription)
    }

    /// A model that does not load is named, whichever of two it is: a tensor's or the metadata's
    /// complaint alone did not say which file.
    func testAModelThatDoesNotLoadIsNamed() throws {
        let broken = try model(["class_names": #"["sky", "building"]"#])
        let good = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        let (images, labels) = try makeLabelledDataset(in: scratch)
        let (status, output) = try runSegview(["eval", "--model", good, "--model", broken, "--images", images.path,
                                               "--labels", labels.path])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("Error: \(broken): "), output)
    }

    /// A file name in another encoding than UTF-8 cannot be passed on (Swift's strings hold UTF-8
    /// only): it is named as such, where it used to "not exist".
    func testAnArgumentThatIsNotUTF8IsNamedAsSuch() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", #"exec "$0" predict "$(printf 'caf\351.png')" --model m.safetensors"#,
                             segviewBinary.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 64, output)
        XCTAssertTrue(output.contains("Error: argument 2, caf\u{FFFD}.png, is not valid UTF-8"), output)
    }
}
