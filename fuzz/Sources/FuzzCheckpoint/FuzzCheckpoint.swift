import Foundation
import FuzzSupport
import SegModels

/// Every input is read as a PyTorch checkpoint (zip or legacy container, the restricted unpickler,
/// storages and views) and, where it reads, converted: identified, checked against its architecture
/// and built. Refusals are fine; a trap, a hang or a leak is not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = try? CheckpointConverter.modelFile(FuzzFile.write(data, size), CheckpointOptions())
    return 0
}

@_cdecl("FuzzCheckpoint_main")
public func fuzzCheckpointMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(fuzzCheckpoint)
}
