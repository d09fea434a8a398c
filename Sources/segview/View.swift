import ArgumentParser
import Foundation
import SegImage
import SegModels
import SegTUI

struct View: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open the full-screen viewer (the default command): image, class mask and border map side by side.",
        discussion: "Press ? in the viewer for the keys. Models come from --model (files or folders of .safetensors); without one, the bundled samples/models.")

    @Argument(help: "Images (PNG or JPEG) or folders of them (n/p switch between them).")
    var images: [String] = []

    @Option(name: .customLong("model"), help: "A model file or a folder of them; repeat for more (m switches, c compares).")
    var models: [String] = []

    @Option(help: "Ground truth: a label PNG (one image) or a folder with a PNG of the same name per image.")
    var labels: String?

    @Option(help: "Label value that marks unlabelled pixels.")
    var ignore = 255

    @Option(help: "Colours: auto, 24bit, 256, 16 or 8.")
    var colors = "auto"

    @Option(name: .customLong("max-size"), help: "Shrink larger images to fit this many pixels on their longest side.")
    var maxSize: Int?

    @OptionGroup var imageOptions: ImageOptions
    @OptionGroup var engine: EngineOptions

    mutating func run() throws {
        guard !images.isEmpty else {
            throw ValidationError("give one or more images, e.g. `segview samples/scene1.png` (see `segview --help`)")
        }
        images = try Self.expandFolders(images)
        guard isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1 else {
            throw ValidationError("standard \(isatty(STDOUT_FILENO) == 1 ? "input" : "output") is not a terminal: the viewer needs one.\nTo write masks to files, use `segview predict \(images[0]) --model MODEL --out MASK.png`.")
        }
        var mode: ColorMode? = nil
        if colors != "auto" {
            guard let chosen = ColorMode(rawValue: colors) else {
                throw ValidationError("--colors must be auto, 24bit, 256, 16 or 8")
            }
            mode = chosen
        }
        engine.apply()
        let loadedModels = try ModelCatalog.load(models.isEmpty ? [ModelCatalog.bundledDirectory] : models)
        let options = Viewer.Options(images: images, models: loadedModels, labels: try labelFiles(), ignoreLabel: ignore, colors: mode,
                                     maxPixels: imageOptions.maxPixels, maxSide: maxSize)
        try Viewer(options: options).run()
    }

    /// Folders replaced by their PNG and JPEG files (sorted); files kept as given.
    static func expandFolders(_ paths: [String]) throws -> [String] {
        try paths.flatMap { path -> [String] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ValidationError("\(path) does not exist")
            }
            guard isDirectory.boolValue else { return [path] }
            let names = try FileManager.default.contentsOfDirectory(atPath: path).filter(ImageFile.hasImageExtension).sorted()
            guard !names.isEmpty else { throw ValidationError("\(path) has no PNG or JPEG files") }
            return names.map { (path as NSString).appendingPathComponent($0) }
        }
    }

    /// Label map per image: a single file for a single image, or same-named PNGs in a folder.
    func labelFiles() throws -> [String: String] {
        guard let labels else { return [:] }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: labels, isDirectory: &isDirectory) else {
            throw ValidationError("--labels \(labels) does not exist")
        }
        if !isDirectory.boolValue {
            guard images.count == 1 else { throw ValidationError("--labels FILE goes with one image; give a folder for several") }
            return [images[0]: labels]
        }
        var map: [String: String] = [:]
        for image in images {
            let stem = URL(fileURLWithPath: image).deletingPathExtension().lastPathComponent
            for candidate in ["\(stem).png", "\(stem)_L.png", "\(stem)_label.png"] {
                let path = URL(fileURLWithPath: labels).appendingPathComponent(candidate).path
                if FileManager.default.fileExists(atPath: path) { map[image] = path; break }
            }
        }
        return map
    }
}

/// Finds and loads model files.
enum ModelCatalog {
    /// samples/models of the checkout the binary was built in, else of the current directory.
    static var bundledDirectory: String {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let checkout = executable.deletingLastPathComponent().appendingPathComponent("../../../samples/models").standardized
        return FileManager.default.fileExists(atPath: checkout.path) ? checkout.path : "samples/models"
    }

    /// Model files named directly, or every .safetensors in a named folder (sorted).
    static func files(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ValidationError("model \(path) does not exist")
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".safetensors") }.sorted()
                files += names.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
            } else {
                files.append(path)
            }
        }
        guard !files.isEmpty else { throw ValidationError("no .safetensors model files in \(paths.joined(separator: ", "))") }
        return files
    }

    static func load(_ paths: [String]) throws -> [(name: String, model: SegmentationModel)] {
        try files(paths).map { file in (URL(fileURLWithPath: file).lastPathComponent, try ModelLoader.load(path: file)) }
    }
}
