import Foundation
import FuzzSupport
import SegImage

/// Every input goes through our PNG reader in both modes; errors are fine, crashes and leaks are not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = FuzzFile.write(data, size)
    _ = try? PNG.read(path, maxPixels: 1 << 22)
    _ = try? PNG.readLabels(path, maxPixels: 1 << 22)
    return 0
}

@_cdecl("FuzzPNG_main")
public func fuzzPNGMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(fuzzPNG)
}
