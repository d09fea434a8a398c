import SegEngine

/// FCN-32s / FCN-16s / FCN-8s (Long et al.) on VGG-16, with the Caffe models' layer names (as kept
/// by the PyTorch port wkentaro/pytorch-fcn): conv1_1 ... conv5_3, fc6, fc7, score_fr, score_pool4,
/// score_pool3, upscore*, so converted Caffe weights load.
///
/// Caffe semantics: conv1_1 pads by 100 (so every later crop offset is non-negative), max pools
/// round up, fc6 is an unpadded 7x7 conv, upsampling is a bias-free transposed convolution followed
/// by a fixed crop. The output stride picks the variant: 32, 16 or 8 means FCN-32s, -16s or -8s,
/// each available when the file has its skip scores (an FCN-8s file runs as all three). Upsampling
/// layers missing from the file are the fixed bilinear kernels the Caffe release freezes them at.
public final class FCNVGG: SegmentationModel {
    public let metadata: ModelMetadata
    public let outputStrides: [Int]
    static let convsPerStage = [2, 2, 3, 3, 3]
    static let finalCrop = [32: 19, 16: 27, 8: 31]
    /// (name, kernel, stride) of the upsampling layers: x32 for 32s; x2, x16 for 16s; x2, x2, x8 for 8s.
    static let upsamplingLayers = [("upscore", 64, 32), ("upscore2", 4, 2), ("upscore16", 32, 16),
                                   ("upscore_pool4", 4, 2), ("upscore8", 16, 8)]

    let stages: [[ConvLayer]]
    let fc6, fc7, scoreFR: ConvLayer
    let scorePool4, scorePool3: ConvLayer?
    public let parameterCount: Int
    /// Transposed convs by name: upscore (x32), upscore2 and upscore16 (16s), upscore_pool4 and upscore8 (8s).
    let upsampling: [String: (weights: TransposedConvWeights, stride: Int)]

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        var inChannels = 3
        stages = try Self.convsPerStage.enumerated().map { stage, count in
            try (1...count).map { index in
                let name = "conv\(stage + 1)_\(index)"
                let conv = try ConvLayer(w, name, out: try w.outChannels(name), in: inChannels, kernel: 3,
                                         padding: stage == 0 && index == 1 ? 100 : 1, bias: true, activation: .relu)
                inChannels = conv.outChannels
                return conv
            }
        }
        let fcWidth = try w.outChannels("fc6")
        let classes = metadata.numClasses
        fc6 = try ConvLayer(w, "fc6", out: fcWidth, in: inChannels, kernel: 7, padding: 0, bias: true, activation: .relu)
        fc7 = try ConvLayer(w, "fc7", out: fcWidth, in: fcWidth, kernel: 1, bias: true, activation: .relu)
        scoreFR = try ConvLayer(w, "score_fr", out: classes, in: fcWidth, kernel: 1, bias: true)
        // FCN-8s "at-once" scales pool4 and pool3 by constants before scoring; folded into the weights.
        let atOnce = metadata.extra["fcn_at_once"] == "true"
        scorePool4 = w.contains("score_pool4.weight")
            ? try ConvLayer(w, "score_pool4", out: classes, in: stages[3].last!.outChannels, kernel: 1, bias: true,
                            inputScale: atOnce ? 0.01 : 1)
            : nil
        scorePool3 = w.contains("score_pool3.weight") && scorePool4 != nil
            ? try ConvLayer(w, "score_pool3", out: classes, in: stages[2].last!.outChannels, kernel: 1, bias: true,
                            inputScale: atOnce ? 1e-4 : 1)
            : nil
        outputStrides = scorePool3 != nil ? [8, 16, 32] : scorePool4 != nil ? [16, 32] : [32]
        var upsampling: [String: (TransposedConvWeights, Int)] = [:]
        for (name, kernel, stride) in Self.upsamplingLayers {
            let weights = w.contains(name + ".weight")
                ? try w.tensor(name + ".weight", [classes, classes, kernel, kernel])
                : Self.bilinearKernel(channels: classes, size: kernel)
            upsampling[name] = (TransposedConvWeights(inChannels: classes, outChannels: classes, kernelH: kernel,
                                                      kernelW: kernel, weights: weights), stride)
        }
        self.upsampling = upsampling
        parameterCount = w.parameterCount  // the upsampling's fixed kernels are not counted
    }

    /// FCN's bilinear upsampling kernel, one per class on the diagonal (`[Cin][Cout][k][k]`).
    static func bilinearKernel(channels: Int, size: Int) -> [Float] {
        let factor = (size + 1) / 2
        let center = size % 2 == 1 ? Float(factor - 1) : Float(factor) - 0.5
        let taps = (0..<size).map { 1 - abs(Float($0) - center) / Float(factor) }
        var weights = [Float](repeating: 0, count: channels * channels * size * size)
        for c in 0..<channels {
            for y in 0..<size {
                for x in 0..<size { weights[((c * channels + c) * size + y) * size + x] = taps[y] * taps[x] }
            }
        }
        return weights
    }

    public func name(outputStride: Int) -> String { "fcn\(outputStride)s" }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        var x = image
        var pools: [Tensor] = []
        for convs in stages {
            for conv in convs { x = conv(x) }
            x = maxPool2d(x, kernel: 2, stride: 2, ceilMode: true)
            pools.append(x)
        }
        x = scoreFR(fc7(fc6(x)))
        let variant = outputStrides.contains(outputStride) ? outputStride : outputStrides[0]
        if variant == 32 {
            x = upsample("upscore", x)
        } else {
            x = fuse(upsample("upscore2", x), skip: scorePool4!, pools[3], offset: 5)
            if variant == 16 {
                x = upsample("upscore16", x)
            } else {
                x = fuse(upsample("upscore_pool4", x), skip: scorePool3!, pools[2], offset: 9)
                x = upsample("upscore8", x)
            }
        }
        let offset = Self.finalCrop[variant]!
        return Prediction(scores: crop(x, top: offset, left: offset, height: image.height, width: image.width))
    }

    private func upsample(_ name: String, _ x: Tensor) -> Tensor {
        let layer = upsampling[name]!
        return convTranspose2d(x, layer.weights, ConvGeometry(stride: layer.stride))
    }

    /// `upsampled + crop(score(pool))`, the crop at Caffe's fixed offset.
    private func fuse(_ upsampled: Tensor, skip: ConvLayer, _ pool: Tensor, offset: Int) -> Tensor {
        let scores = crop(skip(pool), top: offset, left: offset, height: upsampled.height, width: upsampled.width)
        return add(upsampled, scores)
    }
}
