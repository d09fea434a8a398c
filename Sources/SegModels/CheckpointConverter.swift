import Foundation
import SegEngine
import TorchCheckpoint

/// What a checkpoint's tensor names cannot tell: given on the command line, or inferred.
public struct CheckpointOptions: Sendable {
    /// tools/export.py's names (fcn32s, fcn16s, fcn8s, deeplabv3plus, refinenet, dfn) and torchvision's
    /// families (deeplabv3, fcn).
    public var architecture: String?
    public var backbone: String?
    /// A preset (voc, cityscapes, ade20k, camvid) or a text file of class names, one per line.
    public var classes: String?
    /// The stride the weights were trained at (DeepLabV3+: 16 unless given).
    public var outputStride: Int?
    /// FCN-8s "at-once" weights, whose skip scores take scaled inputs.
    public var atOnce = false

    public init() {}
}

/// A checkpoint that does not make a model, with the reason.
public struct CheckpointConversionError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// PyTorch checkpoints of the reference implementations (and torchvision's DeepLabV3 / FCN) as
/// segview model files: the same tensors, as float32, and the same metadata that tools/export.py
/// and tools/export_torchvision.py write, checked against the architecture before anything runs.
public enum CheckpointConverter {
    public static let architectures = ["fcn32s", "fcn16s", "fcn8s", "deeplabv3plus", "refinenet", "dfn", "deeplabv3",
                                       "fcn"]
    /// torchvision's model names, which say the backbone too.
    public static let torchvisionModels = [
        "deeplabv3_resnet50": ("deeplabv3", "resnet50"), "deeplabv3_resnet101": ("deeplabv3", "resnet101"),
        "fcn_resnet50": ("fcn", "resnet50"), "fcn_resnet101": ("fcn", "resnet101"),
    ]
    /// What --arch accepts.
    public static var architectureNames: [String] { architectures + torchvisionModels.keys.sorted() }
    public static let backbones = ["vgg16", "resnet50", "resnet101", "resnet152", "xception", "mobilenetv2", "resnet"]

    /// The names PyTorch checkpoints are saved under.
    public static let fileExtensions = [".pth", ".pt", ".pth.tar"]

    /// Whether `path` starts like a PyTorch checkpoint rather than a `.safetensors` file.
    /// Only regular files (or links to them: `latest.pth -> epoch_30.pth`) are looked into: the
    /// model-file reader explains anything else, and a FIFO must be neither read twice nor waited on here.
    public static func isCheckpoint(_ path: String) -> Bool {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
              let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return TorchCheckpoint.recognises(Array((try? handle.read(upToCount: 16)) ?? Data()))
    }

