/// Colour ramps for maps of values in 0...1 (probabilities, border maps), shared by the viewer and
/// the PNGs `segview predict` writes.
public enum ValueMap: String, CaseIterable, Sendable {
    case grey, heat

    /// Black to white.
    static func grey(_ v: Float) -> [UInt8] {
        let level = UInt8(clamp(v) * 255 + 0.5)
        return [level, level, level]
    }

    /// Black -> purple -> red -> orange -> pale yellow.
    static func heat(_ v: Float) -> [UInt8] {
        let stops: [(Float, [Float])] = [(0, [0, 0, 4]), (0.25, [87, 16, 110]), (0.5, [188, 55, 84]),
                                         (0.75, [249, 142, 9]), (1, [252, 255, 164])]
        let t = clamp(v)
        let i = max(1, stops.firstIndex { t <= $0.0 } ?? stops.count - 1)
        let (a, b) = (stops[i - 1], stops[i])
        let f = (t - a.0) / (b.0 - a.0)
        return (0..<3).map { UInt8(a.1[$0] + (b.1[$0] - a.1[$0]) * f + 0.5) }
    }

    private static func clamp(_ v: Float) -> Float { v.isNaN ? 0 : max(0, min(1, v)) }

    public func color(_ v: Float) -> [UInt8] {
        switch self {
        case .grey: return Self.grey(v)
        case .heat: return Self.heat(v)
        }
    }

    /// A picture of `values` (row-major): grey maps as one channel, heat maps as RGB.
    public func image(_ values: [Float], width: Int, height: Int) -> RGBImage {
        if self == .grey {
            return RGBImage(width: width, height: height, channels: 1, pixels: values.map { Self.grey($0)[0] })
        }
        return RGBImage(width: width, height: height, pixels: values.flatMap { Self.heat($0) })
    }
}
