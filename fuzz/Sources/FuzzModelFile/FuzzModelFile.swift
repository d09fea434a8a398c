import Foundation
import FuzzSupport
import SegEngine
import SegModels

/// Every input is loaded as a model file (header, metadata and the architecture it names) and, if
/// it loads, run on a tiny picture at every stride it offers: a model that loads must run (a
/// missing downsample, an ASPP rate of 1e9 or 2^63-1 passed the loader and trapped or hung here).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = FuzzFile.write(data, size)
    guard let model = try? ModelLoader.load(path: path) else { return 0 }
    let picture = Tensor(channels: 3, height: 19, width: 23, repeating: 0.5, in: EngineContext(threads: 1))
    for stride in model.outputStrides { _ = model.predict(picture, outputStride: stride) }
    return 0
}

@_cdecl("FuzzModelFile_main")
public func fuzzModelFileMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(fuzzModelFile)
}
