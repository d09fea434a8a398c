import SegEngine

/// Reads layers out of a model file under their PyTorch state_dict names, checking every shape, and
/// counts the weights of the layers it made.
final class WeightReader {
    let file: SafeTensorsFile
    /// int8: the convolutions the file has int8 scales for run in int8.
    let precision: Precision
    /// Every convolution made so far, in order (what `ModelQuantizer` calibrates).
    private(set) var layers: [ConvLayer] = []
    /// Weight values (after BatchNorm folding) of every convolution and linear layer read so far.
    private(set) var parameterCount = 0
    /// The names of the tensors read so far: a checkpoint's others do not belong to the architecture.
    private(set) var read: Set<String> = []

    init(file: SafeTensorsFile, precision: Precision = .fp32) {
        self.file = file
        self.precision = precision
    }

    func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
        read.insert(name)
        return try file.floats(name, shape: shape)
    }

    func contains(_ name: String) -> Bool { file.entries[name] != nil }

    /// The shape a tensor is stored with; architectures read their widths from it, so that files of
    /// any width (narrow bundled models, full-size released ones) load without extra metadata.
    func shape(_ name: String) throws -> [Int] {
        guard let entry = file.entries[name] else { throw SafeTensorsError.missingTensor(name) }
        return entry.shape
    }

    /// Output channels of the convolution or linear layer `name` (its weight's first dimension).
    func outChannels(_ name: String) throws -> Int { try shape(name + ".weight")[0] }

    /// How many consecutive numbers i, starting at `from`, have a tensor `<prefix>i<suffix>`.
    func countNumbered(_ prefix: String, suffix: String, from first: Int = 0) -> Int {
        var n = 0
        while contains("\(prefix)\(first + n)\(suffix)") { n += 1 }
        return n
    }

    /// BatchNorm as the affine map `scale*x + shift` that gets folded into the convolution before it.
    func batchNorm(_ prefix: String, channels: Int, epsilon: Float = 1e-5) throws -> (scale: [Float], shift: [Float]) {
        let gamma = try tensor(prefix + ".weight", [channels])
        let beta = try tensor(prefix + ".bias", [channels])
        let mean = try tensor(prefix + ".running_mean", [channels])
        let variance = try tensor(prefix + ".running_var", [channels])
        if let index = variance.firstIndex(where: { !($0 + epsilon > 0) }) {
            throw SafeTensorsError.outOfRange(name: prefix + ".running_var", index: index, value: variance[index],
                                              expected: "a variance must be at least 0")
        }
        let scale = (0..<channels).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { beta[$0] - mean[$0] * scale[$0] }
        return (scale, shift)
    }

    /// A convolution `name` (OIHW weight, optional bias), with the BatchNorm `batchNorm` folded in.
    /// `inputScale` multiplies the weights (a constant scaling of the input folded in: FCN-8s at-once).
    func conv(_ name: String, out: Int, in inChannels: Int, kernel: Int, groups: Int = 1, bias: Bool = false,
              batchNorm: String? = nil, inputScale: Float = 1) throws -> ConvWeights {
        var weights = try tensor(name + ".weight", [out, inChannels / groups, kernel, kernel])
        if inputScale != 1 { weights = weights.map { $0 * inputScale } }
        let biasValues = bias ? try tensor(name + ".bias", [out]) : nil
        let norm = try batchNorm.map { try self.batchNorm($0, channels: out) }
        return counted(ConvWeights(outChannels: out, inChannels: inChannels, kernelH: kernel, kernelW: kernel,
                                   groups: groups, weights: weights, bias: biasValues, scale: norm?.scale,
                                   shift: norm?.shift))
    }

    /// A PyTorch `nn.Linear` (`[out][in]` weight and a bias) as the 1x1 convolution it is on a Cx1x1 tensor.
    func linear(_ name: String, out: Int, in inChannels: Int) throws -> ConvWeights {
        counted(ConvWeights(outChannels: out, inChannels: inChannels, kernelH: 1, kernelW: 1,
                            weights: try tensor(name + ".weight", [out, inChannels]),
                            bias: try tensor(name + ".bias", [out])))
    }

    /// The int8 form of convolution `name`, when running in int8 and the file has its scales
    /// (`<name>.int8_input`: the input's scale and zero point; `<name>.int8_weight_scale`: one per
    /// output channel).
    func int8(_ name: String, _ weights: ConvWeights) throws -> Int8ConvWeights? {
        let inputName = name + Int8Names.input, scalesName = name + Int8Names.weightScale
        guard precision == .int8, contains(inputName) else { return nil }
        let input = try tensor(inputName, [2])
        // Scales whose products and inverses stay normal floats: a tiny one made the inverse infinite.
        func usable(_ scale: Float) -> Bool { scale > 0 && scale.isNormal && (1 / scale).isNormal }
        guard usable(input[0]) else {
            throw SafeTensorsError.outOfRange(name: inputName, index: 0, value: input[0],
                                              expected: "the input scale must be a positive normal float")
        }
        guard (0...255).contains(input[1]) && input[1] == input[1].rounded() else {
            throw SafeTensorsError.outOfRange(name: inputName, index: 1, value: input[1],
                                              expected: "the zero point must be a whole number of 0 to 255")
        }
        let scales = try tensor(scalesName, [weights.outChannels])
        if let index = scales.firstIndex(where: { !usable($0) || !usable($0 * input[0]) }) {
            throw SafeTensorsError.outOfRange(name: scalesName, index: index, value: scales[index],
                                              expected: "a weight scale must be a positive normal float")
        }
        guard weights.groups == 1 && !weights.isDepthwise else {
            throw SafeTensorsError.outOfRange(name: inputName, index: 0, value: input[0],
                                              expected: "int8 scales only for a dense convolution")
        }
        return Int8ConvWeights(weights, weightScales: scales, input: ActivationQuantization(scale: input[0],
                                                                                             zeroPoint: Int(input[1])))
    }

    func register(_ layer: ConvLayer) { layers.append(layer) }

    private func counted(_ weights: ConvWeights) -> ConvWeights {
        parameterCount += weights.parameterCount
        return weights
    }
}

