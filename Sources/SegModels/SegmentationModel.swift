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

    public static func load(path: String) throws -> SegmentationModel {
        let file = try SafeTensorsFile(path: path)
        let metadata = try ModelMetadata(file.metadata)
        let reader = WeightReader(file: file)
        switch metadata.architecture {
        case "deeplabv3": return try DeepLabV3(reader, metadata: metadata)
        case "fcn": return try FCNResNet(reader, metadata: metadata)
        case "fcn8s", "fcn16s", "fcn32s": return try FCNVGG(reader, metadata: metadata)
        case "deeplabv3plus": return try DeepLabV3Plus(reader, metadata: metadata)
        case "refinenet": return try RefineNet(reader, metadata: metadata)
        case "dfn": return try DFN(reader, metadata: metadata)
        default:
            throw ModelMetadataError.badMetadata(
                field: "architecture",
                reason: "'\(metadata.architecture)' is not one of \(architectures.joined(separator: ", "))")
        }
    }
}
