import SegEngine

/// RefineNet (Lin et al.), the 4-cascade multi-path network, with the names of DrSleep's PyTorch port
/// of the released VOC model (`rf101`): backbone layers at the top level (`conv1`, `layer1`...), per
/// path `p_ims1d2_outl{k}_dimred`, adaptive RCUs `adapt_stage{k}_b`, fusion convs
/// `adapt_stage{k}_b2_joint_varout_dimred` / `mflow_conv_g{k}_b3_joint_varout_dimred`, chained residual
/// pooling `mflow_conv_g{k}_pool`, output RCUs `mflow_conv_g{k}_b`, classifier `clf_conv`.
///
/// No BatchNorm outside the backbone. The network's logits come out at 1/4 of the input and are
/// resized to it bilinearly (align_corners=True, like the fusion upsampling). The number of RCUs and
/// of pooling blocks is read from the file (the release: 2 adaptive, 3 output, 4 pooling blocks).
/// Output stride 16 or 8 dilates the backbone's last stages; the release runs at 32.
public final class RefineNet: SegmentationModel {
    public let metadata: ModelMetadata
    public let outputStrides = [8, 16, 32]

    /// Residual conv units: `x + conv2(relu(conv1(relu(x))))`, conv1 with bias, conv2 without.
    struct RCUBlock {
        let units: [(ConvLayer, ConvLayer)]

        init(_ w: WeightReader, _ prefix: String) throws {
            let count = w.countNumbered(prefix + ".", suffix: "_conv.weight", from: 1)
            units = try (1...max(count, 1)).map { i in
                let first = "\(prefix).\(i)_conv", second = "\(prefix).\(i)_conv_relu_varout_dimred"
                let shape = try w.shape(first + ".weight")
                return (try ConvLayer(w, first, out: shape[0], in: shape[1], kernel: 3, bias: true, activation: .relu),
                        try ConvLayer(w, second, out: shape[0], in: shape[0], kernel: 3))
            }
        }

        func callAsFunction(_ input: Tensor) -> Tensor {
            var x = input
            for (first, second) in units { x = second(first(activate(x, .relu)), adding: x) }
            return x
        }
    }

    /// Chained residual pooling: each block max-pools (5x5, stride 1) and convolves the previous
    /// block's output; the input and every block's output are summed.
    struct CRPBlock {
        let convs: [ConvLayer]

        init(_ w: WeightReader, _ prefix: String) throws {
            let count = w.countNumbered(prefix + ".", suffix: "_outvar_dimred.weight", from: 1)
            convs = try (1...max(count, 1)).map { i in
                let name = "\(prefix).\(i)_outvar_dimred", channels = try w.outChannels(name)
                return try ConvLayer(w, name, out: channels, in: channels, kernel: 3)
            }
        }

        func callAsFunction(_ input: Tensor) -> Tensor {
            var x = input, top = input
            for conv in convs {
                top = conv(maxPool2d(top, kernel: 5, stride: 1, padding: 2))
                x = add(top, x)
            }
            return x
        }
    }

    /// One RefineNet block (k = 1 takes the deepest path): adapt the path, fuse with the coarser
    /// block's output, chained residual pooling, output RCUs, and (except the last) the fusion conv
    /// that prepares its output for the next block.
    struct Path {
        let reduce: ConvLayer
        let adapt: RCUBlock
        let fuse: ConvLayer?
        let pooling: CRPBlock
        let output: RCUBlock
        let outgoing: ConvLayer?

        init(_ w: WeightReader, k: Int) throws {
            func conv3(_ name: String) throws -> ConvLayer {
                let shape = try w.shape(name + ".weight")
                return try ConvLayer(w, name, out: shape[0], in: shape[1], kernel: 3)
            }
            reduce = try conv3("p_ims1d2_outl\(k)_dimred")
            adapt = try RCUBlock(w, "adapt_stage\(k)_b.0")
            fuse = k > 1 ? try conv3("adapt_stage\(k)_b2_joint_varout_dimred") : nil
            pooling = try CRPBlock(w, "mflow_conv_g\(k)_pool.0")
            output = try RCUBlock(w, "mflow_conv_g\(k)_b.0")
            outgoing = k < 4 ? try conv3("mflow_conv_g\(k)_b3_joint_varout_dimred") : nil
        }

        /// `coarser`: the previous block's output after its fusion conv, or nil for the deepest path.
        func callAsFunction(_ features: Tensor, coarser: Tensor?) -> Tensor {
            var x = adapt(reduce(features))
            if let fuse, let coarser {
                let upsampled = resize(coarser, height: x.height, width: x.width, mode: .bilinear(alignCorners: true))
                x = add(fuse(x), upsampled, activation: .relu)
            } else {
                x = activate(x, .relu)
            }
            x = output(pooling(x))
            return outgoing.map { $0(x) } ?? x
        }
    }

    let backbone: ResNet
    let paths: [Path]
    let classifier: ConvLayer
    public let parameterCount: Int

    init(_ w: WeightReader, metadata: ModelMetadata) throws {
        self.metadata = metadata
        backbone = try ResNet(w, prefix: "")
        paths = try (1...4).map { try Path(w, k: $0) }
        classifier = try ConvLayer(w, "clf_conv", out: metadata.numClasses, in: try w.shape("clf_conv.weight")[1],
                                   kernel: 3, bias: true)
        parameterCount = w.parameterCount
    }

    public func predict(_ image: Tensor, outputStride: Int) -> Prediction {
        let stages = backbone.features(image, outputStride: outputStride)
        var x: Tensor? = nil
        for (path, features) in zip(paths, stages.reversed()) { x = path(features, coarser: x) }
        let logits = classifier(x!)
        return Prediction(scores: resize(logits, height: image.height, width: image.width, mode: .bilinear(alignCorners: true)))
    }
}
