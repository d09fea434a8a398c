import ArgumentParser
import SegEngine

@main
struct Segview: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segview",
        abstract: "Semantic segmentation in the terminal: FCN, DeepLabV3 and friends on the CPU.",
        subcommands: [View.self, Predict.self, Eval.self, Bench.self, BenchView.self, Info.self],
        defaultSubcommand: View.self)
}

/// Options every command that runs a network shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    func apply() {
        if let threads { Parallel.setThreads(threads) } else { Parallel.setThreads(Parallel.threads) }
    }
}
