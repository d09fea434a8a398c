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
        abstract: "Time the viewer's frames: a full frame build and a cursor move, in CPU time and terminal bytes.")

    @Option(help: "Input size as HxW (a synthetic picture and a synthetic 11-class result).")
    var size = "1080x1920"

    @Option(help: "Terminal size as COLSxROWS.")
    var cells = "120x40"

    @Option(help: "Colours: 24bit or 256.")
    var colors = "24bit"

    @Option(help: "Timed repetitions.")
    var runs = 10

    func run() throws {
        let sides = size.lowercased().split(separator: "x").compactMap { Int($0) }
        let terminalSize = cells.lowercased().split(separator: "x").compactMap { Int($0) }
        guard sides.count == 2, terminalSize.count == 2, let mode = ColorMode(rawValue: colors) else {
            throw ValidationError("--size HxW, --cells COLSxROWS, --colors 24bit|256")
        }
        let (height, width) = (sides[0], sides[1]), (cols, rows) = (terminalSize[0], terminalSize[1])
        let picture = benchImage(height: height, width: width)
        // Eleven classes in vertical bands with a diagonal boundary, as a stand-in for a prediction.
        let classes = 11
        var scores = [Float](repeating: 0, count: classes * width * height)
        for y in 0..<height { for x in 0..<width { scores[((x + y / 3) * classes / (width + height / 3)) * width * height + y * width + x] = 4 } }
        let result = SegmentationResult(prediction: Prediction(scores: Tensor(channels: classes, height: height, width: width, values: scores)),
                                        milliseconds: 0)
        let colorsRGB = Palette.pascalVOC(count: classes).colors.map(RGB.init)
        var scene = Scene(image: picture, imageName: "synthetic.png", classNames: (0..<classes).map { "class \($0)" },
                          classColors: colorsRGB, modelTitle: "synthetic")
        scene.result = result
        let palette = TerminalPalette(mode: mode, classColors: colorsRGB)
        var state = ViewState()
        state.cursorX = width / 2
        state.cursorY = height / 2

        var fullFrame: [Double] = [], cursorMove: [Double] = []
        for _ in 0..<runs {
            var clock = Stopwatch()
            _ = Renderer().render(scene, state, rows: rows, cols: cols, palette: palette)
            fullFrame.append(clock.lap())
        }
        let renderer = Renderer()
        var previous = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
        var changed: [Int] = []
        for step in 0..<runs {
            state.cursorX += step % 2 == 0 ? 8 : -8
            var clock = Stopwatch()
            let grid = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
            cursorMove.append(clock.lap())
            changed.append(zip(grid.cells, previous.cells).filter { $0 != $1 }.count)
            previous = grid
        }

        // Terminal bytes: draw a full frame, then one cursor move, into a file through ncurses.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("segview-frame-\(getpid()).out").path
        defer { unlink(path) }
        let term = mode == .truecolor ? "xterm-256color" : "xterm-256color"
        let terminal = try Terminal(recordingTo: path, term: term, rows: rows, cols: cols, mode: mode)
        state.cursorX = width / 2
        terminal.draw(renderer.render(scene, state, rows: rows, cols: cols, palette: palette))
        let fullBytes = fileSize(path)
        state.cursorX += 8
        var clock = Stopwatch()
        terminal.draw(renderer.render(scene, state, rows: rows, cols: cols, palette: palette))
        let moveDraw = clock.lap()
        terminal.close()
        let moveBytes = fileSize(path) - fullBytes

        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("viewer frames: \(width)x\(height) input, \(cols)x\(rows) cells, \(mode.label), median of \(runs)")
        print(String(format: "full frame build: %.2f ms; terminal output %d bytes", median(fullFrame), fullBytes))
        print(String(format: "cursor move: build %.3f ms + draw %.3f ms, %d cells changed, %d bytes",
                     median(cursorMove), moveDraw, changed.sorted()[changed.count / 2], moveBytes))
    }

    private func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
