import Dispatch
import Foundation
import SegEngine
import SegImage
import SegModels
import SegPipeline

/// The interactive viewer: keys change the view state, models run on a background queue, and
/// the last results are cached per (image, model, output stride, working scale, test-time
/// augmentation), so flipping back is instant.
public final class Viewer {
    public struct Options {
        public var images: [String]
        public var models: [(name: String, model: SegmentationModel)]
        /// Ground-truth label map per image path.
        public var labels: [String: String]
        public var ignoreLabel: Int
        public var colors: ColorMode?
        /// Images with more pixels are refused before decoding.
        public var maxPixels: Int
        /// Keep what a truncated or corrupt JPEG decodes to.
        public var allowTruncated = false
        /// Passes estimated to need more bytes are refused (the pane says so).
        public var maxMemory = Segmenter.defaultMaxMemory
        /// Where the forward passes run (one at a time, on the inference queue).
        public var context = EngineContext()
        /// Larger images are shrunk (area average; labels nearest) to fit this many pixels on a side.
        public var maxSide: Int?
        /// The working resolution at start; `r` cycles auto, native and this.
        public var scale: WorkingScale
        /// Clicks and the wheel (which take text selection from the terminal).
        public var mouse = true
        /// Panes as real pixels: a graphics protocol, found (auto) or named, or none (half blocks).
        public var graphics = GraphicsMode.auto
        /// Test-time augmentation at start; `t` cycles none, flip and flip with scales.
        public var augmentation: TestTimeAugmentation = []
        /// What the status line says until the first key: what was left out on the way in (models
        /// that do not load), which the full screen would otherwise hide.
        public var notice: String?

        public init(images: [String], models: [(name: String, model: SegmentationModel)], labels: [String: String],
                    ignoreLabel: Int, colors: ColorMode?, maxPixels: Int = ImageFile.defaultMaxPixels,
                    maxSide: Int? = nil, scale: WorkingScale = .auto) {
            self.scale = scale
            self.maxPixels = maxPixels
            self.maxSide = maxSide
            self.images = images
            self.models = models
            self.labels = labels
            self.ignoreLabel = ignoreLabel
            self.colors = colors
        }
    }

    struct ResultKey: Hashable {
        var image: Int, model: Int, stride: Int, scale: WorkingScale, augmentation: TestTimeAugmentation
    }

    private let options: Options
    private var state = ViewState()
    private var renderer = Renderer()
    private var message: String?
    /// The current image: `image` at the resolution the panes draw from (`DisplayPicture`),
    /// `decoded` as read (the networks' input, brought to each one's working size), the size the
    /// working sizes are taken from, and the labels at the panes' size.
    private var loaded: (index: Int, image: RGBImage, decoded: RGBImage, sourceWidth: Int, sourceHeight: Int,
                         truth: [UInt8]?)?

