import COpenBLAS
import Foundation
import GEMMKernel
import VectorKernels

/// What a matrix product does to its result before storing it, fused so the result is touched
/// once: add a value per row (the layer's bias), add a matrix of C's layout (a residual), then
/// an activation the kernel knows (`fuses`).
struct Epilogue {
    var bias: UnsafePointer<Float>?
    var addend: UnsafePointer<Float>?
    var activation: Activation = .identity

    static let none = Epilogue()

    static func fuses(_ activation: Activation) -> Bool {
        switch activation {
        case .identity, .relu, .relu6: true
        default: false
        }
    }

    var isEmpty: Bool { bias == nil && addend == nil && activation == .identity }

    /// The kernel's clamp: 0 for none, else min(max(x, 0), cap).
    var cap: Float {
        switch activation {
        case .relu: .infinity
        case .relu6: 6
        default: 0
        }
    }
}

/// Columns of B and C that are a window of an image: column n lies at `(n / width) * inputRow + n % width`
/// in B and `(n / width) * outputRow + n % width` in C (see seg_positions).
struct Window {
    var width: Int
    var inputRow: Int
    var outputRow: Int

    func offset(_ n: Int, row: Int) -> Int { n / width * row + n % width }

    /// Whole rows in both B and C (a tap that reaches every column): plain columns.
    var isContiguous: Bool { width == inputRow && width == outputRow }

    /// The window as the C kernels take it.
    var positions: seg_positions { seg_positions(width: Int32(width), b_row: inputRow, c_row: outputRow) }
}

/// Single-threaded matrix products for the kernels (which split the work between threads
/// themselves): the engine's AVX-512 kernel where the CPU has it, OpenBLAS otherwise.
enum GEMM {
    /// The weights operand: a row-major matrix, or the kernel's packed panels (see seg_sgemm).
    enum Operand {
        case rows(UnsafePointer<Float>, ld: Int)
        case panels(UnsafePointer<Float>, stride: Int)
    }

    /// Rows per panel of packed weights (see seg_gemm_pack_panels).
    static let panelRows = Int(seg_gemm_panel_rows())

    /// Columns of B the kernel packs and multiplies as one block, in one tile of C (a sliver), and
    /// in one vector: a product's columns cost whole vectors.
    static let blockColumns = Int(seg_gemm_block_columns())
    static let sliverColumns = Int(seg_gemm_sliver_columns())
    static let vectorColumns = Int(seg_gemm_vector_columns())

    /// `rows` rounded up to whole panels: the rows packed weights occupy.
    static func panelled(_ rows: Int) -> Int { (rows + panelRows - 1) / panelRows * panelRows }

    /// Where element (row, column) of packed panels lies, panels `stride` floats apart.
    static func panelIndex(row: Int, column: Int, stride: Int) -> Int {
        row / panelRows * stride + column * panelRows + row % panelRows
    }

