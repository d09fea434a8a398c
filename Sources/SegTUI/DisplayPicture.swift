import SegImage

/// The picture the viewer's panes draw from. Not the file's full size: a frame then costs what
/// the working size costs, so a 24-megapixel photo draws as fast as a small one, and the
/// network's result (at its working size) lies on the same pixel grid.
public enum DisplayPicture {
    /// The longest side drawn from: more than a terminal shows even zoomed in 8x (a 250-column
    /// pane is 250 pixels wide), so `--scale native` on a 24-megapixel photo stays as cheap to draw.
    public static let maximumSide = 2048

    /// The largest of the models' working sizes, but never more than `source` (a working size
    /// that enlarges is drawn at the source's size) nor `maximumSide`; results are resampled to it.
    public static func size(source: (width: Int, height: Int), workingSizes: [(width: Int, height: Int)])
        -> (width: Int, height: Int) {
        let largest = workingSizes.max { $0.width * $0.height < $1.width * $1.height } ?? source
        let size = largest.width <= source.width && largest.height <= source.height ? largest : source
        return RGBImage.fitting(width: size.width, height: size.height, maxSide: maximumSide)
    }

    /// `decoded` (the file's picture, possibly decoded smaller than the source) brought to `size`
    /// by area averaging; a picture already no larger is kept.
    public static func make(_ decoded: RGBImage, size: (width: Int, height: Int)) -> RGBImage {
        guard size.width < decoded.width || size.height < decoded.height,
              size.width <= decoded.width, size.height <= decoded.height else { return decoded }
        return decoded.downscaled(width: size.width, height: size.height)
    }
}
