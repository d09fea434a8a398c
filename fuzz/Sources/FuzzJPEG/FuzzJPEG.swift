import Foundation
import FuzzSupport
import SegImage

/// Every input goes through format detection and our JPEG reader (EXIF orientation included).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = FuzzFile.write(data, size)
    _ = try? ImageFile.format(of: path)
    _ = try? JPEG.read(path, maxPixels: 1 << 22)
    return 0
}

@_cdecl("FuzzJPEG_main")
public func fuzzJPEGMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(fuzzJPEG)
}
