import Foundation
import XCTest

/// Regression guards for the engine and the bundled weights: the figures the README records.
final class BundledModelTests: XCTestCase {
    /// README, "Bundled models": per model file, mIoU at its training stride on the sample scenes and,
    /// where recorded, on the first `camvidSubset` CamVid val frames.
    static let recorded: [(file: String, samples: Double, camvidSubset: Double?)] = [
        ("camvid_deeplabv3", 77.43, 65.48),
        ("camvid_deeplabv3plus", 76.34, 61.65),
        ("camvid_fcn8s", 76.04, 57.26),
        ("camvid_refinenet", 75.33, 60.98),
        ("camvid_dfn", 73.34, 55.53),
    ]
    static let camvidSubset = 20

    func path(_ file: String) throws -> String {
        let path = repositoryRoot.appendingPathComponent("samples/models/\(file).safetensors").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("no bundled model at \(path)") }
        return path
    }

    func meanIoU(_ model: String, images: String, labels: String) throws -> Double {
        let (status, output) = try runSegview(["eval", "--model", model, "--images", images, "--labels", labels,
                                               "--ignore", "11", "--json"])
        XCTAssertEqual(status, 0, output)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        return try XCTUnwrap(report["mean_iou"] as? Double) * 100
    }

    func testSampleScenesGiveTheRecordedMeanIoU() throws {
        let samples = repositoryRoot.appendingPathComponent("samples")
        for entry in Self.recorded {
            let value = try meanIoU(try path(entry.file), images: samples.path, labels: samples.appendingPathComponent("labels").path)
            XCTAssertEqual(value, entry.samples, accuracy: 0.1, entry.file)
        }
    }

    /// The first frames of CamVid val (sorted by name), when ../shared/datasets/camvid is there.
    func testCamVidValidationSubsetStaysWithinAPointOfTheRecordedFigure() throws {
        let camvid = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/datasets/camvid")
        guard FileManager.default.fileExists(atPath: camvid.appendingPathComponent("val").path) else {
            throw XCTSkip("CamVid is not at \(camvid.path): skipping the validation-subset check")
        }
        let folder = try makeScratchDirectory("segview-camvid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images"), labels = folder.appendingPathComponent("labels")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: camvid.appendingPathComponent("val").path).sorted().prefix(Self.camvidSubset)
        for name in names {
            try FileManager.default.createSymbolicLink(at: images.appendingPathComponent(name),
                                                       withDestinationURL: camvid.appendingPathComponent("val/\(name)"))
            try FileManager.default.createSymbolicLink(at: labels.appendingPathComponent(name),
                                                       withDestinationURL: camvid.appendingPathComponent("valannot/\(name)"))
        }
        for entry in Self.recorded {
            guard let expected = entry.camvidSubset else { continue }
            XCTAssertEqual(try meanIoU(try path(entry.file), images: images.path, labels: labels.path), expected, accuracy: 1.0, entry.file)
        }
    }
}