    /// The model file's bytes, and a line saying what they hold.
    public static func modelFile(_ path: String, _ options: CheckpointOptions) throws
        -> (contents: Data, summary: String) {
        func failure(_ reason: String) -> CheckpointConversionError { .init(path: path, reason: reason) }
        let checkpoint: TorchCheckpoint
        do {
            checkpoint = try TorchCheckpoint(path: path)
        } catch let error as CheckpointError {
            throw failure("\(error)")
        }
        // A weight saved as integers would be dropped with the bookkeeping below, and then missed
        // under its name; say what it is instead.
        if let (name, tensor) = checkpoint.tensors.sorted(by: { $0.key < $1.key }).first(where: { name, tensor in
            !tensor.isFloatingPoint && weightSuffixes.contains { name.hasSuffix($0) }
        }) {
            throw failure("tensor '\(name)' holds \(integerTypeNames[tensor.dtype] ?? tensor.dtype) values; "
                          + "segview takes weights in float32, float64, float16 or bfloat16")
        }
        // MobileNetV2's aliases of its own layers (jfzhang95) and integer bookkeeping are no weights.
        let tensors = checkpoint.tensors.filter { name, tensor in
            tensor.isFloatingPoint && !name.contains(".low_level_features.") && !name.contains(".high_level_features.")
        }
        let names = Set(tensors.keys)
        let (architecture, backbone) = try identify(names, options, failure)
        guard let classifier = classifierWeight[architecture], let classCount = tensors[classifier]?.shape.first else {
            throw failure("no tensor \(classifierWeight[architecture] ?? "?"): not a \(architecture) state dict")
        }
        guard (1...ModelMetadata.maximumClasses).contains(classCount) else {
            let most = ModelMetadata.maximumClasses
            throw failure("\(classifier) gives \(classCount) classes; segview takes 1 to \(most)")
        }
        let classes = try classSet(options.classes, count: classCount, failure)
        // FCN-VGG's stride is its name; the others' is the one the weights were trained at.
        let stride = isVGGFCN(architecture) ? Int(architecture.dropFirst(3).dropLast())!
            : options.outputStride ?? trainedStride[architecture]!
        var metadata = metadata(architecture, backbone, classes, stride: stride, options: options,
                                source: URL(fileURLWithPath: path).lastPathComponent)
        if architecture == "deeplabv3", let width = tensors["classifier.0.convs.0.0.weight"]?.shape.first {
            metadata["head_channels"] = String(width)  // 256 in torchvision's own weights
        }
        let contents = try SafeTensorsWriter.encode(tensors.keys.sorted().map { name in
            (name, tensors[name]!.shape, floats(tensors[name]!))
        }, metadata: metadata)
        // The architecture must take every tensor it needs from the file and leave none it does not know.
        let file = try SafeTensorsFile(contents: contents, path: path)
        let reader: WeightReader
        do {
            reader = try ModelLoader.build(file).reader
        } catch {
            throw failure("does not fit \(architecture) \(backbone): \(error)")
        }
        let ignored = unusedPrefixes[architecture] ?? []
        let unexpected = names.subtracting(reader.read)
            .filter { name in !ignored.contains { name.hasPrefix($0) } }.sorted()
        guard unexpected.isEmpty else {
            throw failure("does not fit \(architecture) \(backbone): \(unexpected.count) tensors it has no place for, "
                          + "such as \(unexpected.prefix(5).joined(separator: ", "))")
        }
        let wrapping = checkpoint.wrappers.isEmpty ? ""
            : " (inside '\(checkpoint.wrappers.joined(separator: "' > '"))')"
        return (contents, "\(architecture) \(backbone), \(classCount) classes (\(classes.source)), output stride "
                + "\(stride), \(names.count) tensors\(wrapping)")
    }

    /// Names that end so are weights or batch-norm statistics, never integer bookkeeping.
    static let weightSuffixes = [".weight", ".bias", ".running_mean", ".running_var"]
    static let integerTypeNames = ["I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
                                   "BOOL": "bool"]

    // MARK: what the names say

    /// The tensor holding the class scores' weights, which gives the class count.
    static let classifierWeight = [
        "fcn32s": "score_fr.weight", "fcn16s": "score_fr.weight", "fcn8s": "score_fr.weight",
        "deeplabv3plus": "decoder.last_conv.8.weight", "refinenet": "clf_conv.weight",
        "dfn": "smooth_heads.3.conv.weight", "deeplabv3": "classifier.4.weight", "fcn": "classifier.4.weight",
    ]

    static let trainedStride = ["deeplabv3plus": 16, "refinenet": 32, "dfn": 32, "deeplabv3": 8, "fcn": 8]

    /// Tensors of the references' state dicts that the forward pass never uses: torchvision's
    /// auxiliary head, DFN's deep-supervision heads and its first (unused) border refinement.
    static let unusedPrefixes = [
        "deeplabv3": ["aux_classifier."], "fcn": ["aux_classifier."],
        "dfn": ["smooth_heads.0.", "smooth_heads.1.", "smooth_heads.2.", "border_heads.0.", "border_heads.1.",
                "border_heads.2.", "border_aft_rrbs.0."],
    ]

