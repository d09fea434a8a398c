/// The resolution a network runs at, chosen per image: networks recognise objects at the scale
/// they were trained at, so a 12-megapixel photo is shrunk to what the model expects rather than
/// run at full size (slower, and every object looks several times larger than it learned).
public enum WorkingScale: Hashable, Sendable, CustomStringConvertible {
    /// Shrink to the model's `resize_size` (its short side in pixels), never enlarge.
    case auto
    /// The image's own size.
    case native
    /// This short side in pixels, shrinking or enlarging.
    case shortSide(Int)

    /// The short side assumed for model files that do not record one: torchvision's presets for
    /// its VOC-class segmentation weights resize to 520.
    public static let defaultResizeSize = 520

    /// `auto`, `native` or a short side in pixels (1-16384).
    public init?(scaleArgument argument: String) {
        switch argument {
        case "auto": self = .auto
        case "native": self = .native
        default:
            guard let side = Int(argument), (1...16384).contains(side) else { return nil }
            self = .shortSide(side)
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .native: return "native"
        case .shortSide(let side): return "\(side)"
        }
    }

    /// The short side an image is brought to, or nil for its own size. `resizeSize` is the model's.
    public func targetShortSide(resizeSize: Int?) -> Int? {
        switch self {
        case .auto: return resizeSize ?? Self.defaultResizeSize
        case .native: return nil
        case .shortSide(let side): return side
        }
    }

    /// The size a `width` x `height` image is run at, aspect ratio kept.
    public func workingSize(width: Int, height: Int, resizeSize: Int?) -> (width: Int, height: Int) {
        let short = min(width, height)
        guard let target = targetShortSide(resizeSize: resizeSize), target != short,
              self != .auto || short > target else { return (width, height) }
        let factor = Double(target) / Double(short)
        return (max(1, Int((Double(width) * factor).rounded())), max(1, Int((Double(height) * factor).rounded())))
    }
}
