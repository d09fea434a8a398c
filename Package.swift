// swift-tools-version:6.0
import PackageDescription

// Layers, from the bottom up:
//   SegEngine  tensors, kernels and threading (knows nothing of models, images or terminals)
//   SegImage    PNG and JPEG codecs, pure image types, normalisation, palettes, metrics (no Swift target)
//   TorchCheckpoint  PyTorch checkpoints (zip and legacy) read without running them (no Swift target)
//   SegModels   model files (.safetensors, or checkpoints converted), layers with weights, backbones, one file per
//               architecture
//   SegPipeline file to result: decoding, working resolution, forward pass, outputs, image/label pairing
//   SegTUI      the ncurses viewer: a pure renderer (state -> cell grid) and a thin terminal layer
//   segview     the command line: parse, call the pipeline, print
let package = Package(
    name: "segview",
    products: [
        .executable(name: "segview", targets: ["segview"]),
        // For the fuzz targets in fuzz/ (a separate package, built with -sanitize=fuzzer).
        .library(name: "SegviewCore", targets: ["SegEngine", "SegImage", "TorchCheckpoint", "SegModels", "SegPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CLibPNG", path: "Sources/CLibPNG", pkgConfig: "libpng16",
            providers: [.apt(["libpng-dev"])]),
        // libpng reports errors with longjmp, which Swift cannot survive: the setjmp lives here, in C.
        .target(name: "PNGShim", dependencies: ["CLibPNG"], path: "Sources/PNGShim"),
        .systemLibrary(
            name: "CLibJPEG", path: "Sources/CLibJPEG", pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg-dev"])]),
        // Owns libjpeg's setjmp/longjmp error handling, like PNGShim for libpng.
        .target(name: "JPEGShim", dependencies: ["CLibJPEG"], path: "Sources/JPEGShim"),
        // Chooses OpenBLAS's kernel by instruction set where its CPU table is older than the CPU.
        .target(name: "BLASShim", dependencies: ["COpenBLAS"], path: "Sources/BLASShim"),
        // The engine's own AVX-512 matrix product with fused epilogues (OpenBLAS where it cannot run).
        .target(name: "GEMMKernel", path: "Sources/GEMMKernel"),
        // Loops that want the CPU's widest vectors (Winograd's transforms, depthwise convolutions):
        // plain C that the compiler vectorises once per instruction set (Swift code is built for
        // baseline x86-64, so SSE).
        .target(name: "VectorKernels", path: "Sources/VectorKernels"),
        .target(name: "SegEngine", dependencies: ["COpenBLAS", "BLASShim", "GEMMKernel", "VectorKernels"]),
        // Removes a half-written temporary file when a signal ends the process (async-signal-safe C).
        .target(name: "FileShim", path: "Sources/FileShim"),
        .target(name: "SegImage", dependencies: ["PNGShim", "JPEGShim", "FileShim"]),
        // A restricted unpickler and zip reader: nothing in a checkpoint is ever executed.
        .target(name: "TorchCheckpoint"),
        .target(name: "SegModels", dependencies: ["SegEngine", "TorchCheckpoint"]),
        .target(name: "SegPipeline", dependencies: ["SegEngine", "SegImage", "SegModels"]),
        .systemLibrary(
            name: "CNcursesW", path: "Sources/CNcursesW", pkgConfig: "ncursesw",
            providers: [.apt(["libncurses-dev"])]),
        .target(name: "TermShim", dependencies: ["CNcursesW"], path: "Sources/TermShim"),
        // Knows models only through SegModels' SegmentationModel interface.
        .target(name: "SegTUI", dependencies: ["SegEngine", "SegImage", "SegModels", "SegPipeline", "TermShim"]),
        .executableTarget(
            name: "segview",
            dependencies: [
                "SegEngine", "SegImage", "SegModels", "SegPipeline", "SegTUI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "SegEngineTests", dependencies: ["SegEngine"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "SegTUITests", dependencies: ["SegTUI", "SegPipeline", "SegImage", "SegModels", "SegEngine"]),
        .testTarget(name: "SegPipelineTests", dependencies: ["SegPipeline", "SegImage", "SegModels", "SegEngine"]),
        .testTarget(name: "SegImageTests", dependencies: ["SegImage"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TorchCheckpointTests", dependencies: ["TorchCheckpoint"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "SegModelsTests", dependencies: ["SegModels", "SegPipeline", "SegEngine", "SegImage", "TorchCheckpoint"],
            resources: [.copy("Fixtures")]),
        // Runs the built `segview` binary end to end (the dependency makes `swift test` build it).
        .testTarget(name: "SegviewTests", dependencies: ["segview", "SegEngine", "SegImage", "SegModels", "SegPipeline", "SegTUI"]),
    ],
    swiftLanguageModes: [.v5]
)
