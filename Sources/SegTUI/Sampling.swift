import SegEngine

/// The part of the source image a pane shows, in source pixels (fractional), and the size of the
/// pixel grid it is drawn at. Zooming in shrinks the rectangle around the cursor.
public struct Viewport: Equatable, Sendable {
    public var x: Double, y: Double, width: Double, height: Double

    /// The rectangle for `zoom` (0: whole image; each step halves it) centred on the cursor, inside the image.
    public static func around(cursorX: Int, cursorY: Int, zoom: Int, imageWidth: Int, imageHeight: Int) -> Viewport {
        let factor = Double(1 << max(0, zoom))
        let w = Double(imageWidth) / factor, h = Double(imageHeight) / factor
        let x = min(max(0, Double(cursorX) + 0.5 - w / 2), Double(imageWidth) - w)
        let y = min(max(0, Double(cursorY) + 0.5 - h / 2), Double(imageHeight) - h)
        return Viewport(x: x, y: y, width: w, height: h)
    }

    /// The largest grid with the viewport's aspect ratio inside `maxWidth` x `maxHeight` pixels
    /// (a half-block cell is one pixel wide and two tall, which is about square on screen).
    public func gridSize(maxWidth: Int, maxHeight: Int) -> (width: Int, height: Int) {
        let scale = min(Double(maxWidth) / width, Double(maxHeight) / height)
        return (max(1, min(maxWidth, Int((width * scale).rounded()))), max(1, min(maxHeight, Int((height * scale).rounded()))))
    }
}

/// What the samplers read: 8-bit pixels or float maps.
public protocol SampleValue { var sampleValue: Float { get } }
extension Float: SampleValue { @inline(__always) public var sampleValue: Float { self } }
extension UInt8: SampleValue { @inline(__always) public var sampleValue: Float { Float(self) } }

/// For each target index along one axis, the source pixels it covers and by how much.
struct Coverage {
    /// Per target index: (first source index, weights for consecutive source indices). When target
    /// pixels are no larger than source pixels, the one source pixel under the target's centre.
    var spans: [(first: Int, weights: [Double])]
    /// Per target index: the source indices it covers with a positive weight (for majority and maximum).
    var ranges: [Range<Int>] {
        spans.map { span in
            let first = span.first + (span.weights.firstIndex { $0 > 0 } ?? 0)
            let last = span.first + (span.weights.lastIndex { $0 > 0 } ?? 0)
            return first..<(last + 1)
        }
    }

    init(start: Double, length: Double, source: Int, target: Int) {
        let step = length / Double(target)
        spans = (0..<target).map { t in
            let a = start + Double(t) * step, b = a + step
            if step <= 1 {  // the source pixel under the target pixel's centre
                return (min(source - 1, max(0, Int((a + b) / 2))), [1])
            }
            let first = max(0, Int(a.rounded(.down))), last = min(source - 1, Int(b.rounded(.up)) - 1)
            var weights: [Double] = []
            for s in first...max(first, last) {
                weights.append(max(0, min(b, Double(s + 1)) - max(a, Double(s))))
            }
            return (first, weights)
        }
    }
}

/// Downscaling rules, each chosen for what the layer means:
/// the image by exact area average, class masks by majority (never a colour that is no class),
/// border maps by maximum (a 1-pixel border survives any reduction); nearest when magnifying.
public enum Sampling {
    /// Exact box filter over `channels` interleaved values per pixel: each target pixel is the
    /// coverage-weighted mean of the source pixels under it. Target rows are split between threads.
    @_specialize(where Value == UInt8)
    @_specialize(where Value == Float)
    public static func average<Value: SampleValue>(_ values: UnsafeBufferPointer<Value>, channels: Int, width: Int, height: Int,
                               viewport: Viewport, gridWidth: Int, gridHeight: Int) -> [Float] {
        let xs = Coverage(start: viewport.x, length: viewport.width, source: width, target: gridWidth)
        let ys = Coverage(start: viewport.y, length: viewport.height, source: height, target: gridHeight)
        var out = [Float](repeating: 0, count: gridWidth * gridHeight * channels)
        out.withUnsafeMutableBufferPointer { target in
            let target = target.baseAddress!
            Parallel.forEach(gridHeight, threads: Parallel.cores) { ty in
                let row = target + ty * gridWidth * channels
                let (firstY, weightsY) = ys.spans[ty]
                var total: Float = 0
                for (dy, wy) in weightsY.enumerated() where wy > 0 {
                    let source = values.baseAddress! + (firstY + dy) * width * channels
                    let wy = Float(wy)
                    for tx in 0..<gridWidth {
                        let (firstX, weightsX) = xs.spans[tx]
                        for (dx, wx) in weightsX.enumerated() {
                            let w = wy * Float(wx), pixel = source + (firstX + dx) * channels
                            for c in 0..<channels { row[tx * channels + c] += w * pixel[c].sampleValue }
                        }
                    }
                    total += wy
                }
                for tx in 0..<gridWidth {
                    let area = total * Float(xs.spans[tx].weights.reduce(0, +))
                    for c in 0..<channels { row[tx * channels + c] /= area }
                }
            }
        }
        return out
    }

