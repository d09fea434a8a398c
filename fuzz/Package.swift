// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the parsers that read untrusted files: PNG and JPEG as our shims wrap
// libpng and libjpeg, model files (safetensors header, metadata, architecture building) and PyTorch
// checkpoints (zip and legacy containers, the unpickler, conversion).
// Built and run by fuzz/run.sh with -sanitize=fuzzer,address; not part of the main build.
let package = Package(
    name: "segview-fuzz",
    dependencies: [.package(name: "segview", path: "..")],
    targets: [.target(name: "FuzzSupport", path: "Sources/FuzzSupport")]
        + ["FuzzPNG", "FuzzJPEG", "FuzzModelFile", "FuzzCheckpoint"].map { name in
            .executableTarget(name: name,
                              dependencies: ["FuzzSupport", .product(name: "SegviewCore", package: "segview")],
                              path: "Sources/\(name)")
        },
    swiftLanguageModes: [.v5]
)
