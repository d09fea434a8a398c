import SegPipeline

/// What keys depend on besides the view state: sizes and counts, never files or models, so that
/// key handling is a pure function a test can drive with any sequence at all.
public struct KeyContext: Sendable {
    public var imageWidth: Int
    public var imageHeight: Int
    /// Per model: its class count, the strides it runs at, and the models compare can pair it with
    /// (those with the same classes, the next first).
    public var classCounts: [Int]
    public var strides: [[Int]]
    public var comparable: [[Int]]
    public var hasTruth: Bool
    /// Whether any image has labels (ordering by mean IoU needs them).
    public var hasLabels: Bool
    /// What `r` cycles through.
    public var scales: [WorkingScale]
    /// Where the last frame put the panes and the list's rows, for the mouse.
    public var screen: ScreenMap

    public init(imageWidth: Int, imageHeight: Int, classCounts: [Int], strides: [[Int]],
                comparable: [[Int]], hasTruth: Bool, hasLabels: Bool, scales: [WorkingScale],
                screen: ScreenMap = ScreenMap()) {
        self.screen = screen
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.classCounts = classCounts
        self.strides = strides
        self.comparable = comparable
        self.hasTruth = hasTruth
        self.hasLabels = hasLabels
        self.scales = scales
    }
}

/// What a key asks of the viewer besides a new view state.
public enum KeyEffect: Equatable, Sendable {
    case none
    case quit
    /// Show the image `by` places on in the current order (or, if it cannot be read, the next one).
    case moveImage(by: Int)
    /// Read the current image again (the working resolution changed).
    case reloadImage
    /// Go to the image numbered `target` (from 1) or the first whose name starts with it.
    case jump(String)
    /// Show the image with this index (a click on the list).
    case showImage(Int)
    case save
    case message(String)
}

/// The viewer's keys as a pure function of the view state, the key and the context.
public enum KeyMap {
    public static let maximumZoom = 6

    public static func apply(_ key: Terminal.Key, to state: inout ViewState, _ context: KeyContext) -> KeyEffect {
        // Help is modal: any key (q too) closes it and does nothing else.
        if state.showHelp {
            state.showHelp = false
            return .none
        }
        if let typed = state.jumpPrompt { return prompt(key, typed, &state) }
        let (width, height) = (max(1, context.imageWidth), max(1, context.imageHeight))
        let models = context.classCounts.count
        state.modelIndex = min(max(0, state.modelIndex), max(0, models - 1))
        let classes = max(1, models > 0 ? context.classCounts[state.modelIndex] : 1)
        let step = 1 << max(0, 2 - state.zoom)
        let big = max(8, (max(width, height) / 16) >> state.zoom)
        func move(_ dx: Int, _ dy: Int) {
            state.cursorX = min(max(0, state.cursorX + dx), width - 1)
            state.cursorY = min(max(0, state.cursorY + dy), height - 1)
        }
        switch key {
        case .character("q"): return .quit
        case .left, .character("h"): move(-step, 0)
        case .right, .character("l"): move(step, 0)
        case .up, .character("k"): move(0, -step)
        case .down, .character("j"): move(0, step)
        case .shiftLeft, .character("H"): move(-big, 0)
        case .shiftRight, .character("L"): move(big, 0)
        case .shiftUp, .character("K"): move(0, -big)
        case .shiftDown, .character("J"): move(0, big)
        case .character("m"), .character("M"):
            guard models > 1 else { return .message("only one model loaded (--model FILE|DIR ...)") }
            state.modelIndex = (state.modelIndex + (key == .character("m") ? 1 : -1) + models) % models
            state.selectedClass = min(state.selectedClass, context.classCounts[state.modelIndex] - 1)
            if !context.comparable[state.modelIndex].contains(state.comparisonModel ?? -1) {
                state.comparisonModel = nil
            }
            if state.compare && context.comparable[state.modelIndex].isEmpty { state.compare = false }
        case .character("o"):
            guard models > 0, !context.strides[state.modelIndex].isEmpty else { return .none }
            let strides = context.strides[state.modelIndex]
            let index = strides.firstIndex(of: state.outputStride) ?? -1
            let next = strides[(index + 1) % strides.count]
            // Back at the model's trained stride the pin is let go: every model runs at its own again.
            state.pinnedStride = next == state.trainedStride ? nil : next
        case .character("v"):
            let views = MaskView.allCases.filter { ![.errors, .truth].contains($0) || context.hasTruth }
            state.maskView = views[((views.firstIndex(of: state.maskView) ?? 0) + 1) % views.count]
        case .character("["): state.opacity = max(0, (state.opacity * 10 - 1).rounded() / 10)
        case .character("]"): state.opacity = min(1, (state.opacity * 10 + 1).rounded() / 10)
        case .character("\t"): state.selectedClass = (state.selectedClass + 1) % classes
        case .backTab: state.selectedClass = (state.selectedClass - 1 + classes) % classes
        case .character(" "):
            if state.hiddenClasses.contains(state.selectedClass) { state.hiddenClasses.remove(state.selectedClass) }
            else { state.hiddenClasses.insert(state.selectedClass) }
        case .character("S"): state.solo.toggle()
        case .character("c"):
            guard state.compare || (models > 0 && !context.comparable[state.modelIndex].isEmpty) else {
                return .message("compare needs a second model with the same classes (--model A --model B)")
            }
            state.compare.toggle()
        case .character("b"):
            guard state.compare, models > 0 else { return .message("b picks compare's model B: press c first") }
            let choices = context.comparable[state.modelIndex]
            guard choices.count > 1 else { return .message("B is the only other model with the same classes") }
            let current = choices.firstIndex(of: state.comparisonModel ?? choices[0]) ?? 0
            state.comparisonModel = choices[(current + 1) % choices.count]
        case .character("n"): return .moveImage(by: 1)
        case .character("p"): return .moveImage(by: -1)
        case .character("O"):
            let orders = [ImageOrder.name] + (context.hasLabels ? [.worstFirst] : []) + [.leastConfident]
                + (state.compare ? [.mostDisagreement] : [])
            state.order = orders[((orders.firstIndex(of: state.order) ?? 0) + 1) % orders.count]
        case .character("i"): state.showList.toggle()
        case .mouse(let mouse):
            let effect = click(mouse, &state, context)
            if effect != .none { return effect }
        case .character("+"), .character("="): state.zoom = min(maximumZoom, state.zoom + 1)
        case .character("-"): state.zoom = max(0, state.zoom - 1)
        case .character("w"):
            let places = (state.compare ? 4 : 3) + (context.screen.panelInPanes ? 1 : 0)
            state.focusedPane = (state.focusedPane + 1) % places
        case .character("r"):
            guard !context.scales.isEmpty else { return .none }
            let next = ((context.scales.firstIndex(of: state.scale) ?? -1) + 1) % context.scales.count
            state.scale = context.scales[next]
            return .reloadImage
        case .character("t"):
            let cycle: [TestTimeAugmentation] = [[], .flip, [.flip, .scales]]
            state.augmentation = cycle[((cycle.firstIndex(of: state.augmentation) ?? -1) + 1) % cycle.count]
        case .character("s"): return .save
        case .character("g"): state.jumpPrompt = ""
        case .character("?"): state.showHelp = true
        default: break
        }
        state.selectedClass = min(max(0, state.selectedClass), classes - 1)
        if !state.compare {
            // What only compare has goes with it.
            if state.order == .mostDisagreement { state.order = .name }
            state.focusedPane = min(state.focusedPane, context.screen.panelInPanes ? 3 : 2)
        }
        return .none
    }

