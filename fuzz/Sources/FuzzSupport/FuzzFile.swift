import Foundation

/// Our readers take paths (libpng and libjpeg read FILE*s), so each input is written to one
/// per-process file in memory-backed /dev/shm (or the temporary directory) and read back.
public enum FuzzFile {
    static let path: String = {
        let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return "\(folder)/segview-fuzz-\(getpid())"
    }()

    public static func write(_ data: UnsafePointer<UInt8>, _ size: Int) -> String {
        let file = fopen(path, "wb")!
        fwrite(data, 1, size, file)
        fclose(file)
        return path
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// SwiftPM links an executable target's entry point as `<Target>_main`; each fuzz target defines
/// that symbol and hands over to libFuzzer's driver with its test function.
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32 {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv, test)
}
