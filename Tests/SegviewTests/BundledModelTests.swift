import Foundation
import XCTest

/// Regression guards for the engine and the bundled weights: the figures the README records.
final class BundledModelTests: XCTestCase {
    let model = repositoryRoot.appendingPathComponent("samples/models/camvid_deeplabv3.safetensors").path
    /// README, "Bundled models": mIoU of the bundled model on the sample scenes and on CamVid val frames.
    static let samplesMeanIoU = 64.08
    static let camvidSubsetMeanIoU = 55.81
    static let camvidSubset = 20

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: model) else { throw XCTSkip("no bundled CamVid model at \(model)") }
    }

    func meanIoU(images: String, labels: String) throws -> Double {
        let (status, output) = try runSegview(["eval", "--model", model, "--images", images, "--labels", labels,
                                               "--ignore", "11", "--json"])
        XCTAssertEqual(status, 0, output)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        return try XCTUnwrap(report["mean_iou"] as? Double) * 100
    }

    func testSampleScenesGiveTheRecordedMeanIoU() throws {
        let samples = repositoryRoot.appendingPathComponent("samples")
        let value = try meanIoU(images: samples.path, labels: samples.appendingPathComponent("labels").path)
        XCTAssertEqual(value, Self.samplesMeanIoU, accuracy: 0.1)
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
        XCTAssertEqual(try meanIoU(images: images.path, labels: labels.path), Self.camvidSubsetMeanIoU, accuracy: 1.0)
    }
}
