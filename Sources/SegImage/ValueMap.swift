/// Colour ramps for maps of values in 0...1 (probabilities, border maps), shared by the viewer and
/// the PNGs `segview predict` writes.
public enum ValueMap: String, CaseIterable, Sendable {
    case grey, heat

    /// heat's stops, black -> purple -> red -> orange -> pale yellow: (value, red, green, blue).
    private static let heatStops: [(Float, Float, Float, Float)] = [
        (0, 0, 0, 4), (0.25, 87, 16, 110), (0.5, 188, 55, 84), (0.75, 249, 142, 9), (1, 252, 255, 164),
    ]

    /// The colour of `v`, clamped to 0...1 (NaN as 0). A tuple, not an array: views colour every
    /// pixel of a pane through this.
    public func color(_ v: Float) -> (r: UInt8, g: UInt8, b: UInt8) {
        let t = v.isNaN ? 0 : max(0, min(1, v))
        switch self {
        case .grey:
            let level = UInt8(t * 255 + 0.5)
            return (level, level, level)
        case .heat:
            let stops = Self.heatStops
            let i = max(1, stops.firstIndex { t <= $0.0 } ?? stops.count - 1)
            let (a, b) = (stops[i - 1], stops[i])
            let f = (t - a.0) / (b.0 - a.0)
            func mixed(_ from: Float, _ to: Float) -> UInt8 { UInt8(from + (to - from) * f + 0.5) }
            return (mixed(a.1, b.1), mixed(a.2, b.2), mixed(a.3, b.3))
        }
    }

    /// A picture of `values` (row-major): grey maps as one channel, heat maps as RGB.
    public func image(_ values: [Float], width: Int, height: Int) -> RGBImage {
        if self == .grey {
            return RGBImage(width: width, height: height, channels: 1, pixels: values.map { color($0).r })
        }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(3 * values.count)
        for value in values {
            let (r, g, b) = color(value)
            pixels.append(r)
            pixels.append(g)
            pixels.append(b)
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
