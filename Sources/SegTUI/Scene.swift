import SegImage
import SegPipeline

/// What is on screen besides the view state: the image, the model's result (nil while it runs),
/// names and colours, ground truth and transient messages. Built by the viewer, read by the renderer.
public struct Scene {
    public var image: RGBImage
    public var imageName: String
    /// What tells this picture from another of the same name and size (the viewer: path and scale).
    public var imageID: String
    public var classNames: [String]
    public var classColors: [RGB]
    public var modelTitle: String
    /// The model files' names, which tell two checkpoints of one architecture apart in compare mode.
    public var modelFile = ""
    public var comparisonFile = ""
    /// The image file's own size, "4000x3000" (`image` may be smaller: the working resolution).
    public var sourceSize: String
    /// The working resolution as the status line shows it: "auto 480x360".
    public var scaleLabel = "native"
    /// "12/233" when the viewer holds more than one image.
    public var position: String?
    public var result: SegmentationResult?
    /// The second model in compare mode (its result may still be running).
    public var comparisonTitle: String?
    public var comparison: SegmentationResult?
    public var truth: [UInt8]?
    public var ignoreLabel = 255
    /// Prediction against the ground truth, when labels are given.
    public var agreement: ConfusionMatrix?
    /// The second model's, in compare mode.
    public var comparisonAgreement: ConfusionMatrix?
    /// The images in the current order with their scores (`i`).
    public var listing: ImageListing?
    /// Shown with a spinner while a model runs.
    public var busy: String?
    public var message: String?

    /// Whether compare's panes show: a model B is chosen, whether or not its result is in yet (so
    /// that the layout does not jump when it arrives).
    public var comparing: Bool { comparisonTitle != nil }

    public init(image: RGBImage, imageName: String, classNames: [String], classColors: [RGB], modelTitle: String) {
        self.image = image
        self.imageName = imageName
        imageID = imageName
        self.classNames = classNames
        self.classColors = classColors
        self.modelTitle = modelTitle
        sourceSize = "\(image.width)x\(image.height)"
    }
}

/// The image list: every image in the current order, with its score where it has one.
public struct ImageListing {
    public struct Entry {
        public var image: Int
        public var name: String
        /// "41.2%", "n/a" (could not be scored), "" (not scored yet).
        public var score: String

        public init(image: Int, name: String, score: String) {
            (self.image, self.name, self.score) = (image, name, score)
        }
    }

    /// What the scores are and how far scoring has got: "mIoU, worst first (scoring 40/233)".
    public var title: String
    public var entries: [Entry]
    /// Where the current image is in `entries`.
    public var current: Int

    public init(title: String, entries: [Entry], current: Int) {
        (self.title, self.entries, self.current) = (title, entries, current)
    }
}
