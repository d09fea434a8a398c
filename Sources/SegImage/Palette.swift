/// Class colours and the pictures made from a label map.
public struct Palette: Equatable, Sendable {
    public var colors: [[UInt8]]

    public init(colors: [[UInt8]]) { self.colors = colors }

    public func color(_ label: Int) -> [UInt8] { label >= 0 && label < colors.count ? colors[label] : [0, 0, 0] }

    /// The colours as one flat RGB table with a black entry at the end for labels out of range.
    private func table() -> (rgb: [UInt8], outOfRange: Int) {
        (colors.flatMap { $0 } + [0, 0, 0], colors.count)
    }

    /// A colour picture of `labels` (row-major, `width` x `height`).
    public func colorize(_ labels: [Int32], width: Int, height: Int) -> RGBImage {
        let (rgb, outOfRange) = table()
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for (i, label) in labels.enumerated() {
            let entry = (label >= 0 && Int(label) < outOfRange ? Int(label) : outOfRange) * 3
            pixels[i * 3] = rgb[entry]; pixels[i * 3 + 1] = rgb[entry + 1]; pixels[i * 3 + 2] = rgb[entry + 2]
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// The class colours blended over `image` with the given opacity.
    public func overlay(_ labels: [Int32], on image: RGBImage, opacity: Float = 0.5) -> RGBImage {
        precondition(labels.count == image.width * image.height && image.channels == 3, "overlay size mismatch")
        let (rgb, outOfRange) = table()
        var pixels = image.pixels
        for (i, label) in labels.enumerated() {
            let entry = (label >= 0 && Int(label) < outOfRange ? Int(label) : outOfRange) * 3
            for c in 0..<3 {
                let blended = Float(pixels[i * 3 + c]) * (1 - opacity) + Float(rgb[entry + c]) * opacity
                pixels[i * 3 + c] = UInt8(min(255, blended.rounded()))
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: pixels)
    }
}