    private let lock = NSLock()
    private var results: [ResultKey: SegmentationResult] = [:]
    private var order: [ResultKey] = []  // least recently computed first
    private var pending: Set<ResultKey> = []
    private var failures: [ResultKey: String] = [:]
    /// What happened to a result that the view should say (a pass run smaller to fit the memory limit).
    private var notes: [ResultKey: String] = [:]
    private var finished = false
    private let queue = DispatchQueue(label: "segview.inference")
    private let scores = DatasetScores()
    /// The images that have labels, by index.
    private lazy var labelled = options.images.indices.filter { options.labels[options.images[$0]] != nil }
    /// The run whose scored order the viewer last went to the top of.
    private var shownScoredOrder: DatasetScores.Run?
    /// One segmenter per model and stride, taken by every request at any scale (`at(_:)` copies
    /// share its estimates), so a working size's memory estimate is probed once per session.
    private var segmenters: [[Int]: Segmenter] = [:]
    private static let cacheLimit = 24
    private static let spinner = Array("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

    public init(options: Options) {
        self.options = options
        state.scale = options.scale
        state.augmentation = options.augmentation
        syncStride()
    }

    /// The stride `model` runs at: the pinned one where it can, else the one it was trained at,
    /// so that switching models never runs one at a stride it does poorly at without saying so.
    private func stride(for model: Int) -> Int {
        let network = options.models[model].model
        if let pinned = state.pinnedStride, network.outputStrides.contains(pinned) { return pinned }
        let trained = network.metadata.outputStride
        return network.outputStrides.contains(trained) ? trained : network.outputStrides[0]
    }

    private func syncStride() {
        guard !options.models.isEmpty else { return }
        state.outputStride = stride(for: state.modelIndex)
        state.trainedStride = currentModel.metadata.outputStride
    }

    /// What `r` cycles through.
    private var scales: [WorkingScale] {
        [.auto, .native] + ([.auto, .native].contains(options.scale) ? [] : [options.scale])
    }

    /// Runs until `q`, a signal or the end of the terminal; returns the signal's number (SIGHUP for
    /// a terminal that went away), or 0.
    public func run() throws -> Int32 {
        guard loadImage(position: 0, step: 1), let first = loaded?.image else {
            throw Terminal.Failure(description: message ?? "no readable image")
        }
        if let notice = options.notice { addMessage(notice) }
        state.cursorX = first.width / 2
        state.cursorY = first.height / 2
        let capabilities = try Terminal.capabilities()  // no queries to a terminal the viewer then refuses
        // Asked before the screen opens: the answers must not reach ncurses as keys.
        let environment = ProcessInfo.processInfo.environment
        let tmux = environment["TMUX"] != nil && options.graphics != .none ? TmuxFacts.query() : nil
        let support = GraphicsSupport.detect(options.graphics, environment: environment,
                                             pixelCell: Terminal.pixelCellSize, tmux: tmux, ask: Terminal.ask)
        if ![.auto, .none].contains(options.graphics) && support.graphicsProtocol == nil {
            let reason = environment["TMUX"] == nil && (environment["TERM"] ?? "").hasPrefix("screen")
                ? "screen passes no images on" : tmux?.passthrough == true ? "tmux passes only kitty's images on"
                : "tmux passes no images on here (set -g allow-passthrough on)"
            addMessage("--graphics \(options.graphics): \(reason); half blocks instead")
        }
        let terminal = try Terminal(capabilities, requested: options.colors, mouse: options.mouse)
        defer { terminal.close() }
        if let fallback = terminal.colorFallback { addMessage(fallback) }
        renderer.halfBlocks = terminal.halfBlocks
        renderer.graphics = support
        terminal.graphics = support.graphicsProtocol
        terminal.graphicsThroughTmux = support.throughTmux
        var tick = 0
        var needsFrame = true
        while terminal.signalReceived == 0 && !terminal.gone {
            requestResults()
            let busy = isBusy || scoreInBackground()
            if needsFrame || busy || takeFinished() {
                let (rows, cols) = terminal.size
                let palette = palette(for: state.modelIndex, mode: terminal.mode)
                let scene = makeScene(spinner: busy ? Self.spinner[tick % Self.spinner.count] : nil)
                let grid = renderer.render(scene, state, rows: rows, cols: cols, palette: palette)
                terminal.draw(grid, images: renderer.placements)
                needsFrame = false
            }
            guard let key = terminal.key(timeout: busy ? 80 : 250) else {
                tick += 1
                continue
            }
            message = nil
            needsFrame = true
            guard let loaded else { continue }
            if key == .resize && support.graphicsProtocol != nil {
                // A font size change resizes the cells in pixels too (kitty reports it as a resize).
                let cell = Terminal.pixelCellSize
                if (1...512).contains(cell.0) && (1...512).contains(cell.1) {
                    (renderer.graphics.cellWidth, renderer.graphics.cellHeight) = cell
                    renderer.graphics.cellSizeKnown = true
                }
            }
            switch KeyMap.apply(key, to: &state, keyContext(loaded.image)) {
            case .quit: return 0
            case .moveImage(let places): loadImage(position: position + places, step: places < 0 ? -1 : 1)
            case .reloadImage: loadImage(position: position, step: 1)
            case .save: save()
            case .message(let text): message = text
            case .jump(let target): jump(to: target)
            case .showImage(let index): loadImage(position: imageOrder.firstIndex(of: index) ?? index, step: 1)
            case .none: break
            }
            syncStride()
        }
        // A terminal that went away without a signal ends the viewer as a hangup would.
        return terminal.gone ? SIGHUP : terminal.signalReceived
    }

    // MARK: state

    private var palettes: [Int: TerminalPalette] = [:]

    /// Terminal colours for a model's classes, worked out once per model.
    private func palette(for model: Int, mode: ColorMode) -> TerminalPalette {
        if let known = palettes[model] { return known }
        let palette = TerminalPalette(mode: mode, classColors: options.models[model].model.metadata.classColors.map(RGB.init))
        palettes[model] = palette
        return palette
    }

    private var currentModel: SegmentationModel { options.models[state.modelIndex].model }

    /// Per model, those compare can pair it with: the others with the same classes, the next first (a
    /// comparison of label maps over different class sets would mean nothing).
    private lazy var comparable: [[Int]] = options.models.indices.map { index in
        let names = options.models[index].model.metadata.classNames
        return (1..<max(1, options.models.count)).map { (index + $0) % options.models.count }
            .filter { options.models[$0].model.metadata.classNames == names }
    }

    private var comparisonIndex: Int? {
        guard state.compare else { return nil }
        let choices = comparable[state.modelIndex]
        return state.comparisonModel.flatMap { choices.contains($0) ? $0 : nil } ?? choices.first
    }

    private func key(model: Int) -> ResultKey {
        ResultKey(image: state.imageIndex, model: model, stride: stride(for: model), scale: state.scale,
                  augmentation: state.augmentation)
    }

    private var isBusy: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !pending.isEmpty
    }

