import Foundation

/// Output files are written next to their destination under a temporary name, then renamed:
/// readers never see half a file and a failed write leaves nothing behind.
public enum SafeFile {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Refuses an existing destination unless `overwrite`; `produce` writes the temporary path.
    public static func write(to path: String, overwrite: Bool, _ produce: (String) throws -> Void) throws {
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw Error(path: path, reason: "already exists (use --force to overwrite)")
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).partial").path
        do {
            try produce(temporary)
            guard rename(temporary, path) == 0 else {
                throw Error(path: path, reason: String(cString: strerror(errno)))
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    public static func write(_ data: Data, to path: String, overwrite: Bool) throws {
        try write(to: path, overwrite: overwrite) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
                throw Error(path: path, reason: "cannot create file: \(String(cString: strerror(errno)))")
            }
            do {
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
                defer { try? handle.close() }
                try handle.write(contentsOf: data)
                try handle.synchronize()
            } catch {
                throw Error(path: path, reason: "write failed: \(error.localizedDescription)")
            }
        }
    }
}
