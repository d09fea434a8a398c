import Foundation
import SegImage
import XCTest

/// `segview eval` against numpy's computation on PyTorch's prediction (tools/make_fixtures.py).
final class EvalCommandTests: XCTestCase {
    let fixtures = modelFixtures.appendingPathComponent("eval")

    func testMatchesTheIndependentComputationExactly() throws {
        let (status, output) = try runSegview(["eval", "--model", modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path,
                                        "--images", fixtures.appendingPathComponent("images").path,
                                        "--labels", fixtures.appendingPathComponent("labels").path, "--json"])
        XCTAssertEqual(status, 0, output)
        let ours = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("expected.json"))) as? [String: Any])
        XCTAssertEqual(ours["confusion"] as? [[Int]], expected["confusion"] as? [[Int]])
        XCTAssertEqual(ours["pixel_accuracy"] as! Double, expected["pixel_accuracy"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(ours["mean_iou"] as! Double, expected["mean_iou"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(ours["labelled_pixels"] as? Int, 37 * 53 - 4 * 6, "the void corner is not scored")
    }

    func testTextReportAndMissingLabels() throws {
        let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        let (status, output) = try runSegview(["eval", "--model", model, "--images", fixtures.appendingPathComponent("images").path,
                                        "--labels", fixtures.appendingPathComponent("labels").path])
        XCTAssertEqual(status, 0, output)
        for text in ["pixel accuracy 83.79%", "mean IoU 77.41%", "boundary F1", " 3 car", "confusion (rows: truth",
                     ", 1 image, "] {
            XCTAssertTrue(output.contains(text), "missing '\(text)' in:\n\(output)")
        }
        let folder = try makeScratchDirectory("segview-eval")
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = try runSegview(["eval", "--model", model, "--images", fixtures.appendingPathComponent("images").path,
                             "--labels", folder.path])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.output.contains("has a label file"), empty.output)
        // A colour image where a label map belongs is named, with the reason.
        try FileManager.default.copyItem(at: modelFixtures.appendingPathComponent("street_37x53.png"),
                                         to: folder.appendingPathComponent("street_37x53.png"))
        let colour = try runSegview(["eval", "--model", model, "--images", fixtures.appendingPathComponent("images").path,
                              "--labels", folder.path])
        XCTAssertNotEqual(colour.status, 0)
        XCTAssertTrue(colour.output.contains("a label map must be a gray or palette PNG"), colour.output)
    }

    /// JPEG images with PNG labels, each label name form; a label of the wrong size is reported
    /// and the other images are still scored (exit 1).
    func testJPEGImagesPairWithPNGLabelsInEveryNameForm() throws {
        let scratch = try makeScratchDirectory("segview-eval-jpeg")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let images = try makePhotoFolder(in: scratch, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
        let labels = scratch.appendingPathComponent("labels")
        try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
        // baseline.jpg is 23x17: a label map of class 0 on the left half, 1 on the right.
        let map = RGBImage(width: 23, height: 17, channels: 1, pixels: (0..<23 * 17).map { UInt8($0 % 23 < 11 ? 0 : 1) })
        for name in ["a.png", "b_L.png", "c_label.png"] { try PNG.write(map, to: labels.appendingPathComponent(name).path) }
        let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        var result = try runSegview(["eval", "--model", model, "--images", images.path, "--labels", labels.path, "--json"])
        XCTAssertEqual(result.status, 0, result.output)
        // The note on d.jpg goes to standard error, which the test reads mixed with the JSON.
        XCTAssertTrue(result.output.hasPrefix("segview: 1 of 4 images have no label file in \(labels.path) and are "
                                              + "not scored: d.jpg\n{"), result.output)
        let json = try XCTUnwrap(result.output.firstIndex(of: "{").map { result.output[$0...] })
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        XCTAssertEqual(report["images"] as? Int, 3, "d.jpg has no label")
        XCTAssertEqual(report["labelled_pixels"] as? Int, 3 * 23 * 17)
        XCTAssertFalse(result.output.contains("\\/"), "slashes are not escaped")

        try PNG.write(RGBImage(width: 5, height: 5, channels: 1), to: labels.appendingPathComponent("d.png").path)
        result = try runSegview(["eval", "--model", model, "--images", images.path, "--labels", labels.path])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("3 images, \(3 * 23 * 17) labelled pixels"), result.output)
        XCTAssertTrue(result.output.contains("1 of 4 images failed"), result.output)
        XCTAssertTrue(result.output.contains("failed: \(labels.path)/d.png is 5x5, \(images.path)/d.jpg 23x17"), result.output)
    }

    private func evalJSON(_ arguments: [String]) throws -> [String: Any] {
        let (status, output) = try runSegview(["eval", "--model", modelFixtures.appendingPathComponent(
            "tiny_five_classes.safetensors").path, "--json"] + arguments)
        XCTAssertEqual(status, 0, output)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], output)
    }

    /// Every image's entry equals what a run on that image alone gives; the table lists them
    /// worst first; the CSV has a row each.
    func testPerImageScoresEqualOneImageRuns() throws {
        let scratch = try makeScratchDirectory("segview-eval-per-image")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (images, labels) = try makeLabelledDataset(in: scratch)
        let whole = try evalJSON(["--images", images.path, "--labels", labels.path])
        let rows = try XCTUnwrap(whole["per_image"] as? [[String: Any]])
        XCTAssertEqual(rows.compactMap { $0["image"] as? String }, ["a_street.png", "b_small.jpg", "c_wide.png"])
        for row in rows {
            let name = try XCTUnwrap(row["image"] as? String)
            let single = scratch.appendingPathComponent("single-\(name)")
            try FileManager.default.createDirectory(at: single, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: images.appendingPathComponent(name), to: single.appendingPathComponent(name))
            let alone = try evalJSON(["--images", single.path, "--labels", labels.path, "--ignore", "255"])
            for key in ["pixel_accuracy", "mean_iou", "boundary_f1"] {
                XCTAssertEqual(row[key] as? Double, alone[key] as? Double, "\(name) \(key)")
            }
            XCTAssertEqual("\(row["class_iou"]!)", "\(alone["class_iou"]!)", name)
            XCTAssertGreaterThan(row["seconds"] as? Double ?? 0, 0)
        }

        XCTAssertTrue(rows.contains { ($0["class_iou"] as? [Any])?.contains { $0 is NSNull } ?? false },
                      "a class absent from label and prediction is null")

        let csv = scratch.appendingPathComponent("scores.csv").path
        let (status, text) = try runSegview(["eval", "--model", modelFixtures.appendingPathComponent(
            "tiny_five_classes.safetensors").path, "--images", images.path, "--labels", labels.path, "--per-image",
            "--csv", csv])
        XCTAssertEqual(status, 0, text)
        let listed = text.split(separator: "\n").compactMap { line in
            ["a_street.png", "b_small.jpg", "c_wide.png"].first { line.hasPrefix($0) }
        }
        let worstFirst = rows.sorted { ($0["mean_iou"] as! Double) < ($1["mean_iou"] as! Double) }
        XCTAssertEqual(listed, worstFirst.map { $0["image"] as! String })
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(lines[0], "image,pixel_accuracy,mean_iou,boundary_f1,seconds,iou_sky,iou_building,iou_road,iou_car,iou_tree")
    }

    /// Shards split the folder between runs; merging their partial files gives exactly one run's figures.
    func testMergedShardsEqualOneRun() throws {
        let scratch = try makeScratchDirectory("segview-eval-shards")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (images, labels) = try makeLabelledDataset(in: scratch)
        let whole = try evalJSON(["--images", images.path, "--labels", labels.path])
        var partials: [String] = [], counts: [Int] = []
        for k in 1...3 {
            let partial = scratch.appendingPathComponent("part\(k).json").path
            let (status, output) = try runSegview(["eval", "--model", modelFixtures.appendingPathComponent(
                "tiny_five_classes.safetensors").path, "--images", images.path, "--labels", labels.path,
                "--shard", "\(k)/3", "--save-partial", partial])
            // A shard may hold no image of three: that run fails and writes nothing.
            if status == 0 {
                partials.append(partial)
                let part = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: partial)))
                                         as? [String: Any])
                counts.append(part["images"] as? Int ?? 0)
            } else {
                XCTAssertTrue(output.contains("(shard \(k)/3) has a label file"), output)
            }
        }
        XCTAssertEqual(counts.reduce(0, +), 3, "the shards cover every image once")
        let (status, output) = try runSegview(["eval", "merge", "--json"] + partials)
        XCTAssertEqual(status, 0, output)
        let merged = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        XCTAssertTrue(merged["shard"] is NSNull, "the merged result is the whole split")
        // Each partial says which share it holds; one left out is named, a share of another split refused.
        let recorded = try partials.map { partial in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: partial)))
                          as? [String: Any])["shard"] as? String
        }
        XCTAssertEqual(recorded.count, partials.count)
        XCTAssertTrue(recorded.allSatisfy { $0?.hasSuffix("/3") == true }, "\(recorded)")
        let short = try runSegview(["eval", "merge", "--json"] + partials.dropFirst())
        XCTAssertEqual(short.status, 0, short.output)
        XCTAssertTrue(short.output.contains("segview: no partial result of shard \(recorded[0] ?? "?"): the images it "
                                            + "held, if any, are left out"), short.output)
        // Any K/N is valid: a huge N is counted, not listed (a set of every share took gigabytes).
        var huge = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            partials[0]))) as? [String: Any])
        huge["shard"] = "1/5000000"
        let hugePartial = scratch.appendingPathComponent("huge.json")
        try JSONSerialization.data(withJSONObject: huge).write(to: hugePartial)
        let lonely = try runSegview(["eval", "merge", hugePartial.path])
        XCTAssertEqual(lonely.status, 0, lonely.output)
        XCTAssertTrue(lonely.output.contains("no partial result of shards 2/5000000, 3/5000000, 4/5000000, 5/5000000, "
                                             + "6/5000000 and 4999994 more"), String(lonely.output.prefix(300)))
        var foreign = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            partials[0]))) as? [String: Any])
        foreign["shard"] = "1/4"
        let foreignPartial = scratch.appendingPathComponent("foreign.json")
        try JSONSerialization.data(withJSONObject: foreign).write(to: foreignPartial)
        let split = try runSegview(["eval", "merge"] + partials.dropFirst() + [foreignPartial.path])
        XCTAssertEqual(split.status, 1, split.output)
        XCTAssertTrue(split.output.contains("foreign.json: shard 1/4, where the partial results before it are shares "
                                            + "of 3: they are not one split"), split.output)
        for key in ["pixel_accuracy", "mean_iou", "boundary_f1", "labelled_pixels", "images"] {
            XCTAssertEqual("\(merged[key]!)", "\(whole[key]!)", key)
        }
        XCTAssertEqual(merged["confusion"] as? [[Int]], whole["confusion"] as? [[Int]])
        // Per-image rows are the same rows (JSON numbers: equal to the last bit or two).
        let mergedRows = try XCTUnwrap(merged["per_image"] as? [[String: Any]])
        let wholeRows = try XCTUnwrap(whole["per_image"] as? [[String: Any]])
        XCTAssertEqual(mergedRows.map { $0["image"] as? String }, wholeRows.map { $0["image"] as? String })
        for (m, w) in zip(mergedRows, wholeRows) {
            for key in ["pixel_accuracy", "mean_iou", "boundary_f1"] {
                XCTAssertEqual(m[key] as? Double ?? -1, w[key] as? Double ?? -2, accuracy: 1e-12, key)
            }
        }
        // A partial run in another precision, or scored with another ignored label, does not add
        // up with these: the message names the file and what differs.
        let firstData = try Data(contentsOf: URL(fileURLWithPath: partials[0]))
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: firstData) as? [String: Any])
        XCTAssertEqual(first["precision"] as? String, "fp32")
        XCTAssertEqual(first["ignore"] as? Int, 255)
        var names = try XCTUnwrap(first["class_names"] as? [String])
        names[1] = "\(names[1]), \(names[2])"  // joined with a comma, a list of other names
        for (key, value, message) in [("precision", "int8" as Any, "precision int8, where the partial results before "
                                       + "it have fp32"), ("ignore", 11 as Any, "ignored label 11"),
                                      ("class_names", names as Any, "class 1 is '\(names[1])'")] {
            var other = first
            other[key] = value
            let otherPartial = scratch.appendingPathComponent("other.json")
            try JSONSerialization.data(withJSONObject: other).write(to: otherPartial)
            let mixed = try runSegview(["eval", "merge", partials[0], otherPartial.path])
            XCTAssertEqual(mixed.status, 1, mixed.output)
            XCTAssertTrue(mixed.output.contains("other.json: \(message)"), mixed.output)
        }
        // Partial files of segview before 0.15 (no precision, no ignored label) still add up among
        // themselves; beside a newer one, the message says why they differ.
        XCTAssertGreaterThanOrEqual(partials.count, 2, "the three images fall in two shards or more")
        var old: [String] = []
        for (index, partial) in partials.enumerated() {
            var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: partial)))
                                     as? [String: Any])
            json["precision"] = nil
            json["ignore"] = nil
            old.append(scratch.appendingPathComponent("old\(index).json").path)
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: old[index]))
        }
        let oldMerged = try runSegview(["eval", "merge", "--json"] + old)
        XCTAssertEqual(oldMerged.status, 0, oldMerged.output)
        let mixedAges = try runSegview(["eval", "merge", partials[0], old[1]])
        XCTAssertEqual(mixedAges.status, 1, mixedAges.output)
        XCTAssertTrue(mixedAges.output.contains("old1.json: precision unknown, where the partial results before it "
                                                + "have fp32 (segview before 0.15 did not record it)"),
                      mixedAges.output)
    }

    /// `eval merge` reads files a user may have edited or a shard may have half-written: counts that
    /// are negative, that add up past what an Int holds, or images listed twice are refused (an
    /// overflowing sum crashed it).
    func testMergeRefusesCountsEvalNeverWrites() throws {
        let scratch = try makeScratchDirectory("segview-eval-tampered")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (images, labels) = try makeLabelledDataset(in: scratch)
        let partial = scratch.appendingPathComponent("whole.json")
        let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        let run = try runSegview(["eval", "--model", model, "--images", images.path, "--labels", labels.path,
                                  "--save-partial", partial.path])
        XCTAssertEqual(run.status, 0, run.output)
        let whole = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: partial)) as? [String: Any])
        func merge(_ edits: [(inout [String: Any]) -> Void]) throws -> (status: Int32, output: String) {
            var files: [String] = []
            for (index, edit) in edits.enumerated() {
                var json = whole
                edit(&json)
                files.append(scratch.appendingPathComponent("part\(index).json").path)
                try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: files[index]))
            }
            return try runSegview(["eval", "merge"] + files)
        }
        func confusion(_ first: Int) -> (inout [String: Any]) -> Void {
            { json in
                var rows = json["confusion"] as! [[Int]]
                rows[0][0] = first
                json["confusion"] = rows
            }
        }
        let noImages: (inout [String: Any]) -> Void = { $0["per_image"] = [[String: Any]]() }
        let cases: [(edits: [(inout [String: Any]) -> Void], message: String)] = [
            ([confusion(Int.max)], "part0.json: not a partial result"),
            ([confusion(-1)], "part0.json: not a partial result"),
            ([confusion(1 << 52), { confusion(1 << 52)(&$0); noImages(&$0) }],
             "part1.json: the pixel counts add up to more than"),
            ([{ $0["boundary_counts"] = ["predicted": 5, "predicted_matched": 6, "truth": 1, "truth_matched": 0] }],
             "part0.json: boundary_counts are not counts eval writes"),
            ([{ $0["per_image"] = ($0["per_image"] as! [Any]) + ($0["per_image"] as! [Any]).prefix(1) }],
             "part0.json: a_street.png is listed twice"),
            ([{ _ in }, { _ in }], "part1.json: a_street.png is in the partial results before it too"),
        ]
        for (edits, message) in cases {
            let (status, output) = try merge(edits)
            XCTAssertEqual(status, 1, output)
            XCTAssertTrue(output.contains(message), "expected \(message): \(output)")
        }
    }

    /// `segview eval` of the five-class fixture model on `images` against `labels`.
    func evalFiveClasses(_ images: URL, _ labels: URL, _ options: String...) throws -> (status: Int32, output: String) {
        try runSegview(["eval", "--model", modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path,
                        "--images", images.path, "--labels", labels.path] + options)
    }

    /// Images without a label are named, not dropped in silence; the others are scored.
    func testImagesWithoutALabelAreNamed() throws {
        let scratch = try makeScratchDirectory("segview-eval-unlabelled")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (images, labels) = try makeLabelledDataset(in: scratch)
        try FileManager.default.copyItem(at: images.appendingPathComponent("a_street.png"),
                                         to: images.appendingPathComponent("d_unlabelled.png"))
        let (status, output) = try evalFiveClasses(images, labels)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("1 of 4 images have no label file in \(labels.path) and are not scored: "
                                      + "d_unlabelled.png"), output)
        XCTAssertTrue(output.contains(", 3 images, "), output)
    }

    /// `a.jpg` and `a.png` beside each other take the same label `a.png`: eval counted that label's
    /// pixels twice without a word (predict refuses such a folder, whose masks would collide).
    func testTwoImagesOfOneLabelAreRefused() throws {
        let scratch = try makeScratchDirectory("segview-eval-twice")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (images, labels) = try makeLabelledDataset(in: scratch)
        try FileManager.default.copyItem(at: imageFixtures.appendingPathComponent("jpeg/baseline.jpg"),
                                         to: images.appendingPathComponent("b_small.png"))
        let (status, output) = try evalFiveClasses(images, labels)
        XCTAssertEqual(status, 1, output)
        let message = "\(images.path)/b_small.jpg and \(images.path)/b_small.png would both be scored against "
            + "\(labels.path)/b_small.png, which would count it twice; move one away"
        XCTAssertTrue(output.contains(message), output)
        // In shards too: the two may fall in two shards, which `eval merge` would add up.
        for k in 1...3 {
            let sharded = try evalFiveClasses(images, labels, "--shard", "\(k)/3")
            XCTAssertEqual(sharded.status, 1, sharded.output)
            XCTAssertTrue(sharded.output.contains(message), sharded.output)
        }
    }

    /// An image whose name is not UTF-8 (a Latin-1 "é") is counted and named as failed by predict
    /// and eval: the folder listing left it out, so it was skipped without a word.
    func testAnImageWhoseNameIsNotUTF8IsNamedAsFailed() throws {
        let scratch = try makeScratchDirectory("segview-latin1")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (images, labels) = try makeLabelledDataset(in: scratch)
        // Two such names (é and è) look alike once their bytes are replaced: not a collision.
        try FileManager.default.copyItem(at: images.appendingPathComponent("a_street.png"),
                                         to: images.appendingPathComponent("e_street.png"))
        for (folder, source, byte) in [(images, "a_street.png", 0xE9), (labels, "a_street.png", 0xE9),
                                       (images, "e_street.png", 0xE8)] {
            let latin1 = Array(folder.path.utf8) + Array("/d_caf".utf8) + [UInt8(byte)] + Array(".png".utf8) + [0]
            let renamed = latin1.withUnsafeBufferPointer { name in
                name.withMemoryRebound(to: CChar.self) { rename(folder.appendingPathComponent(source).path,
                                                                $0.baseAddress!) }
            }
            XCTAssertEqual(renamed, 0)
        }
        let model = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        let failure = "failed: \(images.path)/d_caf\u{FFFD}.png: cannot open: its name is not valid UTF-8 (shown "
            + "with \u{FFFD}), which segview cannot open; rename the file"
        let predicted = try runSegview(["predict", images.path, "--model", model, "--out", "masks"], in: scratch)
        XCTAssertEqual(predicted.status, 1, predicted.output)
        XCTAssertTrue(predicted.output.contains("4 images, deeplabv3 resnet at output stride 8, scale auto: 2 "
                                                + "segmented, 2 failed"), predicted.output)
        XCTAssertTrue(predicted.output.contains(failure), predicted.output)
        let scored = try evalFiveClasses(images, labels)
        XCTAssertEqual(scored.status, 1, scored.output)
        XCTAssertTrue(scored.output.contains("2 of 4 images failed:\n  \(failure)\n  \(failure)"), scored.output)
        XCTAssertFalse(scored.output.contains("no label file"), scored.output)
    }
}

