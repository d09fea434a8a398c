import Foundation

/// The number format a model's convolutions run in.
public enum Precision: String, Sendable, CaseIterable {
    case fp32, int8
}

/// A model file whose metadata is missing a field, or has one of the wrong form.
public struct ModelMetadataError: Error, CustomStringConvertible, Equatable {
    public let field: String
    public let reason: String
    public var description: String { "model metadata '\(field)': \(reason)" }

    static func badMetadata(field: String, reason: String) -> ModelMetadataError {
        ModelMetadataError(field: field, reason: reason)
    }
}

/// What a model file says about itself, read from the safetensors `__metadata__` map
/// (all values are strings there; lists are JSON or comma-separated, see the README's schema).
public struct ModelMetadata: Sendable, Equatable {
    public static let formatVersion = 1
    /// More classes than any public dataset has (ImageNet's 1000): the scores of a photo would not fit in memory.
    public static let maximumClasses = 1024
    /// Integers in the metadata (ASPP rates, block counts, widths) above this are refused: a rate
    /// of 1e9 made a forward pass on a 64x48 picture run for minutes.
    public static let maximumInteger = 4096

    public enum InputRange: String, Sendable { case unit = "0-1", byte = "0-255" }
    public enum ChannelOrder: String, Sendable { case rgb = "RGB", bgr = "BGR" }

    public var architecture: String
    public var backbone: String
    public var numClasses: Int
    public var classNames: [String]
    public var classColors: [[UInt8]]
    public var mean: [Float]
    public var std: [Float]
    public var inputRange: InputRange
    public var channelOrder: ChannelOrder
    /// The output stride the weights were trained at; the default at run time.
    public var outputStride: Int
    /// The short side, in pixels, of the images the model was trained and evaluated at
    /// (`resize_size`, as torchvision's weight presets call it); nil when the file does not say.
    public var resizeSize: Int?
    /// What the convolutions run in: in a file, by default (int8 where `segview quantize` calibrated
    /// it); in a loaded model, as loaded.
    public var precision: Precision = .fp32
    /// Everything else (architecture options such as `aspp_rates`, `backbone_layers`, a description).
    public var extra: [String: String]

    public init(_ map: [String: String]) throws {
        func field(_ key: String) throws -> String {
            guard let value = map[key] else { throw ModelMetadataError.badMetadata(field: key, reason: "missing") }
            return value
        }
        func integer(_ key: String) throws -> Int {
            guard let value = Int(try field(key)) else {
                throw ModelMetadataError.badMetadata(field: key, reason: "'\(map[key]!)' is not an integer")
            }
            return value
        }
        func floats(_ key: String, count: Int) throws -> [Float] {
            let parts = try field(key).split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == count, parts.allSatisfy({ $0 != nil }) else {
                throw ModelMetadataError.badMetadata(field: key, reason: "expected \(count) comma-separated numbers")
            }
            return parts.map { $0! }
        }
        func json<T>(_ key: String, as type: T.Type) throws -> T {
            guard let data = try field(key).data(using: .utf8),
                  let value = try? JSONSerialization.jsonObject(with: data) as? T else {
                throw ModelMetadataError.badMetadata(field: key, reason: "not a JSON \(T.self)")
            }
            return value
        }

        let version = try integer("format_version")
        guard version <= Self.formatVersion else {
            throw ModelMetadataError.badMetadata(field: "format_version",
                                             reason: "version \(version) is newer than this segview (\(Self.formatVersion))")
        }
        architecture = try field("architecture")
        backbone = try field("backbone")
        numClasses = try integer("num_classes")
        guard (1...Self.maximumClasses).contains(numClasses) else {
            throw ModelMetadataError.badMetadata(field: "num_classes", reason: "must be 1 to \(Self.maximumClasses)")
        }
        classNames = try json("class_names", as: [String].self)
        guard classNames.count == numClasses else {
            throw ModelMetadataError.badMetadata(field: "class_names", reason: "\(classNames.count) names for \(numClasses) classes")
        }
        let colors = try json("class_colors", as: [[Int]].self)
        guard colors.count == numClasses, colors.allSatisfy({ $0.count == 3 && $0.allSatisfy { (0...255).contains($0) } }) else {
            throw ModelMetadataError.badMetadata(field: "class_colors", reason: "expected \(numClasses) [r, g, b] triples of 0-255")
        }
        classColors = colors.map { $0.map(UInt8.init) }
        mean = try floats("input_mean", count: 3)
        std = try floats("input_std", count: 3)
        guard mean.allSatisfy({ $0.isFinite }) else {
            throw ModelMetadataError.badMetadata(field: "input_mean", reason: "must be finite")
        }
        guard std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw ModelMetadataError.badMetadata(field: "input_std", reason: "must be positive and finite")
        }
        guard let range = InputRange(rawValue: map["input_range"] ?? "0-1") else {
            throw ModelMetadataError.badMetadata(field: "input_range", reason: "expected 0-1 or 0-255")
        }
        inputRange = range
        let top: Float = range == .unit ? 1 : 255
        guard zip(mean, std).allSatisfy({ ($1 > 0 ? top / $1 : 0).isFinite && ($0 / $1).isFinite }) else {
            throw ModelMetadataError.badMetadata(field: "input_std", reason: "too small: normalised pixels would overflow")
        }
        guard let order = ChannelOrder(rawValue: map["input_channels"] ?? "RGB") else {
            throw ModelMetadataError.badMetadata(field: "input_channels", reason: "expected RGB or BGR")
        }
        channelOrder = order
        outputStride = try integer("output_stride")
        guard [8, 16, 32].contains(outputStride) else {
            throw ModelMetadataError.badMetadata(field: "output_stride", reason: "expected 8, 16 or 32")
        }
        if let text = map["resize_size"] {
            guard let side = Int(text), (8...16384).contains(side) else {
                throw ModelMetadataError.badMetadata(field: "resize_size",
                                                     reason: "'\(text)' is not a side of 8 to 16384 pixels")
            }
            resizeSize = side
        }
        if let text = map["precision"] {
            guard let value = Precision(rawValue: text) else {
                throw ModelMetadataError.badMetadata(field: "precision", reason: "'\(text)' is not fp32 or int8")
            }
            precision = value
        }
        let known: Set = ["format_version", "architecture", "backbone", "num_classes", "class_names", "class_colors",
                          "input_mean", "input_std", "input_range", "input_channels", "output_stride", "resize_size",
                          "precision"]
        extra = map.filter { !known.contains($0.key) }
    }

    /// An optional list of integers such as `aspp_rates = "12,24,36"`.
    public func integers(_ key: String) throws -> [Int]? {
        guard let text = extra[key] else { return nil }
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && (1...Self.maximumInteger).contains($0!) }) else {
            throw ModelMetadataError.badMetadata(
                field: key, reason: "expected comma-separated integers from 1 to \(Self.maximumInteger), got '\(text)'")
        }
        return parts.map { $0! }
    }

    public func integer(_ key: String) throws -> Int? {
        guard let values = try integers(key) else { return nil }
        guard values.count == 1 else { throw ModelMetadataError.badMetadata(field: key, reason: "expected one integer") }
        return values[0]
    }
}
