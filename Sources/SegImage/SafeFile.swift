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
            // Without `overwrite`, link() refuses an existing destination atomically, so a file that
            // appeared since the check above is not replaced either.
            // Filesystems without hard links (FAT, some network mounts) fall back to the checked rename.
            let linked = overwrite ? false : link(temporary, path) == 0
            let noLinks = !overwrite && !linked && (errno == EPERM || errno == EOPNOTSUPP)
            guard linked || ((overwrite || noLinks) && rename(temporary, path) == 0) else {
                let reason = errno == EEXIST ? "already exists (use --force to overwrite)" : String(cString: strerror(errno))
                throw Error(path: path, reason: reason)
            }
            if linked { unlink(temporary) }
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
