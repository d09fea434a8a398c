import Foundation

/// A colour in OKLab (Björn Ottosson's perceptual space): distances there follow perceived
/// differences far better than in sRGB, which matters when a photo must make do with 240 colours.
struct OKLab {
    var l: Float, a: Float, b: Float

    init(l: Float, a: Float, b: Float) {
        (self.l, self.a, self.b) = (l, a, b)
    }

    init(_ c: RGB) {
        func linear(_ v: UInt8) -> Float {
            let x = Float(v) / 255
            return x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4)
        }
        let (r, g, b) = (linear(c.r), linear(c.g), linear(c.b))
        let l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
        let m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
        let s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
        self.l = 0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s
        self.a = 1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s
        self.b = 0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s
    }

    func distance(_ o: OKLab) -> Float {
        let dl = l - o.l, da = a - o.a, db = b - o.b
        return dl * dl + da * da + db * db
    }
}

extension TerminalPalette {
    /// The colours a photo may use in this mode and their terminal numbers: 256 colours the cube
    /// and grey ramp (16-255; 0-15 follow the user's theme), 16 and 8 colours xterm's defaults.
    private var photoCandidates: [(color: OKLab, code: Int32)] {
        let codes: [Int32]
        switch mode {
        case .truecolor: return []
        case .palette256: codes = (16...255).map { Int32($0) }
        case .ansi16: codes = (0..<16).map { Int32($0) }
        case .ansi8: codes = (0..<8).map { Int32($0) }
        }
        return codes.map { (OKLab(Self.rgb(index256: $0)), $0) }
    }

    /// Terminal colours for a photo's pixel grid (`width` pixels a row). In truecolour the pixels
    /// themselves; in fewer colours each pixel takes the perceptually nearest colour the mode has,
    /// and what that misses is carried to the next pixels (Floyd-Steinberg error diffusion in
    /// OKLab, serpentine), so an area keeps its average colour instead of snapping to one entry.
    /// Only photos go through here: class colours stay exact and never dither.
    public func photo(_ pixels: [RGB], width: Int) -> [Int32] {
        guard mode != .truecolor, width > 0 else { return pixels.map(color) }
        let candidates = photoCandidates
        let height = pixels.count / width
        var wanted = pixels.map(OKLab.init)
        var codes = [Int32](repeating: 0, count: pixels.count)
        for y in 0..<height {
            let leftToRight = y % 2 == 0
            for step in 0..<width {
                let x = leftToRight ? step : width - 1 - step
                let i = y * width + x
                // Accumulated error can push a value outside what any colour is; keep it in range.
                let target = OKLab(l: min(max(wanted[i].l, 0), 1), a: min(max(wanted[i].a, -0.4), 0.4),
                                   b: min(max(wanted[i].b, -0.4), 0.4))
                var best = 0, bestDistance = Float.infinity
                for (k, candidate) in candidates.enumerated() {
                    let d = candidate.color.distance(target)
                    if d < bestDistance { (best, bestDistance) = (k, d) }
                }
                codes[i] = candidates[best].code
                let chosen = candidates[best].color
                let error = (l: target.l - chosen.l, a: target.a - chosen.a, b: target.b - chosen.b)
                func spread(_ dx: Int, _ dy: Int, _ weight: Float) {
                    let nx = x + (leftToRight ? dx : -dx), ny = y + dy
                    guard nx >= 0, nx < width, ny < height else { return }
                    let j = ny * width + nx
                    wanted[j].l += error.l * weight
                    wanted[j].a += error.a * weight
                    wanted[j].b += error.b * weight
                }
                spread(1, 0, 7.0 / 16)
                spread(-1, 1, 3.0 / 16)
                spread(0, 1, 5.0 / 16)
                spread(1, 1, 1.0 / 16)
            }
        }
        return codes
    }
}
