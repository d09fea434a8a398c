import SegEngine

/// torchvision's ResNet ("v1.5": the stride sits on the 3x3 conv) as a dilated backbone.
///
/// The output stride is chosen per call: stages whose stride is dropped dilate instead, following
/// torchvision's `replace_stride_with_dilation` exactly (the first block of a dilated stage keeps
/// the previous dilation), so one set of weights runs at 8, 16 or 32.
final class ResNet {
    struct Config {
        var blocks: [Int]
        /// Channels of the stem, and the bottleneck width of the first stage (64 in every standard ResNet).
        var baseWidth: Int

        static func named(_ name: String, metadata: ModelMetadata) throws -> Config {
            let standard: [String: [Int]] = ["resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3]]
            let blocks = try metadata.integers("backbone_layers") ?? standard[name]
            guard let blocks, blocks.count == 4 else {
                throw ModelMetadataError.badMetadata(field: "backbone",
                                                 reason: "'\(name)' is not resnet50/101/152 and backbone_layers does not give 4 stages")
            }
            return Config(blocks: blocks, baseWidth: try metadata.integer("backbone_width") ?? 64)
        }
    }

    final class Bottleneck {
        let conv1, conv2, conv3: ConvWeights
        let downsample: ConvWeights?

        init(_ w: WeightReader, _ prefix: String, in inChannels: Int, width: Int, hasDownsample: Bool) throws {
            conv1 = try w.conv(prefix + ".conv1", out: width, in: inChannels, kernel: 1, batchNorm: prefix + ".bn1")
            conv2 = try w.conv(prefix + ".conv2", out: width, in: width, kernel: 3, batchNorm: prefix + ".bn2")
            conv3 = try w.conv(prefix + ".conv3", out: width * 4, in: width, kernel: 1, batchNorm: prefix + ".bn3")
            downsample = hasDownsample
                ? try w.conv(prefix + ".downsample.0", out: width * 4, in: inChannels, kernel: 1, batchNorm: prefix + ".downsample.1")
                : nil
        }

        func callAsFunction(_ x: Tensor, stride: Int, dilation: Int) -> Tensor {
            let shortcut = downsample.map { conv2d(x, $0, ConvGeometry(stride: stride)) } ?? x
            var y = conv2d(x, conv1, activation: .relu)
            y = conv2d(y, conv2, .same(kernel: 3, stride: stride, dilation: dilation), activation: .relu)
            y = conv2d(y, conv3)
            return add(y, shortcut, activation: .relu)
        }

        var parameterCount: Int {
            conv1.parameterCount + conv2.parameterCount + conv3.parameterCount + (downsample?.parameterCount ?? 0)
        }
    }

    let stem: ConvWeights
    let stages: [[Bottleneck]]
    /// Channels of the last stage's output (2048 for standard ResNets) and of the third stage's.
    let outChannels: Int
    let stage3Channels: Int

    init(_ w: WeightReader, prefix: String, config: Config) throws {
        stem = try w.conv(prefix + "conv1", out: config.baseWidth, in: 3, kernel: 7, batchNorm: prefix + "bn1")
        var inChannels = config.baseWidth
        var stages: [[Bottleneck]] = []
        for (index, count) in config.blocks.enumerated() {
            let width = config.baseWidth << index
            var blocks: [Bottleneck] = []
            for b in 0..<count {
                // Block 0 of every stage changes the channel count (stage 1) or the stride: it projects.
                blocks.append(try Bottleneck(w, "\(prefix)layer\(index + 1).\(b)", in: inChannels, width: width,
                                             hasDownsample: b == 0))
                inChannels = width * 4
            }
            stages.append(blocks)
        }
        self.stages = stages
        outChannels = inChannels
        stage3Channels = (config.baseWidth << 2) * 4
    }

    /// (stride, dilation) of every block for an output stride, as torchvision builds them.
    static func schedule(blocks: [Int], outputStride: Int) -> [[(stride: Int, dilation: Int)]] {
        // replace_stride_with_dilation for layer2, layer3, layer4
        let dilate: [Bool] = switch outputStride {
        case 8: [false, true, true]
        case 16: [false, false, true]
        default: [false, false, false]
        }
        var dilation = 1
        return blocks.enumerated().map { index, count in
            var stride = index == 0 ? 1 : 2
            let previous = dilation
            if index > 0 && dilate[index - 1] {
                dilation *= stride
                stride = 1
            }
            return (0..<count).map { $0 == 0 ? (stride, previous) : (1, dilation) }
        }
    }

    /// The last stage's features at 1/outputStride of the input.
    func callAsFunction(_ image: Tensor, outputStride: Int) -> Tensor {
        var x = conv2d(image, stem, .same(kernel: 7, stride: 2), activation: .relu)
        x = maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        let plan = Self.schedule(blocks: stages.map(\.count), outputStride: outputStride)
        for (stage, steps) in zip(stages, plan) {
            for (block, step) in zip(stage, steps) { x = block(x, stride: step.stride, dilation: step.dilation) }
        }
        return x
    }

    var parameterCount: Int {
        stem.parameterCount + stages.joined().reduce(0) { $0 + $1.parameterCount }
    }
}
