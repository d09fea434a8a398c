import FileShim
import Foundation

/// Output files are written next to their destination under a temporary name, then renamed:
/// readers never see half a file and a failed write leaves nothing behind.
public enum SafeFile {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let path: String
        public let reason: String
        public var description: String { "\(oneLine(path)): \(reason)" }
    }

    /// Refuses an existing destination unless `overwrite`, and anything but a regular file (or a
    /// symlink, which is replaced, not followed) even then: `--out /dev/null --force` must not
    /// replace a device node. `produce` writes to the descriptor of the temporary file, which is
    /// created under an unpredictable name with O_EXCL (a planted file or symlink there cannot be
    /// reused) and never opened again by name.
    public static func write(to path: String, overwrite: Bool, _ produce: (Int32) throws -> Void) throws {
        try check(path, overwrite: overwrite)
        try replace(path, produce, overwrite: overwrite)
    }

    /// What `write` refuses before it starts: an existing destination without `overwrite`, one that
    /// is not a regular file or a symlink, a folder that is missing or takes no new files. A set of
    /// outputs checked first is not left half-written by the refusal of its last file.
    public static func check(_ path: String, overwrite: Bool) throws {
        var status = stat()
        if lstat(path, &status) == 0 {
            guard overwrite else { throw Error(path: path, reason: "already exists") }
            let kind = status.st_mode & S_IFMT
            guard kind == S_IFREG || kind == S_IFLNK else {
                let reason = "is not a regular file (a folder, device or FIFO); segview replaces only regular files"
                throw Error(path: path, reason: reason)
            }
        }
        let folder = self.folder(of: path)
        try checkFolder(folder, of: path)
        guard access(folder, W_OK | X_OK) == 0 else {
            throw Error(path: path, reason: "cannot create a file in \(folder): \(String(cString: strerror(errno)))")
        }
    }

    /// The folder `path` names a file in, as written: "." for a bare name, "/" at the root.
    /// (corelibs Foundation's `deletingLastPathComponent` traps on a one-character path.)
    public static func folder(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    private static func checkFolder(_ folder: String, of path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else {
            throw Error(path: path, reason: "its folder \(folder) does not exist")
        }
        guard isFolder.boolValue else { throw Error(path: path, reason: "\(folder) is not a folder") }
    }

    private static func replace(_ path: String, _ produce: (Int32) throws -> Void, overwrite: Bool) throws {
        let url = URL(fileURLWithPath: path)
        var template = Array(url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).XXXXXX.partial").path.utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { seg_temporary_create($0.baseAddress!, 8) }
        guard descriptor >= 0 else {
            let failure = errno
            let folder = self.folder(of: path)
            try checkFolder(folder, of: path)  // it may have gone since the check
            throw Error(path: path, reason: "cannot create a file in \(folder): \(String(cString: strerror(failure)))")
        }
        let temporary = String(cString: template)
        defer {
            close(descriptor)
            seg_temporary_end()
        }
        // The temporary file is 0600; outputs get the permissions any new file would.
        let mask = umask(0o022)
        umask(mask)
        fchmod(descriptor, 0o666 & ~mask)
        do {
            try produce(descriptor)
            guard fsync(descriptor) == 0 else {
                throw Error(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            // The name must still be the file written: one swapped for another file or a symlink
            // meanwhile would otherwise be linked into place.
            var written = stat(), named = stat()
            guard fstat(descriptor, &written) == 0, lstat(temporary, &named) == 0, written.st_dev == named.st_dev,
                  written.st_ino == named.st_ino else {
                throw Error(path: path, reason: "its temporary file \(temporary) was replaced while being written")
            }
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
        try write(to: path, overwrite: overwrite) { descriptor in
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
        }
    }
}
