import Foundation
import SegImage

/// The repository this test was built from.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let modelFixtures = repositoryRoot.appendingPathComponent("Tests/SegModelsTests/Fixtures")
let imageFixtures = repositoryRoot.appendingPathComponent("Tests/SegImageTests/Fixtures")

/// The `segview` built next to this test bundle.
var segviewBinary: URL {
    var directory = Bundle.main.bundleURL
    if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("segview").path) {
        directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }
    if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("segview").path) {
        directory = directory.deletingLastPathComponent()
    }
    return directory.appendingPathComponent("segview")
}

/// A fresh directory, removed by the caller.
func makeScratchDirectory(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs the built `segview` with `arguments` (in `directory`), returning its exit status and its
/// standard output and error together.
/// `shellPrefix` runs it through `sh -c` after that shell code (limits, traps), e.g. `ulimit -f 8;`.
func runSegview(_ arguments: [String], in directory: URL? = nil, shellPrefix: String? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    if let shellPrefix {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let quoted = ([segviewBinary.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
        process.arguments = ["-c", "\(shellPrefix) exec \(quoted)"]
    } else {
        process.executableURL = segviewBinary
        process.arguments = arguments
    }
    if let directory { process.currentDirectoryURL = directory }
    return try outputAndStatus(of: process)
}

/// Runs `command` with /bin/sh, returning its exit status and its standard output and error together.
func runShell(_ command: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    return try outputAndStatus(of: process)
}

private func outputAndStatus(of process: Process) throws -> (status: Int32, output: String) {
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A folder `photos` in `scratch` holding the given copies of the test picture (`.png` names) and
/// of the small JPEG fixture (`.jpg` names).
func makePhotoFolder(in scratch: URL, _ names: [String]) throws -> URL {
    let folder = scratch.appendingPathComponent("photos")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for name in names {
        let source = name.hasSuffix(".jpg") ? imageFixtures.appendingPathComponent("jpeg/baseline.jpg")
                                            : modelFixtures.appendingPathComponent("street_37x53.png")
        try FileManager.default.copyItem(at: source, to: folder.appendingPathComponent(name))
    }
    return folder
}

/// Three images of different sizes and formats with labels made here (left part class 0,
/// right part class 2, a void stripe), in `images` and `labels` folders of `scratch`.
func makeLabelledDataset(in scratch: URL) throws -> (images: URL, labels: URL) {
    let images = try makePhotoFolder(in: scratch, ["a_street.png", "b_small.jpg"])
    try FileManager.default.copyItem(at: modelFixtures.appendingPathComponent("arch/street_51x67.png"),
                                     to: images.appendingPathComponent("c_wide.png"))
    let labels = scratch.appendingPathComponent("labels")
    try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
    for (name, width, height) in [("a_street", 53, 37), ("b_small", 23, 17), ("c_wide", 67, 51)] {
        let pixels = (0..<width * height).map { i -> UInt8 in
            let x = i % width
            return x == width / 3 ? 255 : (x < width / 2 ? 0 : 2)
        }
        try PNG.write(RGBImage(width: width, height: height, channels: 1, pixels: pixels),
                      to: labels.appendingPathComponent("\(name).png").path)
    }
    return (images, labels)
}
