import Dispatch
import Foundation
import SegEngine
import SegModels

/// Milliseconds between laps.
struct Stopwatch {
    private var last = DispatchTime.now().uptimeNanoseconds

    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) / 1e6
    }
}

/// "weights W MB, activation peak P MB (tensors T MB)": a network's weights and the buffer pool's
/// high-water marks since its last `resetPeak()`, everything and the tensors alone.
func weightsAndActivationPeak(_ network: SegmentationModel, _ pool: BufferPool) -> String {
    String(format: "weights %.1f MB, activation peak %.1f MB (tensors %.1f MB)", Double(network.parameterCount * 4) / 1e6,
           Double(pool.peakBytes) / 1e6, Double(pool.peakTensorBytes) / 1e6)
}

/// The process's peak resident set size (VmHWM: unlike getrusage's maxrss it starts afresh at exec,
/// so a parent process's size never shows up here; `resetPeakResident` starts it again).
func peakResidentBytes() -> Int { statusBytes("VmHWM:") }

/// The process's resident set size now.
func residentBytes() -> Int { statusBytes("VmRSS:") }

/// Starts the peak resident size afresh from the current size (Linux's clear_refs "5"), so a
/// peak can be taken over the forward passes alone, not over loading the model file.
func resetPeakResident() {
    guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return }
    handle.write(Data("5".utf8))
    try? handle.close()
}

private func statusBytes(_ field: String) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
          // "VmHWM:\t   1940 kB", or with 8 digits no space at all after the tab.
          let kilobytes = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
    else { return 0 }
    return kilobytes * 1024
}
