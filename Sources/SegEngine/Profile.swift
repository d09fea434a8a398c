import Foundation

/// Where a forward pass spends its time, by kernel kind, for `segview bench --profile`. Off unless
/// enabled: kernels then pay one branch. Kernels call `measure` only from the thread that runs the
/// network (never inside a parallel loop), so the tallies need no lock.
public enum Profile {
    nonisolated(unsafe) public static var enabled = false
    /// Tally convolutions by kind and shape (channels, input size, stride, dilation), not kind alone.
    nonisolated(unsafe) public static var byShape = false
    nonisolated(unsafe) public private(set) static var entries: [String: (calls: Int, seconds: Double, flop: Double)] = [:]

    public static func reset() { entries = [:] }

    @inline(__always)
    static func measure<T>(_ kind: @autoclosure () -> String, shape: @autoclosure () -> String = "",
                           flop: @autoclosure () -> Double = 0, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let detail = byShape ? shape() : ""
        let key = detail.isEmpty ? kind() : "\(kind()) \(detail)"
        let old = entries[key] ?? (0, 0, 0)
        entries[key] = (old.calls + 1, old.seconds + seconds, old.flop + flop())
        return result
    }
}