    /// The architecture and backbone: as given, or read from the names. Output strides and FCN-8s
    /// "at-once" training are not in the names (`CheckpointOptions` say them).
    static func identify(_ names: Set<String>, _ options: CheckpointOptions,
                         _ failure: (String) -> CheckpointConversionError) throws -> (String, String) {
        if let named = options.architecture, let (architecture, backbone) = torchvisionModels[named] {
            guard options.backbone == nil || options.backbone == backbone else {
                throw failure("--arch \(named) has backbone \(backbone), not \(options.backbone!)")
            }
            return (architecture, backbone)
        }
        let architecture = options.architecture ?? inferredArchitecture(names)
        guard let architecture else {
            // --arch would not help: the architectures read their tensors by these names.
            throw failure("the tensor names match none of \(architectures.joined(separator: ", ")) (such as "
                          + "\(names.sorted().prefix(3).joined(separator: ", "))): not a model segview runs")
        }
        guard architectures.contains(architecture) else {
            throw failure("--arch \(architecture) is not one of \(architectureNames.joined(separator: ", "))")
        }
        let allowed: [String] = switch architecture {
        case "fcn32s", "fcn16s", "fcn8s": ["vgg16"]
        case "deeplabv3plus": ["resnet50", "resnet101", "resnet152", "xception", "mobilenetv2"]
        // "resnet": torchvision's layout at another depth or width, as tools/export_torchvision.py names it.
        case "deeplabv3", "fcn": ["resnet50", "resnet101", "resnet"]
        default: ["resnet50", "resnet101", "resnet152"]
        }
        let backbone = options.backbone ?? inferredBackbone(architecture, names)
        guard let backbone else {
            // A ResNet of another depth can be named; another kind of backbone (torchvision's
            // MobileNetV3 DeepLabV3) cannot be run at all.
            let stem = architecture == "refinenet" ? "" : "backbone."
            guard names.contains("\(stem)layer1.0.conv1.weight") else {
                let first = names.filter { $0.hasPrefix("backbone.") }.sorted().prefix(2)
                throw failure("this \(architecture)'s backbone is none segview runs (it takes "
                              + "\(allowed.joined(separator: ", "))): it is not a ResNet"
                              + (first.isEmpty ? "" : " (\(first.joined(separator: ", ")), ...)"))
            }
            throw failure("cannot tell the backbone of this \(architecture) (a ResNet of another depth); "
                          + "give --backbone")
        }
        guard allowed.contains(backbone) else {
            throw failure("\(architecture) takes backbone \(allowed.joined(separator: ", ")), not \(backbone)")
        }
        return (architecture, backbone)
    }

    /// wkentaro's FCN-32s/16s/8s (VGG-16, Caffe preprocessing), as opposed to torchvision's `fcn`.
    static func isVGGFCN(_ architecture: String) -> Bool { architecture.hasPrefix("fcn") && architecture != "fcn" }

    static func inferredArchitecture(_ names: Set<String>) -> String? {
        if names.contains("score_fr.weight") {
            if names.contains("score_pool3.weight") { return "fcn8s" }
            return names.contains("score_pool4.weight") ? "fcn16s" : "fcn32s"
        }
        if names.contains("decoder.last_conv.8.weight") { return "deeplabv3plus" }
        if names.contains("clf_conv.weight") { return "refinenet" }
        if names.contains("smooth_heads.3.conv.weight") { return "dfn" }
        if names.contains("classifier.4.weight") {
            return names.contains("classifier.0.convs.0.0.weight") ? "deeplabv3" : "fcn"
        }
        return nil
    }

    static func inferredBackbone(_ architecture: String, _ names: Set<String>) -> String? {
        if isVGGFCN(architecture) { return "vgg16" }
        if names.contains("backbone.features.0.0.weight") { return "mobilenetv2" }
        if names.contains("backbone.block1.skip.weight") { return "xception" }
        // ResNets differ in their third stage: 6, 23 or 36 blocks.
        let prefix = architecture == "refinenet" ? "layer3." : "backbone.layer3."
        var blocks = 0
        while names.contains("\(prefix)\(blocks).conv1.weight") { blocks += 1 }
        return [6: "resnet50", 23: "resnet101", 36: "resnet152"][blocks]
    }

    // MARK: metadata

    /// Class names and colours, and where they came from.
    struct ClassSet {
        let names: [String]
        let colors: [[UInt8]]
        let source: String
    }