    /// A press on a pane focuses it and puts the cursor on the pixel under the pointer; on the list
    /// it shows that image; the wheel zooms (around the pixel under the pointer when over a pane).
    private static func click(_ mouse: Terminal.Mouse, _ state: inout ViewState, _ context: KeyContext) -> KeyEffect {
        if context.screen.listColumns.contains(mouse.col) && context.screen.listRows.contains(mouse.row) {
            guard mouse.action == .press, let image = context.screen.listEntries[mouse.row] else { return .none }
            return .showImage(image)
        }
        if let pane = context.screen.panes.first(where: { $0.contains(row: mouse.row, col: mouse.col) }),
           let pixel = pane.pixel(row: mouse.row, col: mouse.col) {
            state.focusedPane = pane.pane
            // The map may be a frame old (another image): the cursor stays inside this one.
            state.cursorX = min(max(0, pixel.x), max(1, context.imageWidth) - 1)
            state.cursorY = min(max(0, pixel.y), max(1, context.imageHeight) - 1)
        } else if mouse.action == .press {
            return .none
        }
        switch mouse.action {
        case .press: break
        case .wheelUp: state.zoom = min(maximumZoom, state.zoom + 1)
        case .wheelDown: state.zoom = max(0, state.zoom - 1)
        }
        return .none
    }

    /// Typing after `g`: Enter jumps, Esc cancels, Backspace deletes, printable characters add.
    private static func prompt(_ key: Terminal.Key, _ typed: String, _ state: inout ViewState) -> KeyEffect {
        guard case .character(let character) = key else { return .none }
        switch character {
        case "\r", "\n":
            state.jumpPrompt = nil
            return typed.isEmpty ? .none : .jump(typed)
        case "\u{1b}": state.jumpPrompt = nil
        case "\u{7f}", "\u{08}": state.jumpPrompt = String(typed.dropLast())
        default:
            if typed.count < 80, character.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value != 127 }) {
                state.jumpPrompt = typed + String(character)
            }
        }
        return .none
    }
}