    /// Row-major `C = epilogue((accumulate ? C : 0) + A x B)`, A m x k, B k x n, C m x n, with leading
    /// dimensions; the columns of B and C are a `window` of an image when one is given; `epilogue.addend`
    /// has C's layout. `context` gives the kernel choice (`KernelChoices.ownGEMM`, `thinProduct`) and scratch.
    static func multiply(in context: EngineContext, m: Int, n: Int, k: Int, a: Operand, b: UnsafePointer<Float>,
                         ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, window: Window? = nil, accumulate: Bool = false,
                         epilogue: Epilogue = .none) {
        guard m > 0 && n > 0 else { return }
        let window = window.flatMap { $0.isContiguous ? nil : $0 }  // whole rows: plain columns on both paths
        precondition(Epilogue.fuses(epilogue.activation), "the product cannot fuse \(epilogue.activation)")
        let thin = context.kernels.thinProduct
        let isThin = m < thin || k < thin || m * k < 2 * thin * thin
        let useOwnKernel = context.kernels.ownGEMM && (window != nil || !epilogue.isEmpty || !isThin)
        if case .panels(let base, let stride) = a, !useOwnKernel {  // OpenBLAS reads rows: unpack them
            context.withScratch(m * k) { rows in
                for r in 0..<m {
                    for j in 0..<k { rows[r * k + j] = base[panelIndex(row: r, column: j, stride: stride)] }
                }
                multiplyByOpenBLAS(in: context, m: m, n: n, k: k, a: rows, lda: k, b: b, ldb: ldb, c: c, ldc: ldc,
                                   window: window, accumulate: accumulate, epilogue: epilogue)
            }
            return
        }
        let (weights, lda, panelStride): (UnsafePointer<Float>, Int, Int)
        switch a {
        case .rows(let pointer, let ld): (weights, lda, panelStride) = (pointer, ld, 0)
        case .panels(let pointer, let stride): (weights, lda, panelStride) = (pointer, 0, stride)
        }
        if useOwnKernel {
            context.withScratch(seg_gemm_scratch_floats()) { scratch in
                func run(_ positions: UnsafePointer<seg_positions>?) {
                    seg_sgemm(Int32(m), Int32(n), Int32(k), weights, lda, panelStride, b, ldb, c, ldc, positions, accumulate ? 1 : 0,
                              epilogue.bias, epilogue.addend, epilogue.cap, scratch)
                }
                if let window {
                    var positions = window.positions
                    run(&positions)
                } else {
                    run(nil)
                }
            }
            return
        }
        multiplyByOpenBLAS(in: context, m: m, n: n, k: k, a: weights, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                           window: window, accumulate: accumulate, epilogue: epilogue)
    }

    /// The same product through OpenBLAS, which reads plain matrices; the epilogue follows in a pass.
    private static func multiplyByOpenBLAS(in context: EngineContext, m: Int, n: Int, k: Int,
                                           a weights: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                           window: Window?, accumulate: Bool, epilogue: Epilogue) {
        guard let window else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, weights, Int32(lda), b,
                        Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
            if !epilogue.isEmpty {
                seg_epilogue_rows(c, ldc, Int32(m), Int32(n), epilogue.bias, epilogue.addend, epilogue.cap)
            }
            return
        }
        // OpenBLAS takes plain matrices: copy the window of B out, multiply, add the product into
        // C's window, in chunks of whole window rows (about 512 columns): scratch that does not grow
        // with the product, which the memory estimate, extrapolated from small probe passes, needs.
        let chunkColumns = max(1, 512 / window.width) * window.width
        context.withScratch(k * chunkColumns) { columns in
            context.withScratch(m * chunkColumns) { product in
                for first in stride(from: 0, to: n, by: chunkColumns) {
                    let count = min(chunkColumns, n - first)
                    /// Each run of the chunk's columns that is contiguous in the window: (column, length).
                    let runs = stride(from: 0, to: count, by: window.width).map { ($0, min(window.width, count - $0)) }
                    for row in 0..<k {
                        for (i, length) in runs {
                            (columns + row * count + i).update(
                                from: b + row * ldb + window.offset(first + i, row: window.inputRow), count: length)
                        }
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(count), Int32(k), 1, weights,
                                Int32(lda), columns, Int32(count), 0, product, Int32(count))
                    for row in 0..<m {
                        for (i, length) in runs {
                            let target = c + row * ldc + window.offset(first + i, row: window.outputRow)
                            let source = product + row * count + i
                            for j in 0..<length { target[j] = source[j] + (accumulate ? target[j] : 0) }
                        }
                    }
                }
            }
        }
        applyEpilogue(epilogue, m: m, n: n, c: c, ldc: ldc) { window.offset($0, row: window.outputRow) }
    }

    /// Bias, addend and ReLU on C's m x n columns, column i at `column(i)` in its row.
    private static func applyEpilogue(_ epilogue: Epilogue, m: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                      column: (Int) -> Int) {
        guard epilogue.bias != nil || epilogue.addend != nil || epilogue.activation != .identity else { return }
        for row in 0..<m {
            let shift = epilogue.bias?[row] ?? 0
            for i in 0..<n {
                let at = row * ldc + column(i)
                let v = c[at] + shift + (epilogue.addend?[at] ?? 0)
                c[at] = epilogue.cap > 0 ? min(max(v, 0), epilogue.cap) : v
            }
        }
    }
}
