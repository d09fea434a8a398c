import Foundation
import SegImage
@testable import SegTUI
import XCTest

/// How close a photo's pane stays to its 24-bit self in 256, 16 and 8 colours: the mean CIE76
/// delta E over colourful pixels (chroma > 15) after a 3x3 blur of both (so that dithering may
/// average out, as it does for the eye), on CamVid val frames when ../shared is there and on a
/// synthetic colourful picture always.
final class PhotoColourTests: XCTestCase {
    static let gridWidth = 64, gridHeight = 48

    /// CIE L*a*b* (D65) of an sRGB colour.
    static func lab(_ c: RGB) -> (l: Double, a: Double, b: Double) {
        func linear(_ v: UInt8) -> Double {
            let x = Double(v) / 255
            return x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4)
        }
        let (r, g, b) = (linear(c.r), linear(c.g), linear(c.b))
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
        func f(_ t: Double) -> Double { t > 216.0 / 24389 ? cbrt(t) : (24389.0 / 27 * t + 16) / 116 }
        return (116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z)))
    }

    /// 3x3 box blur of Lab values (edges use the pixels there are).
    static func blurred(_ values: [(l: Double, a: Double, b: Double)], width: Int) -> [(l: Double, a: Double, b: Double)] {
        let height = values.count / width
        return (0..<values.count).map { i in
            let (x, y) = (i % width, i / width)
            var sum = (l: 0.0, a: 0.0, b: 0.0), n = 0.0
            for ny in max(0, y - 1)...min(height - 1, y + 1) {
                for nx in max(0, x - 1)...min(width - 1, x + 1) {
                    let v = values[ny * width + nx]
                    sum = (sum.l + v.l, sum.a + v.a, sum.b + v.b)
                    n += 1
                }
            }
            return (sum.l / n, sum.a / n, sum.b / n)
        }
    }

    /// The measure for one picture's pane in `mode`, with `codes` mapping pane pixels to terminal colours.
    static func deltaE(_ picture: RGBImage, mode: ColorMode, codes: (TerminalPalette, [RGB], Int) -> [Int32]) -> Double {
        let viewport = Viewport(x: 0, y: 0, width: Double(picture.width), height: Double(picture.height))
        let size = viewport.gridSize(maxWidth: gridWidth, maxHeight: gridHeight)
        let pane = Sampling.averageRGB(picture.pixels, width: picture.width, height: picture.height, viewport: viewport,
                                       gridWidth: size.width, gridHeight: size.height)
        let shown = codes(TerminalPalette(mode: mode, classColors: []), pane, size.width).map { TerminalPalette.rgb(index256: $0) }
        let reference = blurred(pane.map(lab), width: size.width), result = blurred(shown.map(lab), width: size.width)
        var total = 0.0, count = 0.0
        for (r, s) in zip(reference, result) where (r.a * r.a + r.b * r.b).squareRoot() > 15 {
            total += ((r.l - s.l) * (r.l - s.l) + (r.a - s.a) * (r.a - s.a) + (r.b - s.b) * (r.b - s.b)).squareRoot()
            count += 1
        }
        return count > 0 ? total / count : 0
    }

    static func pictures() throws -> (name: String, images: [RGBImage]) {
        let val = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../../shared/datasets/camvid/val").standardized
        if let names = try? FileManager.default.contentsOfDirectory(atPath: val.path), !names.isEmpty {
            return ("CamVid val (first 20)", try names.sorted().prefix(20).map { try PNG.read(val.appendingPathComponent($0).path) })
        }
        // Hue bands over a lightness ramp, with a patterned area: every colour family at several levels.
        let (width, height) = (128, 96)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let hue = Double(x) / Double(width) * 6, light = 0.25 + 0.6 * Double(y) / Double(height)
                let c = (1 - abs(2 * light - 1)) * 0.8, m = light - c / 2
                let k = hue.truncatingRemainder(dividingBy: 2) - 1, x2 = c * (1 - abs(k))
                let rgb: (Double, Double, Double) = [(c, x2, 0), (x2, c, 0), (0, c, x2), (0, x2, c), (x2, 0, c), (c, 0, x2)][min(5, Int(hue))]
                for (channel, v) in [rgb.0, rgb.1, rgb.2].enumerated() { pixels[(y * width + x) * 3 + channel] = UInt8((v + m) * 255) }
            }
        }
        return ("synthetic hue ramp", [RGBImage(width: width, height: height, pixels: pixels)])
    }

    /// Dithered, perceptually matched colours stay closer to the photo than each pixel's nearest
    /// colour alone (what segview did: a red shopfront turned grey), by a wide margin.
    func testDitheringKeepsPhotosCloseToTheirColours() throws {
        let (name, images) = try Self.pictures()
        var lines: [String] = []
        for mode in [ColorMode.palette256, .ansi16, .ansi8] {
            let dithered = images.map { Self.deltaE($0, mode: mode) { palette, pane, width in palette.photo(pane, width: width) } }
            let nearest = images.map { Self.deltaE($0, mode: mode) { palette, pane, _ in pane.map(palette.color) } }
            let (d, n) = (dithered.reduce(0, +) / Double(images.count), nearest.reduce(0, +) / Double(images.count))
            lines.append(String(format: "%@: dithered %.2f, nearest %.2f", mode.label, d, n))
            XCTAssertLessThan(d, n * 0.75, "\(mode.label) on \(name)")
            // chafa 1.12's figures on the same frames and grid (tools/photo_delta_e.py): 2.95 and 19.36.
            if name.hasPrefix("CamVid"), let chafa = [ColorMode.palette256: 2.95, .ansi16: 19.36][mode] {
                XCTAssertLessThanOrEqual(d, chafa, "\(mode.label): at or below chafa's")
            }
        }
        print("delta E on \(name): " + lines.joined(separator: "; "))
    }
}