    /// A preset by name, a file of names (VOC's palette), the preset whose class count this is,
    /// or numbered names.
    static func classSet(_ choice: String?, count: Int, _ failure: (String) -> CheckpointConversionError) throws
        -> ClassSet {
        if let choice, let preset = ClassPreset.all.first(where: { $0.name == choice }) {
            guard preset.classNames.count == count else {
                throw failure("--classes \(choice) has \(preset.classNames.count) classes, the weights \(count)")
            }
            return ClassSet(names: preset.classNames, colors: preset.classColors, source: choice)
        }
        if let choice {
            guard let text = try? String(contentsOfFile: choice, encoding: .utf8) else {
                let presets = ClassPreset.all.map(\.name).joined(separator: ", ")
                throw failure("--classes \(choice) is neither a preset (\(presets)) nor a readable file of class names")
            }
            let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            guard names.count == count else {
                throw failure("\(choice) names \(names.count) classes but the weights have \(count)")
            }
            return ClassSet(names: names, colors: ClassPreset.vocColors(count: count), source: choice)
        }
        if let preset = ClassPreset.all.first(where: { $0.classNames.count == count }) {
            return ClassSet(names: preset.classNames, colors: preset.classColors, source: preset.name + " by count")
        }
        return ClassSet(names: (0..<count).map { "class\($0)" }, colors: ClassPreset.vocColors(count: count),
                        source: "numbered: no preset has \(count) classes, --classes names them")
    }

    /// The metadata tools/export.py (or, for torchvision's families, tools/export_torchvision.py)
    /// writes for these weights.
    static func metadata(_ architecture: String, _ backbone: String, _ classes: ClassSet, stride: Int,
                         options: CheckpointOptions, source: String) -> [String: String] {
        let caffe = isVGGFCN(architecture)
        let torchvision = architecture == "deeplabv3" || architecture == "fcn"
        var metadata = [
            "format": "segview-model", "format_version": "1", "architecture": architecture, "backbone": backbone,
            "num_classes": String(classes.names.count), "class_names": pythonJSON(classes.names),
            "class_colors": "[" + classes.colors.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }
                .joined(separator: ", ") + "]",
            "input_mean": caffe ? "104.00698793,116.66876762,122.67891434" : "0.485,0.456,0.406",
            "input_std": caffe ? "1.0,1.0,1.0" : "0.229,0.224,0.225",
            "input_range": caffe ? "0-255" : "0-1", "input_channels": caffe ? "BGR" : "RGB",
            "output_stride": String(stride),
            // The short side each reference evaluates at: torchvision's presets 520, jfzhang95's crop
            // 513, the others VOC's images as they are (at most 500).
            "resize_size": torchvision ? "520" : architecture == "deeplabv3plus" ? "513" : "500",
            "description": torchvision ? "torchvision \(architecture)_\(backbone), weights from \(source)"
                : "\(architecture) \(backbone), weights from \(source)",
        ]
        if architecture == "deeplabv3plus" {
            metadata["aspp_rates"] = [6, 12, 18].map { String($0 * 16 / stride) }.joined(separator: ",")
        }
        if architecture == "deeplabv3" {
            // torchvision's DeepLabHead uses these at whatever stride it is trained.
            metadata["aspp_rates"] = "12,24,36"
        }
        if options.atOnce { metadata["fcn_at_once"] = "true" }
        return metadata
    }

    /// A list of strings as Python's `json.dumps` writes it (", " between items, non-ASCII escaped).
    static func pythonJSON(_ strings: [String]) -> String {
        "[" + strings.map { string in
            "\"" + string.utf16.map { unit -> String in
                switch unit {
                case 0x22: return "\\\""
                case 0x5C: return "\\\\"
                case 0x0A: return "\\n"
                case 0x0D: return "\\r"
                case 0x09: return "\\t"
                case 0x08: return "\\b"
                case 0x0C: return "\\f"
                case 0x20..<0x7F: return String(UnicodeScalar(UInt8(unit)))
                default: return String(format: "\\u%04x", unit)
                }
            }.joined() + "\""
        }.joined(separator: ", ") + "]"
    }

    /// A tensor's values as float32 (the reader keeps only floating-point tensors here).
    static func floats(_ tensor: CheckpointTensor) -> [Float] {
        tensor.bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return [] }  // no elements
            return FloatFormats.floats(base, count: tensor.shape.reduce(1, *), dtype: tensor.dtype) ?? []
        }
    }
}

extension ClassPreset {
    /// PASCAL VOC's palette for any count: bits 0/1/2 of the label go to R/G/B, from the most significant bit down.
    public static func vocColors(count: Int) -> [[UInt8]] {
        (0..<count).map { label in
            var rgb: [UInt8] = [0, 0, 0]
            var value = label
            for bit in 0..<8 {
                for channel in 0..<3 { rgb[channel] |= UInt8((value >> channel) & 1) << (7 - bit) }
                value >>= 3
            }
            return rgb
        }
    }
}
