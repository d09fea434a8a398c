import Foundation
import FuzzSupport
import SegModels

/// Every input is loaded as a model file: header, metadata and the architecture it names.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = FuzzFile.write(data, size)
    _ = try? ModelLoader.load(path: path)
    return 0
}

@_cdecl("FuzzModelFile_main")
public func fuzzModelFileMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(fuzzModelFile)
}