/// `eval --model A --model B`: both models scored on the same images, ranked by their difference.
final class EvalComparisonTests: XCTestCase {
    func testTwoModelsAreScoredAsTheirOwnRunsAndRankedByDifference() throws {
        let scratch = try makeScratchDirectory("segview-eval-compare")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let images = scratch.appendingPathComponent("images"), labels = scratch.appendingPathComponent("labels")
        for folder in [images, labels] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        let truth = try PNG.readLabels(modelFixtures.appendingPathComponent("eval/labels/street_37x53.png").path)
        // One picture under three labellings: the real one, its classes shifted, and one class only.
        let labellings = ["real": truth.pixels, "shifted": truth.pixels.map { $0 >= 5 ? $0 : ($0 + 1) % 5 },
                          "uniform": [UInt8](repeating: 2, count: truth.pixels.count)]
        for (name, pixels) in labellings {
            try FileManager.default.copyItem(at: modelFixtures.appendingPathComponent("street_37x53.png"),
                                             to: images.appendingPathComponent(name + ".png"))
            try PNG.write(RGBImage(width: truth.width, height: truth.height, channels: 1, pixels: pixels),
                          to: labels.appendingPathComponent(name + ".png").path)
        }
        let models = ["arch/fcn8s.safetensors", "arch/deeplabv3plus_resnet.safetensors"].map {
            modelFixtures.appendingPathComponent($0).path
        }
        func eval(_ models: [String], _ extra: [String] = ["--json"]) throws -> (Int32, String) {
            try runSegview(["eval", "--images", images.path, "--labels", labels.path]
                           + models.flatMap { ["--model", $0] } + extra)
        }
        // JSON writes a whole number without a fraction, which reads back as an integer.
        func number(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? .nan }
        func object(_ output: String) throws -> [String: Any] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], output)
        }
        let (status, output) = try eval(models)
        XCTAssertEqual(status, 0, output)
        let comparison = try object(output)
        let reports = try XCTUnwrap(comparison["models"] as? [[String: Any]])
        var meanIoU: [[String: Double]] = []
        for (model, report) in zip(models, reports) {
            let alone = try object(try eval([model]).1)
            XCTAssertEqual(report["confusion"] as? [[Int]], alone["confusion"] as? [[Int]], model)
            let rows = try XCTUnwrap(alone["per_image"] as? [[String: Any]])
            let pairs = rows.map { ($0["image"] as! String, number($0["mean_iou"])) }
            meanIoU.append(Dictionary(uniqueKeysWithValues: pairs))
        }
        let ranked = try XCTUnwrap(comparison["per_image_difference"] as? [[String: Any]])
        XCTAssertEqual(ranked.count, 3)
        let gains = ranked.map { number($0["difference"]) }
        XCTAssertEqual(gains, gains.sorted(by: >), "B's largest gains first")
        for row in ranked {
            let image = row["image"] as! String
            XCTAssertEqual(number(row["difference"]), meanIoU[1][image]! - meanIoU[0][image]!, accuracy: 1e-12, image)
        }
        XCTAssertGreaterThan(Set(gains).count, 1, "the labellings tell the models apart differently")

        let (textStatus, text) = try eval(models, [])
        XCTAssertEqual(textStatus, 0, text)
        XCTAssertTrue(text.contains("B better on"), text)
        XCTAssertTrue(text.hasPrefix("A \(models[0]): "), text)

        XCTAssertEqual(try eval(models, ["--csv", "x.csv"]).0, 64, "--csv takes one model")
        XCTAssertEqual(try eval(models + [models[0]]).0, 64, "at most two models")
        let fiveOthers = modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path
        let otherClasses = try eval([models[0], fiveOthers])
        XCTAssertEqual(otherClasses.0, 1)
        XCTAssertTrue(otherClasses.1.contains("have different classes; one set of labels cannot score both"),
                      otherClasses.1)
    }
}
