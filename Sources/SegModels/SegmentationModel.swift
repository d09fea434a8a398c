import SegEngine

/// What every architecture returns: class scores (logits) at input resolution, and for models
/// that have one (DFN) a border probability map at input resolution.
public struct Prediction {
    public let scores: Tensor
    public let border: Tensor?

    public init(scores: Tensor, border: Tensor? = nil) {
        self.scores = scores
        self.border = border
    }
}

/// The one interface the CLI and the viewer know models by.
public protocol SegmentationModel: AnyObject {
    var metadata: ModelMetadata { get }
    /// The output strides this model can run at with its weights; the stride is chosen per call,
    /// so switching needs no reload.
    var outputStrides: [Int] { get }
    /// Number of weight values (after BatchNorm folding).
    var parameterCount: Int { get }
    /// Runs the network on a normalised CHW image.
    func predict(_ image: Tensor, outputStride: Int) -> Prediction
    /// What the network is called when run at `outputStride` (FCN-VGG: fcn32s, fcn16s, fcn8s).
    func name(outputStride: Int) -> String
}

extension SegmentationModel {
    public func name(outputStride: Int) -> String { metadata.architecture }
}

/// Opens a model file and builds the architecture its metadata names.
public enum ModelLoader {
    public static let architectures = ["deeplabv3", "fcn", "fcn8s", "fcn16s", "fcn32s", "deeplabv3plus", "refinenet", "dfn"]

    /// A model file, or a PyTorch checkpoint converted on the way (`checkpoint` says what its
    /// tensor names cannot), in `precision` (nil: the file's own).
    public static func load(path: String, checkpoint: CheckpointOptions = CheckpointOptions(),
                            precision: Precision? = nil) throws -> SegmentationModel {
        try load(file(path: path, checkpoint: checkpoint), precision: precision)
    }

    /// A model file's tensors, or a checkpoint's converted to them.
    public static func file(path: String, checkpoint: CheckpointOptions = CheckpointOptions()) throws
        -> SafeTensorsFile {
        if CheckpointConverter.isCheckpoint(path) {
            let converted = try CheckpointConverter.modelFile(path, checkpoint)
            return try SafeTensorsFile(contents: converted.contents, path: path)
        }
        do {
            return try SafeTensorsFile(path: path)
        } catch SafeTensorsError.notSafeTensors(_, let reason)
                    where CheckpointConverter.fileExtensions.contains(where: path.hasSuffix) {
            // Named as a checkpoint, read as neither: the safetensors reader's words alone would mislead.
            throw CheckpointConversionError(path: path, reason: "neither a PyTorch checkpoint (torch.save's zip or "
                                            + "legacy pickle) nor a .safetensors file (\(reason))")
        }
    }

    public static func load(_ file: SafeTensorsFile, precision: Precision? = nil) throws -> SegmentationModel {
        try build(file, precision: precision).model
    }

    /// The precision a model file runs in when none is asked for (a checkpoint: fp32).
    public static func precision(path: String) -> Precision {
        guard !CheckpointConverter.isCheckpoint(path), let file = try? SafeTensorsFile(path: path),
              let metadata = try? ModelMetadata(file.metadata) else { return .fp32 }
        return metadata.precision
    }

    /// The model and the reader that built it (which knows the tensors it read).
    static func build(_ file: SafeTensorsFile, precision: Precision? = nil) throws
        -> (model: SegmentationModel, reader: WeightReader) {
        var metadata = try ModelMetadata(file.metadata)
        if precision == .int8 && metadata.precision != .int8 {
            throw ModelMetadataError.badMetadata(
                field: "precision", reason: "the file is float32 only: make an int8 one with `segview quantize`")
        }
        let reader = WeightReader(file: file, precision: precision ?? metadata.precision)
        metadata.precision = reader.precision  // a loaded model's: what it runs in
        let model: SegmentationModel = switch metadata.architecture {
        case "deeplabv3": try DeepLabV3(reader, metadata: metadata)
        case "fcn": try FCNResNet(reader, metadata: metadata)
        case "fcn8s", "fcn16s", "fcn32s": try FCNVGG(reader, metadata: metadata)
        case "deeplabv3plus": try DeepLabV3Plus(reader, metadata: metadata)
        case "refinenet": try RefineNet(reader, metadata: metadata)
        case "dfn": try DFN(reader, metadata: metadata)
        default:
            throw ModelMetadataError.badMetadata(
                field: "architecture",
                reason: "'\(metadata.architecture)' is not one of \(architectures.joined(separator: ", "))")
        }
        if reader.precision == .int8 && reader.layers.allSatisfy({ $0.int8 == nil }) {
            throw ModelMetadataError.badMetadata(
                field: "precision", reason: "int8, but no convolution has int8 scales (see segview quantize)")
        }
        return (model, reader)
    }
}
