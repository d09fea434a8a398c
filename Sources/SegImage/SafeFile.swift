import FileShim
import Foundation

/// Output files are written next to their destination under a temporary name, then renamed:
/// readers never see half a file and a failed write leaves nothing behind.
public enum SafeFile {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Refuses an existing destination unless `overwrite`, and anything but a regular file (or a
    /// symlink, which is replaced, not followed) even then: `--out /dev/null --force` must not
    /// replace a device node. `produce` writes the temporary path, which is created empty first
    /// under an unpredictable name with O_EXCL (a planted file or symlink there cannot be reused).
    public static func write(to path: String, overwrite: Bool, _ produce: (String) throws -> Void) throws {
        var status = stat()
        if lstat(path, &status) == 0 {
            guard !overwrite else {
                let kind = status.st_mode & S_IFMT
                guard kind == S_IFREG || kind == S_IFLNK else {
                    let reason = "is not a regular file (a folder, device or FIFO); segview replaces only regular files"
                    throw Error(path: path, reason: reason)
                }
                return try replace(path, produce, overwrite: true)
            }
            throw Error(path: path, reason: "already exists")
        }
        try replace(path, produce, overwrite: overwrite)
    }

    private static func replace(_ path: String, _ produce: (String) throws -> Void, overwrite: Bool) throws {
        let url = URL(fileURLWithPath: path)
        var template = Array(url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).XXXXXX.partial").path.utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, 8) }
        guard descriptor >= 0 else {
            throw Error(path: path, reason: "cannot create a file beside it: \(String(cString: strerror(errno)))")
        }
        let temporary = String(cString: template)
        seg_temporary_begin(temporary)
        defer { seg_temporary_end() }
        // mkstemps makes the file 0600; outputs get the permissions any new file would.
        let mask = umask(0o022)
        umask(mask)
        fchmod(descriptor, 0o666 & ~mask)
        close(descriptor)
        do {
            try produce(temporary)
            // Without `overwrite`, link() refuses an existing destination atomically, so a file that
            // appeared since the check above is not replaced either.
            // Filesystems without hard links (FAT, some network mounts) fall back to the checked rename.
            let linked = overwrite ? false : link(temporary, path) == 0
            let noLinks = !overwrite && !linked && (errno == EPERM || errno == EOPNOTSUPP)
            guard linked || ((overwrite || noLinks) && rename(temporary, path) == 0) else {
                let reason = errno == EEXIST ? "already exists" : String(cString: strerror(errno))
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
            let descriptor = open(temporary, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw Error(path: path, reason: "cannot open for writing: \(String(cString: strerror(errno)))")
            }
            defer { close(descriptor) }
            var written = 0
            try data.withUnsafeBytes { bytes in
                while written < bytes.count {
                    let count = Foundation.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else {
                        throw Error(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
                    }
                    written += count
                }
            }
            guard fsync(descriptor) == 0 else {
                throw Error(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
        }
    }
}