    public static func average(_ values: [Float], width: Int, height: Int, viewport: Viewport,
                               gridWidth: Int, gridHeight: Int) -> [Float] {
        values.withUnsafeBufferPointer {
            average($0, channels: 1, width: width, height: height, viewport: viewport, gridWidth: gridWidth, gridHeight: gridHeight)
        }
    }

    /// `average` of an interleaved 8-bit RGB image, rounded to 8 bits.
    public static func averageRGB(_ pixels: [UInt8], width: Int, height: Int, viewport: Viewport,
                                  gridWidth: Int, gridHeight: Int) -> [RGB] {
        let means = pixels.withUnsafeBufferPointer {
            average($0, channels: 3, width: width, height: height, viewport: viewport, gridWidth: gridWidth, gridHeight: gridHeight)
        }
        func byte(_ v: Float) -> UInt8 { UInt8(min(255, max(0, v.rounded()))) }
        return (0..<gridWidth * gridHeight).map { RGB(byte(means[$0 * 3]), byte(means[$0 * 3 + 1]), byte(means[$0 * 3 + 2])) }
    }

    /// The most frequent label in each target pixel's area; a tie goes to the label at the area's
    /// centre if it is among the tied, else to the smallest id. Labels outside 0..<classes count as -1.
    public static func majority(_ labels: [Int32], width: Int, height: Int, classes: Int, viewport: Viewport,
                                gridWidth: Int, gridHeight: Int) -> [Int32] {
        let columns = Coverage(start: viewport.x, length: viewport.width, source: width, target: gridWidth).ranges
        let rows = Coverage(start: viewport.y, length: viewport.height, source: height, target: gridHeight).ranges
        func slot(_ label: Int32) -> Int { label >= 0 && Int(label) < classes ? Int(label) : classes }
        return labels.withUnsafeBufferPointer { labels in
            perTargetRow(gridWidth: gridWidth, gridHeight: gridHeight, initial: Int32(-1)) { ty, row in
                var counts = [Int](repeating: 0, count: classes + 1)
                var touched: [Int] = []
                let sourceRows = rows[ty]
                for tx in 0..<gridWidth {
                    let sourceColumns = columns[tx]
                    for y in sourceRows {
                        for x in sourceColumns {
                            let s = slot(labels[y * width + x])
                            if counts[s] == 0 { touched.append(s) }
                            counts[s] += 1
                        }
                    }
                    // Loops, not map and filter: this runs for every pixel of the pane.
                    var best = 0
                    for s in touched where counts[s] > best { best = counts[s] }
                    let centre = slot(labels[(sourceRows.lowerBound + sourceRows.count / 2) * width
                                             + sourceColumns.lowerBound + sourceColumns.count / 2])
                    var winner = centre
                    if counts[centre] != best {
                        winner = Int.max
                        for s in touched where counts[s] == best && s < winner { winner = s }
                    }
                    row[tx] = winner == classes ? -1 : Int32(winner)
                    for s in touched { counts[s] = 0 }
                    touched.removeAll(keepingCapacity: true)
                }
            }
        }
    }

    /// The largest value in each target pixel's area.
    public static func maximum(_ values: [Float], width: Int, height: Int, viewport: Viewport,
                               gridWidth: Int, gridHeight: Int) -> [Float] {
        let columns = Coverage(start: viewport.x, length: viewport.width, source: width, target: gridWidth).ranges
        let rows = Coverage(start: viewport.y, length: viewport.height, source: height, target: gridHeight).ranges
        return values.withUnsafeBufferPointer { source in
            perTargetRow(gridWidth: gridWidth, gridHeight: gridHeight, initial: Float(0)) { ty, row in
                for tx in 0..<gridWidth {
                    var best = -Float.infinity
                    for y in rows[ty] {
                        for x in columns[tx] { best = max(best, source[y * width + x]) }
                    }
                    row[tx] = best
                }
            }
        }
    }

    /// Fills a gridWidth x gridHeight array row by row, rows split between threads.
    private static func perTargetRow<T>(gridWidth: Int, gridHeight: Int, initial: T,
                                        _ fill: (Int, UnsafeMutablePointer<T>) -> Void) -> [T] {
        var out = [T](repeating: initial, count: gridWidth * gridHeight)
        out.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            Parallel.forEach(gridHeight, threads: Parallel.cores) { ty in fill(ty, base + ty * gridWidth) }
        }
        return out
    }
}
