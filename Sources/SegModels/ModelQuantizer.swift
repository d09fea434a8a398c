import Foundation
import SegEngine

/// Makes an int8 model file from a float32 one, in the steps of `segview quantize`:
/// 1. passes on sample images in a context with a `.ranges` calibration record each dense
///    convolution's input range;
/// 2. `quantize(from:)` gives those layers int8 weights (one scale per output channel) and the
///    input scale and zero point of their range;
/// 3. passes in a context with an `.errors` calibration run each layer both ways;
/// 4. `keepFloat32(where:maximumError:)` sends back to float32 the layers whose int8 output strays
///    more than allowed;
/// 5. `encoded()` is the file: the original tensors unchanged, and per int8 layer its scales.
public final class ModelQuantizer {
    public let model: SegmentationModel
    private let file: SafeTensorsFile
    /// The convolutions int8 can run: dense ones (depthwise ones stay float32).
    private let layers: [ConvLayer]

    /// What became of one convolution.
    public struct LayerReport: Sendable {
        public let name: String
        /// Relative RMS error of its int8 output on the sample images (nil: never ran on them).
        public let error: Double?
        public let int8: Bool
    }

    public init(_ file: SafeTensorsFile) throws {
        self.file = file
        let (model, reader) = try ModelLoader.build(file, precision: .fp32)
        self.model = model
        layers = reader.layers.filter { $0.weights.groups == 1 && !$0.weights.isDepthwise }
    }

    /// Dense convolutions: the candidates for int8.
    public var candidates: Int { layers.count }

    /// Gives every layer `calibration` saw an int8 form; returns how many.
    @discardableResult
    public func quantize(from calibration: Calibration) -> Int {
        for layer in layers {
            layer.int8 = calibration.quantization(layer.name).map { input in
                let scales = Int8ConvWeights.weightScales(of: layer.weights)
                return Int8ConvWeights(layer.weights, weightScales: scales, input: input)
            }
        }
        return layers.filter { $0.int8 != nil }.count
    }

    /// Takes the int8 form from layers whose error in `errors` is above `maximumError`; reports every layer.
    public func keepFloat32(where errors: Calibration, maximumError: Double) -> [LayerReport] {
        layers.map { layer in
            let error = layer.int8 == nil ? nil : errors.relativeError(layer.name)
            if let error, error > maximumError { layer.int8 = nil }
            return LayerReport(name: layer.name, error: error, int8: layer.int8 != nil)
        }
    }

    /// The int8 model file: every tensor of the original as it was, the scales of each int8 layer,
    /// and the metadata with `precision` int8 and `int8_calibration` (how it was calibrated) added.
    public func encoded(calibrationNote: String) throws -> Data {
        var tensors = file.entries.keys.sorted().compactMap { file.stored($0) }
            .filter { !$0.name.hasSuffix(Int8Names.input) && !$0.name.hasSuffix(Int8Names.weightScale) }
        for layer in layers {
            guard let int8 = layer.int8 else { continue }
            tensors.append(.init(name: layer.name + Int8Names.input, shape: [2],
                                 values: [int8.input.scale, Float(int8.input.zeroPoint)]))
            tensors.append(.init(name: layer.name + Int8Names.weightScale, shape: [int8.outChannels],
                                 values: int8.weightScales))
        }
        var metadata = file.metadata
        metadata["precision"] = Precision.int8.rawValue
        metadata["int8_calibration"] = calibrationNote
        return try SafeTensorsWriter.encode(tensors, metadata: metadata)
    }
}