/// The tensors `segview quantize` adds for a convolution, after its state_dict name.
enum Int8Names {
    static let input = ".int8_input"
    static let weightScale = ".int8_weight_scale"
}

/// A convolution with its BatchNorm folded in and the activation after it, read once from the file
/// under its state_dict name: torchvision's `Conv2dNormActivation` as one unit that owns its weights,
/// kernel, padding and activation. Padding is "same" (the size kept at stride 1) unless given.
/// Stride and dilation are the layer's own, or those a call passes where the output stride chosen at
/// run time decides them (the dilated stages of a backbone).
final class ConvLayer {
    let name: String
    let weights: ConvWeights
    let stride: Int
    let dilation: Int
    let padding: Int?
    let activation: Activation
    /// The int8 form, where the model runs in int8 (set at load, or by `ModelQuantizer` before any pass).
    var int8: Int8ConvWeights?

    var inChannels: Int { weights.inChannels }
    var outChannels: Int { weights.outChannels }

    init(_ w: WeightReader, _ name: String, out: Int, in inChannels: Int, kernel: Int, stride: Int = 1,
         dilation: Int = 1, padding: Int? = nil, groups: Int = 1, bias: Bool = false, batchNorm: String? = nil,
         activation: Activation = .identity, inputScale: Float = 1) throws {
        self.name = name
        weights = try w.conv(name, out: out, in: inChannels, kernel: kernel, groups: groups, bias: bias,
                             batchNorm: batchNorm, inputScale: inputScale)
        self.stride = stride
        self.dilation = dilation
        self.padding = padding
        self.activation = activation
        int8 = try w.int8(name, weights)
        w.register(self)
    }

    /// A PyTorch `nn.Linear` and its activation, on Cx1x1 tensors.
    init(_ w: WeightReader, linear name: String, out: Int, in inChannels: Int, activation: Activation) throws {
        self.name = name
        weights = try w.linear(name, out: out, in: inChannels)
        (stride, dilation, padding) = (1, 1, 0)
        self.activation = activation
        int8 = try w.int8(name, weights)
        w.register(self)
    }

    /// `activation(conv(x) + residual)`; the output is watched for non-finite values when the context asks.
    func callAsFunction(_ x: Tensor, stride: Int? = nil, dilation: Int? = nil, padding: Int? = nil,
                        adding residual: Tensor? = nil) -> Tensor {
        let dilation = dilation ?? self.dilation
        let geometry = ConvGeometry(stride: stride ?? self.stride,
                                    padding: padding ?? self.padding ?? dilation * (weights.kernelH - 1) / 2,
                                    dilation: dilation)
        let context = x.context
        guard let int8 else {
            if context.calibration?.stage == .ranges { context.calibration?.observe(name, input: x) }
            return context.watch(conv2d(x, weights, geometry, activation: activation, adding: residual), name)
        }
        let output = conv2d(x, int8, geometry, activation: activation, adding: residual)
        guard let calibration = context.calibration, calibration.stage == .errors else {
            return context.watch(output, name)
        }
        // Each layer judged alone: its int8 output against its float32 one, the float32 one passed on.
        let exact = conv2d(x, weights, geometry, activation: activation, adding: residual)
        calibration.compare(name, int8: output, float32: exact)
        return context.watch(exact, name)
    }
}
