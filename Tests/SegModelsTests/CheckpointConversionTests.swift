import Foundation
import SegEngine
@testable import SegModels
import XCTest

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The parity models of Fixtures/arch saved as checkpoints the way each reference's trainer saves
/// them (tools/checkpoint_fixtures.py) convert back to the same tensors, bit for bit.
final class CheckpointConversionTests: XCTestCase {
    let context = EngineContext(threads: 1)

    func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
    }

    /// (checkpoint, parity model, architecture, backbone inferred from the names or nil where only
    /// --backbone can say: narrow ResNets have no standard depth).
    let cases: [(String, String, String, String?)] = [
        ("deeplabv3plus_mobilenetv2_jfzhang95_legacy.pth.tar", "deeplabv3plus_mobilenetv2", "deeplabv3plus",
         "mobilenetv2"),
        ("deeplabv3plus_xception_jfzhang95.pth.tar", "deeplabv3plus_xception", "deeplabv3plus", "xception"),
        ("deeplabv3plus_resnet_plain.pth", "deeplabv3plus_resnet", "deeplabv3plus", nil),
        ("fcn8s_wkentaro.pth", "fcn8s", "fcn8s", "vgg16"),
        ("fcn32s_plain_legacy.pth", "fcn32s", "fcn32s", "vgg16"),
        ("refinenet_plain.pth", "refinenet", "refinenet", nil),
        ("dfn_torchseg.pth", "dfn", "dfn", nil),
    ]

    func options(backbone: String?) -> CheckpointOptions {
        var options = CheckpointOptions()
        options.backbone = backbone == nil ? "resnet101" : nil
        return options
    }

    func testReferenceCheckpointsConvertToTheSameTensors() throws {
        for (checkpoint, model, architecture, backbone) in cases {
            let path = fixture("checkpoints/" + checkpoint)
            let converted = try CheckpointConverter.modelFile(path, options(backbone: backbone))
            let file = try SafeTensorsFile(contents: converted.contents, path: path)
            let expected = try SafeTensorsFile(path: fixture("arch/\(model).safetensors"))
            XCTAssertEqual(Set(file.entries.keys), Set(expected.entries.keys), checkpoint)
            for (name, entry) in expected.entries {
                let ours = try file.floats(name, shape: entry.shape).map(\.bitPattern)
                let theirs = try expected.floats(name, shape: entry.shape).map(\.bitPattern)
                XCTAssertEqual(ours, theirs, "\(checkpoint): \(name)")
            }
            XCTAssertEqual(file.metadata["architecture"], architecture, checkpoint)
            XCTAssertEqual(file.metadata["backbone"], backbone ?? "resnet101", checkpoint)
            XCTAssertEqual(file.metadata["num_classes"], "5", checkpoint)
            XCTAssertEqual(file.metadata["class_names"], #"["class0", "class1", "class2", "class3", "class4"]"#)
            XCTAssertTrue(converted.summary.hasPrefix("\(architecture) \(backbone ?? "resnet101"), 5 classes"),
                          converted.summary)
        }
    }

    /// `--model checkpoint` runs the network the parity model is, at every stride.
    func testACheckpointPredictsWhatItsModelFilePredicts() throws {
        for (checkpoint, model, _, backbone) in cases {
            let ours = try ModelLoader.load(path: fixture("checkpoints/" + checkpoint),
                                            checkpoint: options(backbone: backbone))
            let reference = try ModelLoader.load(path: fixture("arch/\(model).safetensors"))
            XCTAssertEqual(ours.parameterCount, reference.parameterCount, checkpoint)
            let values: [Float] = (0..<3 * 21 * 26).map { Float($0 % 17) / 8 - 1 }
            let input = Tensor(channels: 3, height: 21, width: 26, values: values, in: context)
            for stride in reference.outputStrides {
                XCTAssertEqual(ours.predict(input, outputStride: stride).scores.toArray(),
                               reference.predict(input, outputStride: stride).scores.toArray(),
                               "\(checkpoint) OS \(stride)")
            }
        }
    }

    /// torchvision's model names say the backbone; 21 classes are VOC's.
    func testTorchvisionNamesAndADataParallelPrefix() throws {
        // A narrow torchvision-layout DeepLabV3 (as tools/export_torchvision.py makes with --layers),
        // saved from DataParallel.
        var options = CheckpointOptions()
        options.architecture = "deeplabv3"
        options.backbone = "resnet"
        let path = fixture("checkpoints/deeplabv3_torchvision_dataparallel.pth")
        let converted = try CheckpointConverter.modelFile(path, options)
        let file = try SafeTensorsFile(contents: converted.contents, path: path)
        let tiny = try SafeTensorsFile(path: fixture("tiny_deeplabv3.safetensors"))
        XCTAssertEqual(file.metadata["architecture"], "deeplabv3")
        for key in ["backbone", "class_names", "class_colors", "head_channels", "aspp_rates", "input_mean"] {
            XCTAssertEqual(file.metadata[key], tiny.metadata[key], key)
        }
        XCTAssertEqual(converted.summary, "deeplabv3 resnet, 21 classes (voc by count), output stride 8, 159 tensors")
        let ours = try ModelLoader.load(path: path, checkpoint: options)
        let reference = try ModelLoader.load(path: fixture("tiny_deeplabv3.safetensors"))
        let input = Tensor(channels: 3, height: 19, width: 23, values: (0..<3 * 19 * 23).map { Float($0 % 13) / 6 - 1 },
                           in: context)
        XCTAssertEqual(ours.predict(input, outputStride: 8).scores.toArray(),
                       reference.predict(input, outputStride: 8).scores.toArray())
        options.architecture = "deeplabv3_resnet50"
        options.backbone = nil
        XCTAssertEqual(try CheckpointConverter.modelFile(path, options).summary,
                       "deeplabv3 resnet50, 21 classes (voc by count), output stride 8, 159 tensors")
        options.backbone = "resnet101"
        XCTAssertThrowsError(try CheckpointConverter.modelFile(path, options)) {
            XCTAssertEqual("\($0)", "\(path): --arch deeplabv3_resnet50 has backbone resnet50, not resnet101")
        }
    }

    func testAStateDictThatDoesNotFitNamesWhatIsWrong() throws {
        var options = CheckpointOptions()
        options.architecture = "refinenet"
        options.backbone = "resnet101"
        let fcn = fixture("checkpoints/fcn8s_wkentaro.pth")
        XCTAssertThrowsError(try CheckpointConverter.modelFile(fcn, options)) {
            XCTAssertEqual("\($0)", "\(fcn): no tensor clf_conv.weight: not a refinenet state dict")
        }
        // The classifier is there, the backbone is another: the first tensor that differs is named.
        options.architecture = "deeplabv3plus"
        let xception = fixture("checkpoints/deeplabv3plus_xception_jfzhang95.pth.tar")
        XCTAssertThrowsError(try CheckpointConverter.modelFile(xception, options)) {
            XCTAssertTrue("\($0)".hasSuffix("does not fit deeplabv3plus resnet101: tensor 'backbone.conv1.weight' has "
                                            + "shape [8, 3, 3, 3], expected [8, 3, 7, 7]"), "\($0)")
        }
        // Everything it needs is there, and more: the tensors it has no place for are named.
        let extra = fixture("checkpoints/refinenet_extra.pth")
        options.architecture = nil
        XCTAssertThrowsError(try CheckpointConverter.modelFile(extra, options)) {
            XCTAssertTrue("\($0)".hasSuffix("does not fit refinenet resnet101: 1 tensors it has no place for, such as "
                                            + "leftover.weight"), "\($0)")
        }
        options.backbone = "xception"
        XCTAssertThrowsError(try CheckpointConverter.modelFile(extra, options)) {
            XCTAssertEqual("\($0)", "\(extra): refinenet takes backbone resnet50, resnet101, resnet152, not xception")
        }
    }

    /// Models segview does not run say so, instead of asking for options that cannot help:
    /// torchvision's LR-ASPP and its MobileNetV3 DeepLabV3 were told to give --arch or --backbone.
    func testLayoutsSegviewDoesNotRunAreNamedAsSuch() {
        func reason(_ names: Set<String>) -> String {
            do {
                _ = try CheckpointConverter.identify(names, CheckpointOptions()) {
                    CheckpointConversionError(path: "m", reason: $0)
                }
                return "identified"
            } catch {
                return (error as? CheckpointConversionError)?.reason ?? "\(error)"
            }
        }
        let lraspp: Set = ["backbone.0.0.weight", "classifier.cbr.0.weight", "classifier.scale.1.weight"]
        XCTAssertEqual(reason(lraspp), "the tensor names match none of fcn32s, fcn16s, fcn8s, deeplabv3plus, "
                       + "refinenet, dfn, deeplabv3, fcn (such as backbone.0.0.weight, classifier.cbr.0.weight, "
                       + "classifier.scale.1.weight): not a model segview runs")
        let mobileNetV3: Set = ["backbone.0.0.weight", "backbone.1.block.0.0.weight", "classifier.4.weight",
                                "classifier.0.convs.0.0.weight"]
        XCTAssertEqual(reason(mobileNetV3), "this deeplabv3's backbone is none segview runs (it takes resnet50, "
                       + "resnet101, resnet): it is not a ResNet (backbone.0.0.weight, backbone.1.block.0.0.weight, "
                       + "...)")
        let shallow: Set = ["classifier.4.weight", "backbone.layer1.0.conv1.weight", "backbone.layer3.0.conv1.weight"]
        XCTAssertEqual(reason(shallow), "cannot tell the backbone of this fcn (a ResNet of another depth); "
                       + "give --backbone")
    }

    /// A checkpoint reached through a symbolic link (`latest.pth -> epoch_30.pth`) loads as the file
    /// does: it was read as a .safetensors file ("header length ... exceeds the file size").
    func testACheckpointThroughASymbolicLinkLoads() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let target = fixture("checkpoints/fcn8s_wkentaro.pth")
        let link = scratch.appendingPathComponent("latest.pth").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        XCTAssertTrue(CheckpointConverter.isCheckpoint(link))
        let direct = try ModelLoader.load(path: target), linked = try ModelLoader.load(path: link)
        XCTAssertEqual(linked.metadata.architecture, "fcn8s")
        XCTAssertEqual(linked.metadata.numClasses, direct.metadata.numClasses)
    }

    /// A weight stored as integers is named with its type (it was dropped as bookkeeping, and the
    /// architecture then said the file had no such tensor); the batch norm's counter is no weight.
    func testAnIntegerWeightIsNamed() throws {
        let path = fixture("checkpoints/integer_weight.pth")
        var options = CheckpointOptions()
        options.architecture = "fcn8s"
        XCTAssertThrowsError(try CheckpointConverter.modelFile(path, options)) {
            XCTAssertEqual("\($0)", "\(path): tensor 'conv1_1.weight' holds int64 values; segview takes weights "
                           + "in float32, float64, float16 or bfloat16")
        }
    }

    /// A file named as a checkpoint that is none (empty, or other bytes) says so, not only that it
    /// is no .safetensors file; a .safetensors name keeps the reader's own message.
    func testAFileNamedAsACheckpointThatIsNoneSaysSo() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segview-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for (name, contents) in [("empty.pth", ""), ("text.pt", "not a model"), ("text.safetensors", "not a model")] {
            let path = scratch.appendingPathComponent(name).path
            try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try ModelLoader.file(path: path)) {
                let expected = name.hasSuffix(".safetensors") ? "is not a valid .safetensors file"
                    : ": neither a PyTorch checkpoint (torch.save's zip or legacy pickle) nor a .safetensors file ("
                XCTAssertTrue("\($0)".hasPrefix(path) && "\($0)".contains(expected), "\($0)")
            }
        }
    }

    func testVOCColoursFollowTheBitInterleavingRule() {
        let voc = ClassPreset.vocColors(count: 256)
        XCTAssertEqual(voc[0], [0, 0, 0])
        XCTAssertEqual(voc[1], [128, 0, 0])
        XCTAssertEqual(voc[15], [192, 128, 128])
        XCTAssertEqual(voc[20], [0, 64, 128])
        XCTAssertEqual(voc[255], [224, 224, 192])
        XCTAssertEqual(ClassPreset.all.first { $0.name == "voc" }?.classColors, Array(voc.prefix(21)))
    }

    /// Class names and colours by preset, by file, by class count, or numbered.
    func testClassPresetsAndTheirJSONAgree() throws {
        let json = repositoryRoot.appendingPathComponent("tools/class_presets.json")
        let presets = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: [String: Any]]
        XCTAssertEqual(Set(presets?.keys ?? [:].keys), Set(ClassPreset.all.map(\.name)))
        for preset in ClassPreset.all {
            XCTAssertEqual(presets?[preset.name]?["names"] as? [String], preset.classNames, preset.name)
            let colors = (presets?[preset.name]?["colors"] as? [[Int]])?.map { $0.map(UInt8.init) }
            XCTAssertEqual(colors, preset.classColors)
        }
        XCTAssertEqual(ClassPreset.all.map { $0.classNames.count }, [21, 19, 150, 11])
        let failure = { (reason: String) in CheckpointConversionError(path: "x", reason: reason) }
        XCTAssertEqual(try CheckpointConverter.classSet(nil, count: 19, failure).names.last, "bicycle")
        XCTAssertEqual(try CheckpointConverter.classSet("ade20k", count: 150, failure).colors[2], [6, 230, 230])
        XCTAssertThrowsError(try CheckpointConverter.classSet("camvid", count: 12, failure)) {
            XCTAssertEqual("\($0)", "x: --classes camvid has 11 classes, the weights 12")
        }
        XCTAssertEqual(try CheckpointConverter.classSet(nil, count: 3, failure).names, ["class0", "class1", "class2"])
        XCTAssertEqual(CheckpointConverter.pythonJSON(["a\"b", "café", "tab\t"]), #"["a\"b", "caf\u00e9", "tab\t"]"#)
    }
}
