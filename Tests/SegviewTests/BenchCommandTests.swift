import Foundation
import XCTest

/// `segview bench`: its figures are the pass's, and the two views of the profile add up the same.
final class BenchCommandTests: XCTestCase {
    let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path

    private func bench(_ extra: [String]) throws -> [String: Any] {
        let (status, output) = try runSegview(["bench", "--model", model, "--size", "37x53", "--runs", "2", "--warmup", "0",
                                               "--threads", "2", "--json"] + extra)
        XCTAssertEqual(status, 0, output)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], output)
    }

    /// Kind -> (calls, GFLOP), with the shapes of `--by-shape` folded back into their kind.
    private func byKind(_ report: [String: Any]) throws -> [String: (calls: Int, gflop: Double)] {
        let profile = try XCTUnwrap(report["profile"] as? [[String: Any]])
        var kinds: [String: (calls: Int, gflop: Double)] = [:]
        for entry in profile {
            let name = try XCTUnwrap(entry["kind"] as? String)
            // "conv 3x3 winograd 16->32 37x53 d2": the kind is what precedes the channels.
            let kind = name.split(separator: " ").prefix { !$0.contains("->") }.joined(separator: " ")
            let old = kinds[kind] ?? (0, 0)
            kinds[kind] = (old.calls + (entry["calls"] as? Int ?? 0), old.gflop + (entry["gflop"] as? Double ?? 0))
        }
        return kinds
    }

    func testProfileByShapeAddsUpToTheKindsAndThePass() throws {
        let plain = try bench(["--profile"])
        let detailed = try bench(["--profile", "--by-shape"])
        let shapes = try XCTUnwrap(detailed["profile"] as? [[String: Any]]).compactMap { $0["kind"] as? String }
            .filter { $0.hasPrefix("conv") }
        XCTAssertFalse(shapes.isEmpty)
        let pattern = try NSRegularExpression(pattern: #"^conv \d+x\d+( \w+)? \d+->\d+ \d+x\d+( s\d+)?( d\d+)?$"#)
        for shape in shapes {
            XCTAssertNotNil(pattern.firstMatch(in: shape, range: NSRange(shape.startIndex..., in: shape)), "not a kind and shape: \(shape)")
        }
        let kinds = try byKind(plain), folded = try byKind(detailed)
        XCTAssertEqual(Set(kinds.keys), Set(folded.keys))
        for (kind, tally) in kinds {
            XCTAssertEqual(folded[kind]?.calls, tally.calls, kind)
            XCTAssertEqual(folded[kind]?.gflop ?? -1, tally.gflop, accuracy: 1e-9, kind)
        }
        // The profiled pass does the work the timed passes counted.
        let total = kinds.values.reduce(0) { $0 + $1.gflop }
        XCTAssertEqual(total, try XCTUnwrap(plain["gflop"] as? Double), accuracy: 1e-9)
        XCTAssertGreaterThan(total, 0)
    }

    /// `--tta` times the augmented passes: flip does the work of two passes, flip and scales of six
    /// (the 0.75x and 1.25x passes together doing about 0.56 + 1.56 of one).
    func testAugmentationIsTimedAsTheWorkItDoes() throws {
        let plain = try XCTUnwrap(try bench([])["gflop"] as? Double)
        let flip = try bench(["--tta", "flip"]), both = try bench(["--tta", "flip,scales"])
        XCTAssertEqual(flip["tta"] as? String, "flip")
        XCTAssertEqual(try XCTUnwrap(flip["gflop"] as? Double) / plain, 2, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(both["gflop"] as? Double) / plain, 2 * (1 + 0.5625 + 1.5625), accuracy: 0.35)
    }

    func testByShapeNeedsProfile() throws {
        let (status, output) = try runSegview(["bench", "--model", model, "--size", "37x53", "--by-shape"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("--by-shape refines --profile"), output)
    }

    /// bench-view draws every input from its working resolution, so a 6000x4000 input is drawn
    /// from the same 540x360 as a smaller one of its shape, and from at most 2048 pixels natively.
    func testBenchViewDrawsFromTheWorkingResolution() throws {
        let (status, output) = try runSegview(["bench-view", "--size", "1080x1920", "4000x6000", "--runs", "1"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("1920x1080 input drawn from 640x360 (scale auto)"), output)
        XCTAssertTrue(output.contains("6000x4000 input drawn from 540x360 (scale auto)"), output)
        XCTAssertTrue(output.contains("full frame 4000x6000 / 1080x1920: "), output)
        let native = try runSegview(["bench-view", "--size", "4000x6000", "--runs", "1", "--scale", "native"])
        XCTAssertTrue(native.output.contains("6000x4000 input drawn from 2048x1365 (scale native)"), native.output)
    }

    /// Each bad option of bench-view is named on its own (one message listed every option's rules).
    func testBenchViewNamesTheBadOption() throws {
        for (arguments, message) in [(["--runs", "0"], "--runs must be at least 1"),
                                     (["--cells", "0x10"], "--cells takes COLSxROWS with sides of 1 to 2000"),
                                     (["--colors", "auto"], "--colors must be 24bit, 256, 16 or 8")] {
            let (status, output) = try runSegview(["bench-view"] + arguments)
            XCTAssertEqual(status, 64, output)
            XCTAssertTrue(output.contains("Error: \(message)"), output)
            XCTAssertFalse(output.contains("--cell-pixels WxH"), output)
        }
    }
}
