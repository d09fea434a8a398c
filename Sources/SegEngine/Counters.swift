/// Work counted by the kernels, for `segview bench`: multiply-adds of convolutions, as
/// 2 x MACs ("FLOP"), over the full kernel window and over the taps that read inside the input.
public enum Counters {
    nonisolated(unsafe) public private(set) static var flop: Double = 0
    nonisolated(unsafe) public private(set) static var flopInBounds: Double = 0

    public static func reset() {
        flop = 0
        flopInBounds = 0
    }

    /// Called once per convolution from the thread that launched it.
    @discardableResult
    static func addConvolution(outChannels: Int, inPerGroup: Int, outputPlane: Int, taps: Int, tapsInBounds: Double) -> Double {
        let perTap = 2 * Double(outChannels) * Double(inPerGroup)
        let total = perTap * Double(taps) * Double(outputPlane)
        flop += total
        flopInBounds += perTap * tapsInBounds
        return total
    }
}
