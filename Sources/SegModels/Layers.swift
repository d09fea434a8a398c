import SegEngine

/// Reads layers out of a model file under their PyTorch state_dict names, checking every shape.
struct WeightReader {
    let file: SafeTensorsFile

    func tensor(_ name: String, _ shape: [Int]) throws -> [Float] { try file.floats(name, shape: shape) }

    /// BatchNorm as the affine map `scale*x + shift` that gets folded into the convolution before it.
    func batchNorm(_ prefix: String, channels: Int, epsilon: Float = 1e-5) throws -> (scale: [Float], shift: [Float]) {
        let gamma = try tensor(prefix + ".weight", [channels])
        let beta = try tensor(prefix + ".bias", [channels])
        let mean = try tensor(prefix + ".running_mean", [channels])
        let variance = try tensor(prefix + ".running_var", [channels])
        let scale = (0..<channels).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { beta[$0] - mean[$0] * scale[$0] }
        return (scale, shift)
    }

    /// A convolution `name` (OIHW weight, optional bias), with the BatchNorm `batchNorm` folded in.
    func conv(_ name: String, out: Int, in inChannels: Int, kernel: Int, groups: Int = 1, bias: Bool = false,
              batchNorm: String? = nil) throws -> ConvWeights {
        let weights = try tensor(name + ".weight", [out, inChannels / groups, kernel, kernel])
        let biasValues = bias ? try tensor(name + ".bias", [out]) : nil
        let norm = try batchNorm.map { try self.batchNorm($0, channels: out) }
        return ConvWeights(outChannels: out, inChannels: inChannels, kernelH: kernel, kernelW: kernel, groups: groups,
                           weights: weights, bias: biasValues, scale: norm?.scale, shift: norm?.shift)
    }
}
