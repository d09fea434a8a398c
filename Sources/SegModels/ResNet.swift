import SegEngine

/// ResNet ("v1.5": the stride sits on the 3x3 conv) as a dilated backbone, in the three layouts the
/// reference implementations use.
///
/// The output stride is chosen per call: stages whose stride is dropped dilate instead, so one set
/// of weights runs at 8, 16 or 32. Depth and width are read from the file's tensor shapes.
final class ResNet {
    /// Where dilation goes when strides are dropped.
    enum Schedule {
        /// torchvision's `replace_stride_with_dilation`: the first block of a dilated stage keeps the
        /// previous dilation (torchvision, DrSleep's RefineNet port, TorchSeg's DFN).
        case torchvision
        /// jfzhang95's DeepLabV3+ ResNet: every block of a dilated stage uses the stage's dilation, and
        /// the last stage's blocks use multi-grid rates (1, 2, 4) times it.
        case multiGrid
    }

    final class Bottleneck {
        let conv1, conv2, conv3: ConvLayer
        let downsample: ConvLayer?

        /// `strided`: the first block of a stage that may run with stride 2, whose shortcut must
        /// then change size as well as channels.
        init(_ w: WeightReader, _ prefix: String, in inChannels: Int, width: Int, strided: Bool) throws {
            conv1 = try ConvLayer(w, prefix + ".conv1", out: width, in: inChannels, kernel: 1, batchNorm: prefix + ".bn1",
                                  activation: .relu)
            conv2 = try ConvLayer(w, prefix + ".conv2", out: width, in: width, kernel: 3, batchNorm: prefix + ".bn2",
                                  activation: .relu)
            // The block's ReLU follows the shortcut's add, which the last convolution fuses.
            conv3 = try ConvLayer(w, prefix + ".conv3", out: width * 4, in: width, kernel: 1, batchNorm: prefix + ".bn3",
                                  activation: .relu)
            let needsDownsample = strided || inChannels != width * 4
            guard w.contains(prefix + ".downsample.0.weight") || !needsDownsample else {
                throw SafeTensorsError.missingTensor(prefix + ".downsample.0.weight")
            }
            downsample = w.contains(prefix + ".downsample.0.weight")
                ? try ConvLayer(w, prefix + ".downsample.0", out: width * 4, in: inChannels, kernel: 1,
                                batchNorm: prefix + ".downsample.1")
                : nil
        }

        func callAsFunction(_ x: Tensor, stride: Int, dilation: Int) -> Tensor {
            let shortcut = downsample.map { $0(x, stride: stride) } ?? x
            return conv3(conv2(conv1(x), stride: stride, dilation: dilation), adding: shortcut)
        }
    }

    /// The stem: one 7x7/2 conv, or TorchSeg's "v1c" deep stem of three 3x3 convs (the first strided).
    let stem: [ConvLayer]
    let stages: [[Bottleneck]]
    let schedule: Schedule
    /// Output channels of the four stages (256, 512, 1024, 2048 for standard ResNets).
    let stageChannels: [Int]
    var outChannels: Int { stageChannels[3] }

    /// `prefix` is the state_dict prefix of the backbone ("backbone." or "" for RefineNet's port).
    init(_ w: WeightReader, prefix: String, schedule: Schedule = .torchvision) throws {
        self.schedule = schedule
        if w.contains(prefix + "conv1.0.weight") {
            let width = try w.outChannels(prefix + "conv1.0")
            stem = [
                try ConvLayer(w, prefix + "conv1.0", out: width, in: 3, kernel: 3, stride: 2, batchNorm: prefix + "conv1.1",
                              activation: .relu),
                try ConvLayer(w, prefix + "conv1.3", out: width, in: width, kernel: 3, batchNorm: prefix + "conv1.4",
                              activation: .relu),
                try ConvLayer(w, prefix + "conv1.6", out: width * 2, in: width, kernel: 3, batchNorm: prefix + "bn1",
                              activation: .relu),
            ]
        } else {
            let width = try w.outChannels(prefix + "conv1")
            stem = [try ConvLayer(w, prefix + "conv1", out: width, in: 3, kernel: 7, stride: 2, batchNorm: prefix + "bn1",
                                  activation: .relu)]
        }
        var inChannels = stem.last!.outChannels
        var stages: [[Bottleneck]] = []
        var channels: [Int] = []
        for stage in 1...4 {
            let layer = "\(prefix)layer\(stage)"
            let count = w.countNumbered(layer + ".", suffix: ".conv1.weight")
            guard count > 0 else { throw SafeTensorsError.missingTensor("\(layer).0.conv1.weight") }
            let width = try w.outChannels(layer + ".0.conv1")
            stages.append(try (0..<count).map { b in
                defer { inChannels = width * 4 }
                return try Bottleneck(w, "\(layer).\(b)", in: b == 0 ? inChannels : width * 4, width: width,
                                      strided: b == 0 && stage > 1)
            })
            channels.append(width * 4)
        }
        self.stages = stages
        stageChannels = channels
    }

    /// (stride, dilation) of every block for an output stride.
    static func plan(blocks: [Int], outputStride: Int, schedule: Schedule) -> [[(stride: Int, dilation: Int)]] {
        switch schedule {
        case .torchvision:
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
        case .multiGrid:
            let (strides, dilations): ([Int], [Int]) = switch outputStride {
            case 8: ([1, 2, 1, 1], [1, 1, 2, 4])
            case 16: ([1, 2, 2, 1], [1, 1, 1, 2])
            default: ([1, 2, 2, 2], [1, 1, 1, 1])
            }
            return blocks.enumerated().map { index, count in
                (0..<count).map { b in
                    let grid = index == 3 ? [1, 2, 4][min(b, 2)] : 1
                    return (b == 0 ? strides[index] : 1, grid * dilations[index])
                }
            }
        }
    }

    /// The outputs of the stages in `keeping` (0-3; strides 4, 8, 16, 32 of the input at output
    /// stride 32), in stage order. Stages not asked for are released as soon as the next one ran.
    func features(_ image: Tensor, outputStride: Int, keeping: Set<Int> = [0, 1, 2, 3]) -> [Tensor] {
        var x = image
        for conv in stem { x = conv(x) }
        x = maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        let plan = Self.plan(blocks: stages.map(\.count), outputStride: outputStride, schedule: schedule)
        var outputs: [Tensor] = []
        for (index, (stage, steps)) in zip(stages, plan).enumerated() {
            for (block, step) in zip(stage, steps) { x = block(x, stride: step.stride, dilation: step.dilation) }
            if keeping.contains(index) { outputs.append(x) }
        }
        return outputs
    }

    /// The last stage's features at 1/outputStride of the input.
    func callAsFunction(_ image: Tensor, outputStride: Int) -> Tensor {
        features(image, outputStride: outputStride, keeping: [3])[0]
    }
}
