import SegPipeline

/// What the mask pane shows.
public enum MaskView: String, CaseIterable, Sendable {
    case mask, blend, contour, heatmap, confidence, entropy, errors, truth

    public var title: String {
        switch self {
        case .mask: return "mask"
        case .blend: return "blend"
        case .contour: return "contour"
        case .heatmap: return "heatmap"
        case .confidence: return "confidence"
        case .entropy: return "entropy"
        case .errors: return "errors"
        case .truth: return "ground truth"
        }
    }
}

/// Everything the user can change with a key; the renderer reads it, the key handler writes it.
public struct ViewState: Equatable, Sendable {
    public var imageIndex = 0
    public var modelIndex = 0
    /// The stride the current model runs at, and the one it was trained at.
    public var outputStride = 8
    public var trainedStride = 8
    /// A stride chosen with `o`: every model that can runs at it; nil: each at its trained stride.
    public var pinnedStride: Int?
    public var scale = WorkingScale.auto
    /// Test-time augmentation, cycled with `t`.
    public var augmentation: TestTimeAugmentation = []
    public var cursorX = 0
    public var cursorY = 0
    public var zoom = 0
    public var maskView = MaskView.mask
    /// Opacity of class colours in the blend and contour views, 0...1.
    public var opacity: Float = 0.5
    public var selectedClass = 0
    public var hiddenClasses: Set<Int> = []
    public var solo = false
    public var compare = false
    /// Compare's model B, picked with `b`; nil: the next model with the same classes.
    public var comparisonModel: Int?
    public var showHelp = false
    /// The list of images with their scores, in the panel (or over the panes in narrow terminals).
    public var showList = false
    public var order = ImageOrder.name
    /// What has been typed after `g` (an image number or the start of a name); nil when not asking.
    public var jumpPrompt: String?
    /// The pane `s` saves and, in narrow terminals, the only one shown: 0 image, 1 mask, 2 border map
    /// (compare: 1 A, 2 B, 3 A ≠ B); one more, without a panel at the side, shows the panel in the
    /// panes' place. `w` or a click changes it.
    public var focusedPane = 1

    public init() {}

    /// Whether a class's colour is drawn.
    public func isVisible(_ label: Int) -> Bool {
        solo ? label == selectedClass : !hiddenClasses.contains(label)
    }
}
