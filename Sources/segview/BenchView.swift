import ArgumentParser
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline
import SegTUI

struct BenchView: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-view",
        abstract: "Time the viewer's frames: a full frame build and a cursor move, in CPU time and terminal bytes.",
        discussion: "Each input goes the viewer's way: brought to the working resolution once when loaded (timed "
            + "apart), then drawn from there with a synthetic 11-class result. Several --size values run in one "
            + "process, so their frame times compare.")

    @Option(parsing: .upToNextOption, help: "Input sizes as HxW (synthetic pictures).")
    var size = [SizeArgument(1080, 1920)]

    @Option(help: ArgumentHelp("A picture (PNG or JPEG) to draw instead of the synthetic ones (then --size "
                               + "is not used).", valueName: "file"))
    var image: String?

    @Option(help: "Terminal size as COLSxROWS.")
    var cells = SizeArgument(120, 40)

    @Option(help: "Colours: 24bit, 256, 16 or 8.")
    var colors = ColorOption.truecolor

    @Option(help: ArgumentHelp("Working resolution: auto, native or a short side in pixels.",
                               valueName: "auto|native|N"))
    var scale: WorkingScale = .auto

    @Option(name: .customLong("resize-size"),
            help: "The model's resize_size that auto shrinks to (the bundled models': 360).")
    var resizeSize = 360

    @Option(help: "Timed repetitions.")
    var runs = 10

    @Option(help: "Draw the panes as pixels with this protocol (kitty, sixel, iterm) or as half blocks (none).")
    var graphics = GraphicsMode.none

    @Option(name: .customLong("cell-pixels"), help: "A cell's size in pixels as WxH, for --graphics.")
    var cellPixels = SizeArgument(10, 20)

    func validate() throws {
        let checks: [(Bool, String)] = [
            (size.allSatisfy { $0.within(8...30000) }, "--size takes HxW with sides of 8 to 30000"),
            (cells.within(1...2000), "--cells takes COLSxROWS with sides of 1 to 2000"),
            (colors != .auto, "--colors must be 24bit, 256, 16 or 8 (a benchmark has no terminal to ask)"),
            (runs >= 1, "--runs must be at least 1"),
            (resizeSize >= 8, "--resize-size must be at least 8"),
            (cellPixels.within(1...512), "--cell-pixels takes WxH with sides of 1 to 512"),
            (graphics != .auto, "--graphics must be kitty, sixel, iterm or none (a benchmark has no terminal to ask)"),
        ]
        if let failed = checks.first(where: { !$0.0 }) { throw ValidationError(failed.1) }
    }

    func run() throws {
        let mode = colors.mode!
        let (cols, rows) = (cells.first, cells.second)
        var frames: [(size: String, milliseconds: Double)] = []
        let pictures = try image.map { [try ImageFile.read($0)] }
            ?? size.map { benchImage(height: $0.first, width: $0.second) }
        for picture in pictures {
            let (height, width) = (picture.height, picture.width)
            var clock = Stopwatch()
            let working = scale.workingSize(width: width, height: height, resizeSize: resizeSize)
            let display = DisplayPicture.make(picture, size: DisplayPicture.size(source: (width, height),
                                                                                  workingSizes: [working]))
            let load = clock.lap()
            let scene = Self.scene(display, sourceSize: "\(width)x\(height)")
            let palette = TerminalPalette(mode: mode, classColors: scene.classColors)
            var state = ViewState()
            state.cursorX = display.width / 2
            state.cursorY = display.height / 2

            let support = GraphicsProtocol(rawValue: graphics.rawValue).map {
                GraphicsSupport(graphicsProtocol: $0, cellWidth: cellPixels.first, cellHeight: cellPixels.second)
            } ?? .halfBlocks
            var fullFrame: [Double] = [], cursorMove: [Double] = []
            for _ in 0..<runs {
                clock = Stopwatch()
                let renderer = Renderer()
                renderer.graphics = support
                _ = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
                _ = GraphicsEncoder.encode(renderer.placements, with: support.graphicsProtocol, threads: Parallel.cores)
                fullFrame.append(clock.lap())
            }
            let renderer = Renderer()
            renderer.graphics = support
            var previous = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
            var changed: [Int] = []
            for step in 0..<runs {
                state.cursorX += step % 2 == 0 ? 8 : -8
                clock = Stopwatch()
                let grid = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
                cursorMove.append(clock.lap())
                changed.append(zip(grid.cells, previous.cells).filter { $0 != $1 }.count)
                previous = grid
            }

            // Terminal bytes: draw a full frame, then `runs` cursor moves, into a file through ncurses.
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("segview-frame-\(getpid()).out").path
            defer { unlink(path) }
            let terminal = try Terminal(recordingTo: path, term: "xterm-256color", rows: rows, cols: cols, mode: mode)
            terminal.graphics = support.graphicsProtocol
            state.cursorX = display.width / 2
            terminal.draw(renderer.render(scene, state, rows: rows, cols: cols, palette: palette),
                          images: renderer.placements)
            let fullBytes = fileSize(path)
            var moveDraws: [Double] = [], moveBytes: [Int] = []
            for step in 0..<runs {
                state.cursorX += step % 2 == 0 ? 8 : -8
                let grid = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
                let before = fileSize(path)
                clock = Stopwatch()
                terminal.draw(grid, images: renderer.placements)
                moveDraws.append(clock.lap())
                moveBytes.append(fileSize(path) - before)
            }
            terminal.close()

            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            print("viewer frames: \(width)x\(height) input drawn from \(display.width)x\(display.height) "
                  + "(scale \(scale)), \(cols)x\(rows) cells, \(mode.label), "
                  + (support.graphicsProtocol.map {
                      "\($0.rawValue) pixels (\(cellPixels.first)x\(cellPixels.second) cells), "
                  } ?? "") + "median of \(runs)")
            print(String(format: "load: to the working resolution %.2f ms (once per image)", load))
            print(String(format: "full frame build: %.2f ms; terminal output %d bytes", median(fullFrame), fullBytes))
            print(String(format: "cursor move: build %.3f ms + draw %.3f ms, %d cells changed, %d bytes (at most %d)",
                         median(cursorMove), median(moveDraws), changed.sorted()[changed.count / 2],
                         moveBytes.sorted()[moveBytes.count / 2], moveBytes.max() ?? 0))
            frames.append(("\(height)x\(width)", median(fullFrame)))
        }
        if frames.count > 1, let first = frames.first {
            for frame in frames.dropFirst() {
                let ratio = frame.milliseconds / first.milliseconds
                print(String(format: "full frame %@ / %@: %.2fx", frame.size, first.size, ratio))
            }
        }
    }

    /// Eleven classes in vertical bands with a diagonal boundary, as a stand-in for a prediction.
    private static func scene(_ picture: RGBImage, sourceSize: String) -> Scene {
        let (width, height, classes) = (picture.width, picture.height, 11)
        var scores = [Float](repeating: 0, count: classes * width * height)
        for y in 0..<height {
            for x in 0..<width {
                let band = (x + y / 3) * classes / (width + height / 3)
                scores[band * width * height + y * width + x] = 4
            }
        }
        let prediction = Prediction(scores: Tensor(channels: classes, height: height, width: width, values: scores,
                                                   in: EngineContext(threads: 1)))
        let colors = ClassPreset.vocColors(count: classes).map(RGB.init)
        var scene = Scene(image: picture, imageName: "synthetic.png", classNames: (0..<classes).map { "class \($0)" },
                          classColors: colors, modelTitle: "synthetic")
        scene.result = SegmentationResult(prediction: prediction, milliseconds: 0)
        scene.sourceSize = sourceSize
        return scene
    }

    private func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
