import Foundation

/// Two models scored on the same images (`eval --model A --model B`): both reports, and the images
/// where one model's mean IoU beats the other's most.
struct EvalComparison {
    let a: EvalReport
    let b: EvalReport

    /// How many images each side of the ranking lists in text.
    static let listed = 10

    struct Difference {
        let image: String
        let meanIoUA: Double
        let meanIoUB: Double
        var gain: Double { meanIoUB - meanIoUA }
    }

    /// Per image, B's mean IoU against A's, B's largest gains first (ties by name). Both reports
    /// hold the same images in the same order: eval adds an image to both or to neither.
    var differences: [Difference] {
        zip(a.images, b.images).map { Difference(image: $0.name, meanIoUA: $0.meanIoU, meanIoUB: $1.meanIoU) }
            .sorted { ($0.gain, $1.image) > ($1.gain, $0.image) }
    }

    var json: [String: Any] {
        ["models": [a.json, b.json],
         "per_image_difference": differences.map { difference in
             ["image": difference.image, "mean_iou_a": difference.meanIoUA, "mean_iou_b": difference.meanIoUB,
              "difference": difference.gain]
         }]
    }

    func printText(perImage: Bool) {
        for (side, report) in [("A", a), ("B", b)] {
            print("\(side) ", terminator: "")
            report.printText()
            if perImage { report.printPerImage() }
            print()
        }
        let ranked = differences
        let better = (b: ranked.filter { $0.gain > 0 }.count, a: ranked.filter { $0.gain < 0 }.count)
        print(String(format: "mean IoU: A %.2f%%, B %.2f%%; B better on %d images, A on %d, equal on %d",
                     a.matrix.meanIoU * 100, b.matrix.meanIoU * 100, better.b, better.a,
                     ranked.count - better.a - better.b))
        let width = max(5, ranked.map(\.image.count).max() ?? 0)
        for (title, rows) in [("B beats A most", ranked.prefix { $0.gain > 0 }),
                              ("A beats B most", ranked.reversed().prefix { $0.gain < 0 })] where !rows.isEmpty {
            print("\n\(title):\n" + "image".padding(toLength: width, withPad: " ", startingAt: 0)
                  + "   mIoU A   mIoU B    B - A")
            for row in rows.prefix(Self.listed) {
                print(row.image.padding(toLength: width, withPad: " ", startingAt: 0)
                      + String(format: "  %6.2f%%  %6.2f%%  %+6.2f", row.meanIoUA * 100, row.meanIoUB * 100,
                               row.gain * 100))
            }
        }
    }
}
