/// An sRGB colour.
public struct RGB: Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    public init(_ triple: [UInt8]) { self.init(triple[0], triple[1], triple[2]) }

    /// Colours as interleaved RGB bytes (an image's pixels).
    public static func bytes(_ colors: [RGB]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 3 * colors.count)
        for (i, color) in colors.enumerated() {
            (bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2]) = (color.r, color.g, color.b)
        }
        return bytes
    }

    func distance(_ other: RGB) -> Int {
        let dr = Int(r) - Int(other.r), dg = Int(g) - Int(other.g), db = Int(b) - Int(other.b)
        return dr * dr + dg * dg + db * db
    }

    /// `self` blended toward `other` by `amount` (0: self, 1: other), in sRGB.
    func mixed(with other: RGB, _ amount: Float) -> RGB {
        func mix(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Float(a) * (1 - amount) + Float(b) * amount).rounded()) }
        return RGB(mix(r, other.r), mix(g, other.g), mix(b, other.b))
    }

    var luminance: Float { 0.2126 * Float(r) + 0.7152 * Float(g) + 0.0722 * Float(b) }
}

/// How many colours the terminal shows, which decides how cells are coloured.
public enum ColorMode: String, CaseIterable, Sendable {
    case truecolor = "24bit"
    case palette256 = "256"
    case ansi16 = "16"
    case ansi8 = "8"

    /// How many colours the mode draws with.
    var colorCount: Int32 {
        switch self {
        case .truecolor: return 1 << 24
        case .palette256: return 256
        case .ansi16: return 16
        case .ansi8: return 8
        }
    }

    public var label: String {
        switch self {
        case .truecolor: return "24-bit"
        case .palette256: return "256 colours"
        case .ansi16: return "16 colours"
        case .ansi8: return "8 colours"
        }
    }
}

/// Terminal colour numbers for RGB colours in one colour mode; class colours stay distinct.
///
/// Direct colour sends 0xRRGGBB (terminfo sends values below 8 as ANSI indices, whose colour is the
/// theme's, so those near-blacks become 0x010101).
/// 256 colours use indices 16-255 only: 0-15 are the user's theme. 16/8 colours take the nearest
/// of xterm's defaults. Classes take the nearest colour no other class has taken, while any is left.
public struct TerminalPalette: Sendable {
    public let mode: ColorMode
    /// One terminal colour per class, all different where the mode has enough colours.
    public let classColors: [Int32]

    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]
    static let ansi: [RGB] = [
        RGB(0, 0, 0), RGB(205, 0, 0), RGB(0, 205, 0), RGB(205, 205, 0), RGB(0, 0, 238), RGB(205, 0, 205),
        RGB(0, 205, 205), RGB(229, 229, 229), RGB(127, 127, 127), RGB(255, 0, 0), RGB(0, 255, 0),
        RGB(255, 255, 0), RGB(92, 92, 255), RGB(255, 0, 255), RGB(0, 255, 255), RGB(255, 255, 255),
    ]

    public init(mode: ColorMode, classColors colors: [RGB]) {
        self.mode = mode
        let candidates: [Int32]
        switch mode {
        case .truecolor:
            let palette = TerminalPalette(mode: mode)
            classColors = colors.map { palette.color($0) }
            return
        case .palette256: candidates = (16...255).map { Int32($0) }
        case .ansi16: candidates = (0..<16).map { Int32($0) }
        case .ansi8: candidates = (0..<8).map { Int32($0) }
        }
        // Greedy: each class takes the nearest colour not yet taken, so no two classes look alike
        // (in 16 colours, CamVid's sky, road, pole, sign and fence were all the same grey); past
        // the mode's colours (11 classes in 8) the nearest is shared.
        var taken = Set<Int32>()
        classColors = colors.map { color in
            let ranked = candidates.sorted {
                Self.rgb(index256: $0).distance(color) < Self.rgb(index256: $1).distance(color)
            }
            let choice = ranked.first { !taken.contains($0) } ?? ranked[0]
            taken.insert(choice)
            return choice
        }
    }

    private init(mode: ColorMode) {
        self.mode = mode
        classColors = []
    }

    /// The terminal colour for an arbitrary (image) colour.
    public func color(_ c: RGB) -> Int32 {
        switch mode {
        case .truecolor:
            let value = Int32(c.r) << 16 | Int32(c.g) << 8 | Int32(c.b)
            return value < 8 ? 0x010101 : value
        case .palette256:
            return Self.nearest256(c)
        case .ansi16, .ansi8:
            let candidates = mode == .ansi16 ? Self.ansi : Array(Self.ansi[0..<8])
            return Int32(candidates.indices.min { candidates[$0].distance(c) < candidates[$1].distance(c) }!)
        }
    }

    public func classColor(_ id: Int) -> Int32 { id >= 0 && id < classColors.count ? classColors[id] : color(RGB(0, 0, 0)) }

    /// What an index of the 256-colour palette shows (xterm's cube and grey ramp).
    public static func rgb(index256 index: Int32) -> RGB {
        if index >= 232 {
            let level = UInt8(8 + 10 * (Int(index) - 232))
            return RGB(level, level, level)
        }
        if index < 16 { return ansi[Int(index)] }
        let i = Int(index) - 16
        return RGB(UInt8(cubeLevels[i / 36]), UInt8(cubeLevels[(i / 6) % 6]), UInt8(cubeLevels[i % 6]))
    }

    /// The closer of the cube colour (midpoint thresholds per channel) and the grey ramp entry.
    static func nearest256(_ c: RGB) -> Int32 {
        func level(_ v: UInt8) -> Int {
            switch v { case 0..<48: return 0; case 48..<115: return 1; case 115..<155: return 2
            case 155..<195: return 3; case 195..<235: return 4; default: return 5 }
        }
        let cube = Int32(16 + 36 * level(c.r) + 6 * level(c.g) + level(c.b))
        let average = (Int(c.r) + Int(c.g) + Int(c.b)) / 3
        let grey = Int32(232 + min(23, max(0, (average - 3) / 10)))
        return rgb(index256: grey).distance(c) < rgb(index256: cube).distance(c) ? grey : cube
    }
}
