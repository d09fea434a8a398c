import Foundation
import SegImage

/// Which files are images and which label file goes with each: one rule for the viewer,
/// `predict` and `eval`. Images are PNG or JPEG (by extension when listing a folder; the content
/// decides how each is read); the label of `NAME.jpg` is `NAME.png`, `NAME_L.png` or
/// `NAME_label.png` in the labels folder, first found first.
public enum Dataset {
    /// The label file names tried for an image stem, in order.
    public static func labelNames(forStem stem: String) -> [String] {
        ["\(stem).png", "\(stem)_L.png", "\(stem)_label.png"]
    }

    /// The rule above, as messages say it.
    public static let labelNameRule = "NAME.png, NAME_L.png or NAME_label.png"

    /// Whether `path` is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Whether `path` is a regular file or a link to one. What a folder holds is read only if it
    /// is: a FIFO would wait for a writer, a device never end, a folder named `x.png` is no image.
    public static func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG
    }

    /// Why `path`, which FileManager says does not exist, cannot be opened: absent, or a symbolic
    /// link that leads nowhere (to a missing file, or round a loop).
    public static func absence(_ path: String) -> String {
        var status = stat()
        guard lstat(path, &status) == 0 else { return "does not exist" }
        guard stat(path, &status) != 0 else { return "cannot be read" }
        return errno == ENOENT ? "is a symbolic link to a file that does not exist"
            : "is a symbolic link that cannot be followed: \(String(cString: strerror(errno)))"
    }

    /// The images of a folder (regular files with an image extension), sorted by name, as paths inside it.
    public static func images(inFolder folder: String) throws -> [String] {
        let images = try files(inFolder: folder, named: ImageFile.hasImageExtension)
        guard !images.isEmpty else { throw ImageError(path: folder, reason: "has no PNG or JPEG files") }
        return images
    }

    /// The regular files of a folder whose names pass `include`, sorted by name, as paths inside it.
    /// A name that is not UTF-8 is kept, with U+FFFD in place of its bytes: opening it then says
    /// why it cannot be opened, where a listing that left it out skipped the file unseen.
    public static func files(inFolder folder: String, named include: (String) -> Bool) throws -> [String] {
        guard let directory = opendir(folder) else {
            throw ImageError(path: folder, reason: "cannot list: \(String(cString: strerror(errno)))")
        }
        defer { closedir(directory) }
        var files: [String] = []
        while let entry = readdir(directory) {
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            let name = String(decoding: bytes, as: UTF8.self)
            guard include(name) else { continue }
            // The file's own bytes are asked about: the repaired name names no file.
            var status = stat()
            let path = Array(folder.utf8) + [UInt8(ascii: "/")] + bytes + [0]
            let isRegular = path.withUnsafeBufferPointer { path in
                path.withMemoryRebound(to: CChar.self) { stat($0.baseAddress!, &status) == 0 }
            } && status.st_mode & S_IFMT == S_IFREG
            if isRegular { files.append((folder as NSString).appendingPathComponent(name)) }
        }
        return files.sorted()
    }

    /// Files kept as given, folders replaced by their images.
    public static func images(_ paths: [String]) throws -> [String] {
        try paths.flatMap { path -> [String] in
            if isDirectory(path) { return try images(inFolder: path) }
            guard FileManager.default.fileExists(atPath: path) || path == "-" else {
                throw ImageError(path: path, reason: absence(path))
            }
            return [path]
        }
    }

    /// The label file of `image` in the folder `labels`, or nil. An image whose name was not UTF-8
    /// (so it cannot be found under the name listed) keeps the first name tried, so that reading
    /// the image fails and says why, instead of the image being left out as unlabelled.
    public static func label(for image: String, inFolder labels: String) -> String? {
        let stem = ((image as NSString).lastPathComponent as NSString).deletingPathExtension
        let candidates = labelNames(forStem: stem).map { (labels as NSString).appendingPathComponent($0) }
        return candidates.first { isRegularFile($0) && $0 != image }
            ?? (ImageFile.isUnopenableName(image) ? candidates[0] : nil)
    }

    /// Label files for `images` from `labels`: a folder (each image's label by the rule above;
    /// images without one are left out) or one label file for a single image.
    public static func labels(for images: [String], from labels: String) throws -> [String: String] {
        if isDirectory(labels) {
            let pairs = images.compactMap { image in label(for: image, inFolder: labels).map { (image, $0) } }
            return Dictionary(pairs, uniquingKeysWith: { first, _ in first })
        }
        guard FileManager.default.fileExists(atPath: labels) else {
            throw ImageError(path: labels, reason: "does not exist")
        }
        guard images.count == 1 else {
            throw ImageError(path: labels, reason: "a label file goes with one image; give a folder for several")
        }
        return [images[0]: labels]
    }
}
