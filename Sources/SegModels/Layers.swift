import SegEngine

/// Reads layers out of a model file under their PyTorch state_dict names, checking every shape.
struct WeightReader {
    let file: SafeTensorsFile

    func tensor(_ name: String, _ shape: [Int]) throws -> [Float] { try file.floats(name, shape: shape) }

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
        return ConvWeights(outChannels: out, inChannels: inChannels, kernelH: kernel, kernelW: kernel, groups: groups,
                           weights: weights, bias: biasValues, scale: norm?.scale, shift: norm?.shift)
    }

    /// A PyTorch `nn.Linear` (`[out][in]` weight and a bias) as the 1x1 convolution it is on a Cx1x1 tensor.
    func linear(_ name: String, out: Int, in inChannels: Int) throws -> ConvWeights {
        ConvWeights(outChannels: out, inChannels: inChannels, kernelH: 1, kernelW: 1,
                    weights: try tensor(name + ".weight", [out, inChannels]), bias: try tensor(name + ".bias", [out]))
    }
}