    private func takeFinished() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let value = finished
        finished = false
        return value
    }

    private func result(_ key: ResultKey) -> SegmentationResult? {
        lock.lock()
        defer { lock.unlock() }
        return results[key]
    }

    /// The segmenter of `model` at `stride`, made on first use (main thread only).
    func segmenter(model: Int, stride: Int, scale: WorkingScale, augmentation: TestTimeAugmentation) throws
        -> Segmenter {
        let key = [model, stride]
        if segmenters[key] == nil {
            var made = try Segmenter(model: options.models[model].model, outputStride: stride,
                                     maxPixels: options.maxPixels, context: options.context)
            made.allowTruncated = options.allowTruncated
            made.maxMemory = options.maxMemory
            segmenters[key] = made
        }
        var segmenter = segmenters[key]!.at(scale)
        segmenter.augmentation = augmentation
        return segmenter
    }

    /// Adds to what the status line says until the next key.
    private func addMessage(_ text: String) {
        message = (message.map { $0 + "; " } ?? "") + text
    }

    /// Queues the forward passes the current view needs and has not got.
    private func requestResults() {
        guard let loaded else { return }
        let keys = [key(model: state.modelIndex)] + (comparisonIndex.map { [key(model: $0)] } ?? [])
        for key in keys {
            lock.lock()
            let missing = results[key] == nil && !pending.contains(key) && failures[key] == nil
            if missing { pending.insert(key) }
            lock.unlock()
            guard missing else { continue }
            let display = (width: loaded.image.width, height: loaded.image.height)
            let source = (width: loaded.sourceWidth, height: loaded.sourceHeight)
            let segmenter: Segmenter
            do {
                segmenter = try self.segmenter(model: key.model, stride: key.stride, scale: key.scale,
                                               augmentation: key.augmentation)
            } catch {
                fail("\(error)", for: key)
                continue
            }
            let image = loaded.decoded
            queue.async { [weak self, segmenter] in
                do {
                    let result: SegmentationResult
                    do {
                        result = try segmenter.segment(image, sourceWidth: source.width, sourceHeight: source.height)
                    } catch let refusal as MemoryLimitExceeded where refusal.fittingShortSide >= 8 {
                        // The viewer shrinks where the commands refuse: the largest working size that fits.
                        result = try segmenter.at(.shortSide(refusal.fittingShortSide))
                            .segment(image, sourceWidth: source.width, sourceHeight: source.height)
                        self?.note(String(format: "%dx%d would need about %.1f GB: ran at %dx%d to fit --max-memory",
                                          refusal.width, refusal.height, Double(refusal.neededBytes) / 1e9,
                                          result.width, result.height), for: key)
                    }
                    self?.store(result.resampled(width: display.width, height: display.height), for: key)
                } catch {
                    self?.fail("\(error)", for: key)
                }
                segmenter.context.pool.trim()
            }
        }
    }

    private func fail(_ reason: String, for key: ResultKey) {
        lock.lock()
        defer { lock.unlock() }
        failures[key] = reason
        pending.remove(key)
        finished = true
    }

    private func note(_ text: String, for key: ResultKey) {
        lock.lock()
        defer { lock.unlock() }
        notes[key] = text
    }

    private func store(_ result: SegmentationResult, for key: ResultKey) {
        lock.lock()
        defer { lock.unlock() }
        results[key] = result
        order.append(key)
        pending.remove(key)
        finished = true
        while order.count > Self.cacheLimit { results[order.removeFirst()] = nil }
    }

    /// Decodes the image at `position` in the current order (and its labels); on failure moves on
    /// in `step`'s direction.
    @discardableResult
    private func loadImage(position: Int, step: Int) -> Bool {
        let count = options.images.count
        let order = imageOrder
        for attempt in 0..<count {
            let candidate = order[((position + attempt * step) % count + count) % count]
            let path = options.images[candidate]
            do {
                let targets = options.models.map {
                    state.scale.targetShortSide(resizeSize: $0.model.metadata.resizeSize)
                }
                let decodeSide = targets.contains(nil) ? 0 : targets.compactMap { $0 }.max() ?? 0
                let decoded = try ImageFile.read(path, maxPixels: options.maxPixels, shortSide: decodeSide,
                                                 allowTruncated: options.allowTruncated)
                let source = options.maxSide.map {
                    RGBImage.fitting(width: decoded.fullWidth, height: decoded.fullHeight, maxSide: $0)
                } ?? (width: decoded.fullWidth, height: decoded.fullHeight)
                let working = options.models.map { entry in
                    state.scale.workingSize(width: source.width, height: source.height,
                                            resizeSize: entry.model.metadata.resizeSize)
                }
                let image = DisplayPicture.make(decoded.image,
                                                size: DisplayPicture.size(source: source, workingSizes: working))
                var truth: [UInt8]? = nil
                if let labelPath = options.labels[path] {
                    do {
                        var labels = try PNG.readLabels(labelPath, maxPixels: options.maxPixels)
                        if labels.width == decoded.fullWidth && labels.height == decoded.fullHeight {
                            labels = labels.nearest(width: image.width, height: image.height)
                            truth = labels.pixels
                        } else {
                            message = "labels \(labelPath) are \(labels.width)x\(labels.height), "
                                + "the image \(decoded.fullWidth)x\(decoded.fullHeight)"
                        }
                    } catch {
                        message = "\(error)"
                    }
                }
                let previous = loaded.map { ($0.image.width, $0.image.height) } ?? (image.width, image.height)
                loaded = (candidate, image, decoded.image, source.width, source.height, truth)
                state.imageIndex = candidate
                // The cursor keeps its relative place on an image of another size.
                state.cursorX = min(image.width - 1, state.cursorX * image.width / max(1, previous.0))
                state.cursorY = min(image.height - 1, state.cursorY * image.height / max(1, previous.1))
                return true
            } catch {
                message = "skipped \(error)"
            }
        }
        return false
    }

    private func makeScene(spinner: Character?) -> Scene {
        let model = currentModel
        let loaded = loaded!
        var scene = Scene(image: loaded.image, imageName: URL(fileURLWithPath: options.images[loaded.index]).lastPathComponent,
                          classNames: model.metadata.classNames, classColors: model.metadata.classColors.map(RGB.init),
                          modelTitle: Self.title(options.models[state.modelIndex], stride: key(model: state.modelIndex).stride))
        scene.sourceSize = "\(loaded.sourceWidth)x\(loaded.sourceHeight)"
        scene.imageID = "\(options.images[loaded.index])|\(state.scale)"
        if options.images.count > 1 { scene.position = positionLabel }
        if state.showList { scene.listing = listing }
        // The size the network runs at, as `predict` would; the picture drawn may be smaller.
        let working = state.scale.workingSize(width: loaded.sourceWidth, height: loaded.sourceHeight,
                                              resizeSize: model.metadata.resizeSize)
        let drawn = (loaded.image.width, loaded.image.height) == working ? ""
            : " (drawn \(loaded.image.width)x\(loaded.image.height))"
        scene.scaleLabel = "\(state.scale) \(working.width)x\(working.height)\(drawn)"
        let mainKey = key(model: state.modelIndex)
        scene.result = result(mainKey)
        scene.truth = loaded.truth
        scene.ignoreLabel = options.ignoreLabel
        scene.modelFile = options.models[state.modelIndex].name
        if let other = comparisonIndex {
            scene.comparisonTitle = Self.title(options.models[other], stride: key(model: other).stride)
            scene.comparisonFile = options.models[other].name
            scene.comparison = result(key(model: other))
        }
        if let truth = loaded.truth {
            func agreement(_ result: SegmentationResult?) -> ConfusionMatrix? {
                guard let result else { return nil }
                var matrix = ConfusionMatrix(classes: model.metadata.numClasses)
                matrix.add(prediction: result.labels, truth: truth, ignore: options.ignoreLabel)
                return matrix
            }
            scene.agreement = agreement(scene.result)
            scene.comparisonAgreement = agreement(scene.comparison)
        }
        if let spinner { scene.busy = "\(spinner) running \(model.name(outputStride: mainKey.stride)) at OS \(mainKey.stride)" }
        lock.lock()
        if let failure = failures[mainKey] ?? notes[mainKey] { scene.message = failure }
        lock.unlock()
        scene.message = message ?? scene.message
        return scene
    }

    /// The model as run at `stride` (FCN-VGG's name changes with it), its backbone, int8 where it runs so.
    static func title(_ entry: (name: String, model: SegmentationModel), stride: Int) -> String {
        "\(entry.model.name(outputStride: stride)) \(entry.model.metadata.backbone)"
            + (entry.model.metadata.precision == .int8 ? " int8" : "")
    }

    // MARK: order

    /// The run whose scores order the images (or, in name order, fill the image list); nil when
    /// nothing is to be scored.
    private var scoreRun: DatasetScores.Run? {
        let measure = state.order != .name ? state.order
            : state.showList ? (labelled.isEmpty ? .leastConfident : .worstFirst) : nil
        guard let measure else { return nil }
        var run = DatasetScores.Run(model: state.modelIndex, stride: stride(for: state.modelIndex), scale: state.scale,
                                    augmentation: state.augmentation, order: measure)
        if measure == .mostDisagreement {
            guard let other = comparisonIndex else { return nil }
            (run.comparison, run.comparisonStride) = (other, stride(for: other))
        }
        return run
    }

    /// The images a run scores: mean IoU needs labels, the others do not.
    private func scored(_ run: DatasetScores.Run) -> [Int] {
        run.order == .worstFirst ? labelled : Array(options.images.indices)
    }

    /// Image indices in the order `n` and `p` walk them.
    private var imageOrder: [Int] {
        let byName = Array(options.images.indices)
        guard state.order != .name, let run = scoreRun else { return byName }
        return scores.lowestFirst(run, scored: scored(run), count: options.images.count) ?? byName
    }

    /// Where the current image stands in `order`.
    private var position: Int { imageOrder.firstIndex(of: state.imageIndex) ?? 0 }

    /// "12/233", "12/233 worst first:" (the colon keeps the order apart from the file name after
    /// it), or while scores are computed "scoring 40/233".
    private var positionLabel: String {
        let count = options.images.count
        guard state.order != .name, let run = scoreRun else { return "\(position + 1)/\(count)" }
        if scores.lowestFirst(run, scored: scored(run), count: count) == nil {
            return "scoring \(scores.progress(run, scored: scored(run)))/\(scored(run).count)"
        }
        return "\(position + 1)/\(count)\(state.order.label):"
    }

    private lazy var imageNames = options.images.map { URL(fileURLWithPath: $0).lastPathComponent }

    /// Every image in the current order with its score so far.
    private var listing: ImageListing? {
        guard let run = scoreRun else { return nil }
        let known = scores.known(run)
        let entries = imageOrder.map { index -> ImageListing.Entry in
            let score: String
            switch known[index] {
            case .none: score = ""
            case .some(.none): score = "n/a"
            case .some(.some(let value)):
                score = run.order == .leastConfident ? String(format: "%.3f", value)
                    : String(format: "%.1f%%", value * 100)
            }
            return ImageListing.Entry(image: index, name: imageNames[index], score: score)
        }
        let done = scores.progress(run, scored: scored(run)), total = scored(run).count
        let title = run.order.measure + (done < total ? " (scoring \(done)/\(total))"
                                         : state.order == .name ? "" : ", lowest first")
        return ImageListing(title: title, entries: entries, current: position)
    }

    /// Scores the next image of the current run in the background when no pass of the view is
    /// waiting; in a scored order, goes to the first image once all are scored. Whether scoring goes on.
    private func scoreInBackground() -> Bool {
        guard let run = scoreRun else { return false }
        if scores.lowestFirst(run, scored: scored(run), count: options.images.count) != nil {
            if state.order != .name && shownScoredOrder != run {
                shownScoredOrder = run
                loadImage(position: 0, step: 1)
                markFinished()
            }
            return false
        }
        func segmenter(_ model: Int, _ stride: Int) -> Segmenter? {
            try? self.segmenter(model: model, stride: stride, scale: run.scale, augmentation: run.augmentation)
        }
        guard !isBusy, let model = segmenter(run.model, run.stride) else { return true }
        let comparison = run.comparison.flatMap { segmenter($0, run.comparisonStride ?? run.stride) }
        let scorer = ImageScorer(order: run.order, model: model, comparison: comparison, images: options.images,
                                 labels: options.labels, ignoreLabel: options.ignoreLabel)
        scores.pump(run, scored: scored(run), queue: queue, score: { scorer.score($0) },
                    done: { [weak self] in self?.markFinished() })
        return true
    }

    private func markFinished() {
        lock.lock()
        finished = true
        lock.unlock()
    }

    // MARK: keys

    /// `g`: an image number (from 1) or the start of a file name (case does not matter).
    private func jump(to target: String) {
        let names = imageNames.map { $0.lowercased() }
        if let number = Int(target), (1...options.images.count).contains(number) {
            loadImage(position: number - 1, step: 1)
        } else if let index = names.firstIndex(where: { $0.hasPrefix(target.lowercased()) }) {
            loadImage(position: imageOrder.firstIndex(of: index) ?? index, step: 1)
        } else {
            message = "no image numbered or named '\(target)'"
        }
    }

    private func keyContext(_ image: RGBImage) -> KeyContext {
        KeyContext(imageWidth: image.width, imageHeight: image.height,
                   classCounts: options.models.map { $0.model.metadata.numClasses },
                   strides: options.models.map { $0.model.outputStrides }, comparable: comparable,
                   hasTruth: loaded?.truth != nil, hasLabels: !labelled.isEmpty, scales: scales,
                   screen: renderer.screenMap)
    }

    /// Writes what the focused pane shows, at the image's resolution, as a new PNG in the current
    /// directory: a numbered name is chosen so that nothing existing is ever replaced.
    private func save() {
        guard let loaded else { return }
        let scene = makeScene(spinner: nil)
        guard let (view, picture) = renderer.picture(ofPane: state.focusedPane, scene, state) else {
            message = Renderer.paneKinds(compare: state.compare && scene.comparing)
                .indices.contains(state.focusedPane) ? "nothing to save yet" : "s saves a pane: focus one with w"
            return
        }
        let stem = URL(fileURLWithPath: options.images[loaded.index]).deletingPathExtension().lastPathComponent
        func run(_ model: Int) -> String {
            let stride = key(model: model).stride
            return "\(options.models[model].model.name(outputStride: stride))-os\(stride)"
        }
        // The model whose result the pane shows: B's pane is named by B, the difference by both.
        var shown = run(state.modelIndex)
        if let other = comparisonIndex, view.hasPrefix("B-") { shown = run(other) }
        if let other = comparisonIndex, view == "disagreement" { shown += "-vs-" + run(other) }
        let base = "segview-\(stem)-\(shown)-\(view)"
        var name = base + ".png"
        var number = 1
        while FileManager.default.fileExists(atPath: name) {
            number += 1
            name = "\(base)-\(number).png"
        }
        do {
            try PNG.write(picture, to: name)
            message = "saved \(name) (\(picture.width)x\(picture.height))"
        } catch {
            message = "save failed: \(error)"
        }
    }
}
