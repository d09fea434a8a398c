@testable import SegEngine
import GEMMKernel
import XCTest

/// The engine's matrix product (its AVX-512 kernel, and the OpenBLAS path used without AVX-512)
/// against the textbook triple loop, on shapes that end inside every block of the kernel.
final class GEMMTests: XCTestCase {
    override func tearDown() {
        allocations.forEach { $0.deallocate() }
        allocations = []
    }

    /// Each test starts from the same seed (XCTest makes an instance per test).
    var generator = SeededGenerator(state: 1207)

    var kernels: [Bool] { seg_gemm_supported() != 0 ? [true, false] : [false] }

    /// A context that sends every product to the own kernel (thin ones included) or every one to OpenBLAS.
    func context(ownKernel: Bool) -> EngineContext {
        var kernels = KernelChoices()
        kernels.ownGEMM = ownKernel
        kernels.thinProduct = 0
        return EngineContext(kernels: kernels)
    }

    func randomValues(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &generator) } }

    /// Row-major A as given, or packed into the kernel's panels (kept alive by the test's lifetime).
    func operand(_ a: UnsafePointer<Float>, m: Int, k: Int, packed: Bool) -> GEMM.Operand {
        guard packed else { return .rows(a, ld: k) }
        let rows = Int(seg_gemm_panel_rows())
        let panels = UnsafeMutablePointer<Float>.allocate(capacity: (m + rows - 1) / rows * rows * k)
        seg_gemm_pack_panels(Int32(m), Int32(k), a, k, panels)
        allocations.append(panels)
        return .panels(panels, stride: rows * k)
    }

    var allocations: [UnsafeMutablePointer<Float>] = []

    /// Both kernels on (m, n, k) with bias, residual and ReLU/ReLU6, accumulating onto C or not.
    func testProductsWithEpiloguesMatchTheTripleLoop() {
        // k = 800 and 1100 span two and three depth blocks (even ones: 400, 367), 385 and 513 one and
        // two; n = 1000 three column blocks; m = 13 a partial panel. The last sliver holds 1-3 vectors
        // of 16 columns (n = 101: 5 columns, one vector; 80: 32, two; 1000: 40, three).
        for (m, n, k) in [(8, 48, 1), (13, 101, 37), (16, 1000, 64), (70, 50, 800), (1, 7, 5), (9, 49, 385), (10, 60, 1100),
                          (17, 33, 513), (11, 80, 70)] {
            let a = randomValues(m * k), b = randomValues(k * n), start = randomValues(m * n)
            let bias = randomValues(m), residual = randomValues(m * n)
            for ownKernel in kernels {
                let context = context(ownKernel: ownKernel)
                for (accumulate, activation, packed) in [(false, Activation.identity, false), (true, .relu, false), (false, .relu6, true)] {
                    var c = start
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            bias.withUnsafeBufferPointer { bias in
                                residual.withUnsafeBufferPointer { residual in
                                    GEMM.multiply(in: context, m: m, n: n, k: k, a: operand(a.baseAddress!, m: m, k: k, packed: packed), b: b.baseAddress!, ldb: n,
                                                  c: &c, ldc: n, accumulate: accumulate,
                                                  epilogue: Epilogue(bias: bias.baseAddress!, addend: residual.baseAddress!,
                                                                     activation: activation))
                                }
                            }
                        }
                    }
                    var worst: Float = 0
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum = (accumulate ? start[i * n + j] : 0) + bias[i] + residual[i * n + j]
                            for p in 0..<k { sum += a[i * k + p] * b[p * n + j] }
                            let expected = activation == .relu ? max(sum, 0) : activation == .relu6 ? min(max(sum, 0), 6) : sum
                            worst = max(worst, abs(expected - c[i * n + j]))
                        }
                    }
                    XCTAssertLessThan(worst, 1e-4, "\(m)x\(n)x\(k) own kernel \(ownKernel) accumulate \(accumulate) \(activation) panels \(packed)")
                }
            }
        }
    }

    /// Columns that are a window of an image: B read from a 5-row window of a 9x50 plane, C written
    /// into a window of a 6x40 plane, nothing outside the window touched. 37 columns: vectors of 16
    /// cross a window row's end; 5: one vector spans several rows.
    func testWindowedColumnsReadAndWriteOnlyTheWindow() {
        for cols in [37, 5] { checkWindow(cols: cols) }
    }

    func checkWindow(cols: Int) {
        let m = 11, k = 20, rows = 5
        let inputW = 50, inputPlane = 9 * inputW, outputW = 40, outputPlane = 6 * outputW
        let a = randomValues(m * k), input = randomValues(k * inputPlane), start = randomValues(m * outputPlane)
        let inputOrigin = 2 * inputW + 7, outputOrigin = 1 * outputW + 2
        for ownKernel in kernels {
            let context = context(ownKernel: ownKernel)
            var output = start
            a.withUnsafeBufferPointer { a in
                input.withUnsafeBufferPointer { input in
                    output.withUnsafeMutableBufferPointer { output in
                        GEMM.multiply(in: context, m: m, n: rows * cols, k: k, a: .rows(a.baseAddress!, ld: k), b: input.baseAddress! + inputOrigin,
                                      ldb: inputPlane, c: output.baseAddress! + outputOrigin, ldc: outputPlane,
                                      window: Window(width: cols, inputRow: inputW, outputRow: outputW), accumulate: true)
                    }
                }
            }
            var expected = start
            for i in 0..<m {
                for y in 0..<rows {
                    for x in 0..<cols {
                        var sum: Float = 0
                        for p in 0..<k { sum += a[i * k + p] * input[p * inputPlane + inputOrigin + y * inputW + x] }
                        expected[i * outputPlane + outputOrigin + y * outputW + x] += sum
                    }
                }
            }
            XCTAssertLessThan(zip(output, expected).map { abs($0 - $1) }.max()!, 1e-4, "own kernel \(ownKernel), \(cols) columns")
        }
    }
}
