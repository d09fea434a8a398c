/// An 8-bit image, row-major, `channels` interleaved values per pixel (3 for RGB, 1 for labels).
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel count does not match \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int = 3, filledWith value: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: value, count: width * height * channels))
    }
}

extension RGBImage {
    /// The size that fits inside `maxSide` x `maxSide` with the aspect ratio kept (never larger).
    /// The size of a `width` x `height` picture fitted inside `maxSide` x `maxSide` (never larger).
    public static func fitting(width: Int, height: Int, maxSide: Int) -> (width: Int, height: Int) {
        let longest = max(width, height)
        guard longest > maxSide else { return (width, height) }
        return (max(1, width * maxSide / longest), max(1, height * maxSide / longest))
    }

    /// Shrunk by area averaging: every output pixel is the mean of the source pixels it covers.
    public func downscaled(width newWidth: Int, height newHeight: Int) -> RGBImage {
        var result = [UInt8](repeating: 0, count: newWidth * newHeight * channels)
        for oy in 0..<newHeight {
            let y0 = oy * height / newHeight, y1 = max(y0 + 1, (oy + 1) * height / newHeight)
            for ox in 0..<newWidth {
                let x0 = ox * width / newWidth, x1 = max(x0 + 1, (ox + 1) * width / newWidth)
                for c in 0..<channels {
                    var sum = 0
                    for y in y0..<y1 { for x in x0..<x1 { sum += Int(pixels[(y * width + x) * channels + c]) } }
                    result[(oy * newWidth + ox) * channels + c] = UInt8((sum + (y1 - y0) * (x1 - x0) / 2) / ((y1 - y0) * (x1 - x0)))
                }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, channels: channels, pixels: result)
    }

    /// Resized by nearest neighbour (label maps: no invented class ids).
    public func nearest(width newWidth: Int, height newHeight: Int) -> RGBImage {
        var result = [UInt8](repeating: 0, count: newWidth * newHeight * channels)
        for oy in 0..<newHeight {
            let y = min(height - 1, (2 * oy + 1) * height / (2 * newHeight))
            for ox in 0..<newWidth {
                let x = min(width - 1, (2 * ox + 1) * width / (2 * newWidth))
                for c in 0..<channels { result[(oy * newWidth + ox) * channels + c] = pixels[(y * width + x) * channels + c] }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, channels: channels, pixels: result)
    }
}
