/// A float32 feature map of one image, laid out CHW (channel planes, rows, columns), batch size 1.
///
/// CHW keeps each channel a contiguous plane, so a convolution is one matrix product
/// `weights[Cout, Cin*k*k] x columns[Cin*k*k, H*W]` writing straight into the output planes,
/// and a 1x1 convolution needs no copy of its input at all. The storage comes from its context's
/// buffer pool and goes back there when the tensor is released; operations run in their input's
/// context and make their outputs there.
public final class Tensor: @unchecked Sendable {
    public let context: EngineContext
    public let channels: Int
    public let height: Int
    public let width: Int
    public let data: UnsafeMutablePointer<Float>

    public var count: Int { channels * height * width }
    public var plane: Int { height * width }
    public var shape: [Int] { [channels, height, width] }

    /// Uninitialised storage: every kernel writes all of its output.
    public init(channels: Int, height: Int, width: Int, in context: EngineContext) {
        precondition(channels > 0 && height > 0 && width > 0, "empty tensor \(channels)x\(height)x\(width)")
        self.context = context
        self.channels = channels
        self.height = height
        self.width = width
        data = context.pool.take(channels * height * width, tensor: true)
    }

    public convenience init(channels: Int, height: Int, width: Int, repeating value: Float, in context: EngineContext) {
        self.init(channels: channels, height: height, width: width, in: context)
        data.update(repeating: value, count: count)
    }

    public convenience init(channels: Int, height: Int, width: Int, values: [Float], in context: EngineContext) {
        precondition(values.count == channels * height * width, "\(values.count) values for \(channels)x\(height)x\(width)")
        self.init(channels: channels, height: height, width: width, in: context)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { context.pool.recycle(data, count: count, tensor: true) }

    public subscript(c: Int, y: Int, x: Int) -> Float {
        get { data[(c * height + y) * width + x] }
        set { data[(c * height + y) * width + x] = newValue }
    }

    /// Pointer to the first value of channel `c`.
    @inline(__always) public func planePointer(_ c: Int) -> UnsafeMutablePointer<Float> { data + c * plane }

    /// The same values in another context (a pass there reads them without touching this one's pool).
    public func copy(to other: EngineContext) -> Tensor {
        let copy = Tensor(channels: channels, height: height, width: width, in: other)
        copy.data.update(from: data, count: count)
        return copy
    }

    /// Whether every value is a number (no NaN, no infinity).
    public var isFinite: Bool { UnsafeBufferPointer(start: data, count: count).allSatisfy(\.isFinite) }

    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
}
