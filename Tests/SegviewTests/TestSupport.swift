import Foundation

/// The repository this test was built from.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let modelFixtures = repositoryRoot.appendingPathComponent("Tests/SegModelsTests/Fixtures")

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
