@testable import SegEngine
import GEMMKernel
import XCTest

/// Specialised kernels against the general kernel they replace, on random shapes (the general ones are
/// checked against PyTorch in KernelFixtureTests).
final class FastPathTests: XCTestCase {
    /// The default kernel choices, profiled so that a test sees which kernel ran.
    let context = EngineContext(profile: Profile())
    /// Each test starts from the same seed (XCTest makes an instance per test).
    var generator = SeededGenerator(state: 1207)

    /// A context whose kernel choices `change` makes.
    func engine(_ change: (inout KernelChoices) -> Void) -> EngineContext {
        var kernels = KernelChoices()
        change(&kernels)
        return EngineContext(kernels: kernels, profile: Profile())
    }

    func randomValues(_ count: Int, in range: ClosedRange<Float>) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &generator) }
    }

    func random(_ c: Int, _ h: Int, _ w: Int, in context: EngineContext? = nil) -> Tensor {
        Tensor(channels: c, height: h, width: w, values: randomValues(c * h * w, in: -2...2),
               in: context ?? self.context)
    }

    /// A dense conv's weights and bias, random.
    func randomWeights(_ cin: Int, _ cout: Int, kernel: Int = 3) -> ConvWeights {
        ConvWeights(outChannels: cout, inChannels: cin, kernelH: kernel, kernelW: kernel,
                    weights: randomValues(cout * cin * kernel * kernel, in: -0.5...0.5),
                    bias: randomValues(cout, in: -1...1))
    }

    func testDiagonalTransposedConvEqualsTheFullProduct() {
        // The last case needs two tiles of input positions (16 x 256 rows of columns), the second
        // starting inside a row.
        for (channels, kernel, stride, padding, h, w) in [(3, 4, 2, 0, 5, 7), (5, 16, 8, 0, 3, 4), (2, 3, 3, 1, 6, 5), (4, 64, 32, 0, 2, 3),
                                                          (16, 16, 8, 4, 50, 47)] {
            var values = [Float](repeating: 0, count: channels * channels * kernel * kernel)
            for c in 0..<channels {
                for t in 0..<kernel * kernel {
                    values[(c * channels + c) * kernel * kernel + t] = Float.random(in: -1...1, using: &generator)
                }
            }
            let weights = TransposedConvWeights(inChannels: channels, outChannels: channels, kernelH: kernel, kernelW: kernel,
                                                weights: values)
            XCTAssertTrue(weights.isDiagonal)
            let x = random(channels, h, w)
            let geometry = ConvGeometry(stride: stride, padding: padding)
            let fast = diagonalTransposedConv(x, weights, geometry).toArray()
            let full = unfoldedTransposedConv(x, weights, geometry).toArray()
            XCTAssertEqual(fast.count, full.count)
            XCTAssertLessThan(zip(fast, full).map { abs($0 - $1) }.max()!, 1e-5, "k\(kernel) s\(stride) p\(padding)")
        }
        let mixed = TransposedConvWeights(inChannels: 2, outChannels: 2, kernelH: 1, kernelW: 1, weights: [1, 0.5, 0, 1])
        XCTAssertFalse(mixed.isDiagonal, "an off-diagonal tap means the full product")
    }

    func testWinogradEqualsIm2colOnRandomShapes() {
        let noWinograd = engine { $0.winograd = false }
        // The activations the transform fuses (ReLU, ReLU6, none) and one it leaves to a pass.
        let activations: [Activation] = [.relu, .relu6, .identity, .hardswish, .relu, .sigmoid]
        for (index, (cin, cout, h, w, dilation, padding)) in [(8, 8, 8, 8, 1, 1), (16, 24, 13, 17, 1, 1), (9, 11, 37, 29, 2, 2),
                                                              (12, 8, 40, 33, 4, 4), (8, 16, 21, 19, 1, 0),
                                                              (10, 8, 30, 31, 3, 1)].enumerated() {
            let activation = activations[index]
            let x = random(cin, h, w)
            let weights = randomWeights(cin, cout)
            let geometry = ConvGeometry(padding: padding, dilation: dilation)
            var fast: [Float] = []
            XCTAssertEqual(kernels(context) { fast = conv2d(x, weights, geometry, activation: activation).toArray() },
                           ["conv 3x3 winograd"], "\(h)x\(w) d\(dilation)")
            let reference = conv2d(x.copy(to: noWinograd), weights, geometry, activation: activation).toArray()
            // Winograd's rounding error scales with the convolution's values before the activation
            // (ReLU6 and sigmoid clamp the output far below them).
            let scale = conv2d(x, weights, geometry).toArray().map(abs).max()!
            XCTAssertLessThan(zip(fast, reference).map { abs($0 - $1) }.max()! / scale, 1e-5,
                              "\(cin)->\(cout) \(h)x\(w) d\(dilation) p\(padding) \(activation)")
        }
    }

    /// Winograd's multiplies against the direct convolution's: whole 4x4 tiles over each phase grid.
    func testWinogradTakesTheConvolutionsWhereItsTilesCostLessThanTheInBoundsTaps() {
        XCTAssertEqual(Winograd.multiplyShare(outH: 8, outW: 8, dilation: 1), 0.25, accuracy: 1e-9)  // 4 tiles x 36 / (9 x 64)
        // Rate 12 on 45x60: 144 phase grids of 3-4 x 5, two tiles each, against 9 x 2700 multiplies.
        XCTAssertEqual(Winograd.multiplyShare(outH: 45, outW: 60, dilation: 12), 288.0 * 36 / (9 * 2700), accuracy: 1e-9)
        let weights = randomWeights(40, 8)
        var used: [Int: Set<String>] = [:]
        for rate in [1, 12, 24] {
            let x = random(40, 45, 60)
            used[rate] = kernels(context) { _ = conv2d(x, weights, ConvGeometry(padding: rate, dilation: rate)) }
        }
        XCTAssertEqual(used[1], ["conv 3x3 winograd"])
        XCTAssertEqual(used[12], ["conv 3x3 winograd"], "0.43 of the direct multiplies against 0.71 in bounds")
        XCTAssertEqual(used[24], ["conv 3x3 tapwise"], "0.85 against 0.47 in bounds")
    }

    func testDepthwiseFusesEveryActivationLikeASeparatePass() {
        let x = random(6, 11, 13)
        let weights = ConvWeights(outChannels: 6, inChannels: 6, kernelH: 3, kernelW: 3, groups: 6,
                                  weights: randomValues(6 * 9, in: -1...1),
                                  bias: randomValues(6, in: -1...1))
        for geometry in [ConvGeometry.same(kernel: 3), ConvGeometry(stride: 2, padding: 1, dilation: 2)] {
            let plain = conv2d(x, weights, geometry)
            for activation in Activation.allCases {
                let fused = conv2d(x, weights, geometry, activation: activation).toArray()
                let separate = activate(plain, activation).toArray()
                XCTAssertLessThan(zip(fused, separate).map { abs($0 - $1) }.max()!, 1e-6, "\(activation) \(geometry)")
            }
        }
    }

    func testDepthwiseEqualsTheDenseConvWithADiagonalFilter() {
        let channels = 3
        let filters = randomValues(channels * 9, in: -1...1)
        let bias = randomValues(channels, in: -1...1)
        let depthwise = ConvWeights(outChannels: channels, inChannels: channels, kernelH: 3, kernelW: 3, groups: channels,
                                    weights: filters, bias: bias)
        // The same filters as a dense conv (zero across channels): the matrix-product paths compute it.
        var diagonal = [Float](repeating: 0, count: channels * channels * 9)
        for c in 0..<channels { for t in 0..<9 { diagonal[(c * channels + c) * 9 + t] = filters[c * 9 + t] } }
        let dense = ConvWeights(outChannels: channels, inChannels: channels, kernelH: 3, kernelW: 3, weights: diagonal, bias: bias)
        // Widths past a vector (the interior of a row), odd sizes, both strides, dilation and no padding;
        // small planes at stride 1 go through a bordered copy, the 90x100 ones row by row.
        for (h, w, stride, padding, dilation) in [(7, 45, 1, 1, 1), (9, 50, 2, 1, 1), (12, 37, 1, 2, 2), (11, 67, 2, 2, 2),
                                                  (5, 6, 2, 0, 1), (8, 33, 1, 0, 1), (4, 4, 1, 4, 4), (32, 32, 1, 2, 2),
                                                  (6, 9, 1, 3, 1), (10, 12, 1, 0, 2), (90, 100, 1, 1, 1),
                                                  (90, 100, 1, 2, 2)] {
            let x = random(channels, h, w)
            let geometry = ConvGeometry(stride: stride, padding: padding, dilation: dilation)
            let fast = conv2d(x, depthwise, geometry, activation: .relu6).toArray()
            let reference = conv2d(x, dense, geometry, activation: .relu6).toArray()
            XCTAssertEqual(fast.count, reference.count)
            XCTAssertLessThan(zip(fast, reference).map { abs($0 - $1) }.max()!, 1e-5, "\(h)x\(w) \(geometry)")
        }
    }

    func testWinogradInBlocksOfInputChannelsEqualsOneBlock() {
        let (cin, cout) = (14, 21)
        let x = random(cin, 19, 23)
        let weights = randomWeights(cin, cout)
        let geometry = ConvGeometry(padding: 1)
        let whole = conv2d(x, weights, geometry, activation: .relu).toArray()
        XCTAssertGreaterThan(whole.filter { $0 > 0 }.count, whole.count / 4, "the test sees real outputs")
        // Room for the filters of 6 input channels: blocks of 5, 5 and 4, whose products add up in M;
        // then also chunks of 16 tiles (of 30), each block's filters transformed again per chunk.
        for chunked in [false, true] {
            let blocks = engine {
                $0.winogradMinimumBlock = 1
                $0.winogradFilterBudget = Winograd.points * GEMM.panelled(cout) * 6
                if chunked { $0.winogradTileBudget = 1 }
            }
            let blocked = conv2d(x.copy(to: blocks), weights, geometry, activation: .relu).toArray()
            // The blocks' sums come in another order: rounding differs, a lost or doubled block would not.
            XCTAssertLessThan(zip(whole, blocked).map { abs($0 - $1) }.max()!, 1e-4, "chunked \(chunked)")
        }
    }

    /// A 1x1 conv with padding writes the products into the output's interior and the activated
    /// bias around it: the same as the conv of the padded copy. Maps of several tiles of rows, and
    /// an activation the products cannot fuse.
    func testPaddedPointwiseConvEqualsTheConvOfThePaddedInput() {
        for (cin, cout, h, w, padding, activation) in [(70, 20, 13, 11, 1, Activation.relu6), (33, 9, 40, 25, 2, .hardswish),
                                                       (8, 70, 3, 200, 3, .identity)] {
            let x = random(cin, h, w)
            let weights = randomWeights(cin, cout, kernel: 1)
            let padded = conv2d(x, weights, ConvGeometry(padding: padding), activation: activation)
            let reference = conv2d(pad(x, top: padding, bottom: padding, left: padding, right: padding), weights,
                                   activation: activation)
            XCTAssertEqual(padded.shape, reference.shape)
            let (a, b) = (padded.toArray(), reference.toArray())
            XCTAssertGreaterThan(Set(b).count, b.count / 5, "the test sees varied outputs")
            XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-5, "\(cin)->\(cout) \(h)x\(w) pad \(padding) \(activation)")
        }
    }

    func testWinogradInChunksOfTilesEqualsOneChunk() {
        let chunks = engine { $0.winogradTileBudget = 1 }
        let (cin, cout) = (10, 12)
        let x = random(cin, 37, 45)
        let weights = randomWeights(cin, cout)
        for geometry in [ConvGeometry(padding: 1), ConvGeometry(padding: 2, dilation: 2), ConvGeometry(padding: 0)] {
            let whole = conv2d(x, weights, geometry, activation: .relu).toArray()
            // Chunks of at most 16 tiles: each chunk frames its own part of the input.
            let chunked = conv2d(x.copy(to: chunks), weights, geometry, activation: .relu).toArray()
            XCTAssertGreaterThan(whole.filter { $0 > 0 }.count, whole.count / 4, "the test sees real outputs")
            // Relative: OpenBLAS (CPUs without AVX-512) sums a product of other widths in another order.
            let error = zip(whole, chunked).map { abs($0 - $1) / max(1, abs($0)) }.max()!
            XCTAssertLessThan(error, 1e-4, "\(geometry)")
        }
    }

    /// The kernel kinds one call ran in `context`, from its profile.
    func kernels(_ context: EngineContext, _ body: () -> Void) -> Set<String> {
        context.profile!.reset()
        body()
        return Set(context.profile!.entries.keys)
    }

    func testTapwiseEqualsIm2colWhereMostTapsReadPadding() {
        for ownKernel in [true, false] where !ownKernel || seg_gemm_supported() != 0 {
            let tapwise = engine { $0.ownGEMM = ownKernel; $0.winogradAdvantage = 0 }  // Winograd never: tapwise
            let im2col = engine { $0.ownGEMM = ownKernel; $0.winogradAdvantage = 0; $0.tapwise = false }
            for (cin, cout, h, w, kernel, dilation, padding) in [(32, 20, 9, 11, 3, 6, 6), (40, 8, 7, 13, 3, 4, 4),
                                                                 (33, 16, 5, 5, 3, 12, 12), (36, 9, 10, 8, 5, 3, 6),
                                                                 (48, 70, 23, 61, 3, 12, 12), (32, 17, 41, 30, 3, 12, 12),
                                                                 (32, 64, 6, 9, 3, 2, 2)] {
                let x = random(cin, h, w, in: tapwise)
                let weights = randomWeights(cin, cout, kernel: kernel)
                let geometry = ConvGeometry(padding: padding, dilation: dilation)
                var fast: [Float] = []
                let used = kernels(tapwise) { fast = conv2d(x, weights, geometry, activation: .relu).toArray() }
                XCTAssertEqual(used, ["conv \(kernel)x\(kernel) tapwise"])
                var reference: [Float] = []
                XCTAssertEqual(kernels(im2col) {
                    reference = conv2d(x.copy(to: im2col), weights, geometry, activation: .relu).toArray()
                }, ["conv \(kernel)x\(kernel) im2col"])
                let scale = reference.map(abs).max()!
                XCTAssertLessThan(zip(fast, reference).map { abs($0 - $1) }.max()! / scale, 1e-5,
                                  "k\(kernel) d\(dilation) p\(padding) on \(h)x\(w), own kernel \(ownKernel)")
            }
        }
    }

    /// The tiles threads take of a product's columns: the positions in order, whole granules but the
    /// last, at most `limit`, as many as a multiple of the threads where there are granules enough,
    /// and even (a 32x32 map once went as 288 + 288 + 288 + 160 columns, one thread doing 576).
    func testTilesSplitThePositionsEvenly() {
        XCTAssertEqual(tiles(1024, limit: 480, granule: 16, threads: 2).map(\.count), [256, 256, 256, 256])
        XCTAssertEqual(tiles(1024, limit: 480, granule: 48, threads: 2).map(\.count), [240, 288, 240, 256])
        for positions in [1, 15, 16, 17, 100, 1000, 1024, 4096, 16384, 20000] {
            for granule in [1, 16, 48] {
                for limit in [granule, 5 * granule, 480, 1000] {
                    for threads in [1, 2, 3, 8] {
                        let work = tiles(positions, limit: limit, granule: granule, threads: threads)
                        let label = "\(positions) positions, limit \(limit), granule \(granule), \(threads) threads"
                        XCTAssertEqual(work.first?.start, 0, label)
                        XCTAssertTrue(zip(work, work.dropFirst()).allSatisfy { $0.start + $0.count == $1.start }, label)
                        XCTAssertEqual(work.last.map { $0.start + $0.count }, positions, label)
                        XCTAssertTrue(work.allSatisfy { $0.count > 0 && $0.count <= limit }, label)
                        XCTAssertTrue(work.dropLast().allSatisfy { $0.count % granule == 0 }, label)
                        let granules = (positions + granule - 1) / granule
                        let perTile = limit / granule
                        let wanted = ((granules + perTile - 1) / perTile + threads - 1) / threads * threads
                        XCTAssertEqual(work.count, min(granules, wanted), label)
                        let shares = work.map { ($0.count + granule - 1) / granule }  // the last's counted whole
                        XCTAssertLessThanOrEqual(shares.max()! - shares.min()!, 1, label)
                    }
                }
            }
        }
    }

    func testIm2colInTilesEqualsTheDirectSum() {
        // Strided (so im2col), several tiles a thread each: a tile ends inside an output row, taps
        // that read only padding are left out of the product (dilation 5 on a small map), and an
        // activation the product cannot fuse follows tile by tile.
        for (cin, cout, h, w, kernel, geometry, activation) in [
            (6, 10, 41, 57, 3, ConvGeometry(stride: 2, padding: 5, dilation: 5), Activation.relu6),
            (3, 8, 97, 131, 7, ConvGeometry(stride: 2, padding: 3), .relu),
            (40, 12, 30, 34, 3, ConvGeometry(stride: 2, padding: 1), .sigmoid),
            (5, 7, 9, 11, 3, ConvGeometry(stride: 3, padding: 9, dilation: 9), .identity),
        ] {
            let x = random(cin, h, w)
            let values = randomValues(cout * cin * kernel * kernel, in: -0.5...0.5)
            let bias = randomValues(cout, in: -1...1)
            let weights = ConvWeights(outChannels: cout, inChannels: cin, kernelH: kernel, kernelW: kernel, weights: values, bias: bias)
            var out: Tensor?
            let used = kernels(context) { out = conv2d(x, weights, geometry, activation: activation) }
            XCTAssertEqual(used, ["conv \(kernel)x\(kernel) im2col"])
            let y = out!
            var worst: Float = 0
            for o in 0..<cout {
                for oy in 0..<y.height {
                    for ox in 0..<y.width {
                        var sum = Double(bias[o])
                        for i in 0..<cin {
                            for ky in 0..<kernel {
                                for kx in 0..<kernel {
                                    let iy = oy * geometry.stride - geometry.padding + ky * geometry.dilation
                                    let ix = ox * geometry.stride - geometry.padding + kx * geometry.dilation
                                    guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                    sum += Double(values[((o * cin + i) * kernel + ky) * kernel + kx]) * Double(x[i, iy, ix])
                                }
                            }
                        }
                        let expected = Tensor(channels: 1, height: 1, width: 1, values: [Float(sum)], in: context)
                        let activated = activate(expected, activation)[0, 0, 0]
                        worst = max(worst, abs(y[o, oy, ox] - activated))
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-4, "k\(kernel) \(geometry) on \(h)x\(w)")
        }
    }

    func testResidualAddedBeforeTheActivationOnEveryPath() {
        // 1x1 (fused in the product), 3x3 (Winograd), dilated 3x3 on a small map (tapwise), 7x7 stride 2 (im2col);
        // thin products through the own kernel (limit 0), through OpenBLAS where plain (limit 64), and
        // everything through OpenBLAS and the Swift epilogue (as on CPUs without AVX-512).
        for (thin, ownKernel) in [(0, true), (64, true), (64, false)] {
            let chosen = engine { $0.thinProduct = thin; $0.ownGEMM = ownKernel && seg_gemm_supported() != 0 }
            for (cin, cout, kernel, geometry, h, w) in [(24, 40, 1, ConvGeometry(), 9, 50), (16, 16, 3, .same(kernel: 3), 20, 24),
                                                        (32, 8, 3, .same(kernel: 3, dilation: 6), 7, 9),
                                                        (3, 8, 7, ConvGeometry(stride: 2, padding: 3), 15, 16)] {
                let x = random(cin, h, w, in: chosen)
                let weights = randomWeights(cin, cout, kernel: kernel)
                let plain = conv2d(x, weights, geometry)
                let shortcut = random(cout, plain.height, plain.width, in: chosen)
                let fused = conv2d(x, weights, geometry, activation: .relu, adding: shortcut).toArray()
                let expected = add(plain, shortcut, activation: .relu).toArray()
                XCTAssertEqual(fused.count, expected.count)
                XCTAssertLessThan(zip(fused, expected).map { abs($0 - $1) }.max()!, 1e-5, "\(kernel)x\(kernel) \(geometry)")
                XCTAssertTrue(fused.contains(0) && fused.contains { $0 > 0 }, "the ReLU clips some values, not all")
            }
        }
    }

    func testStridedMaxPoolEqualsTheWindowLoop() {
        // Rows wide enough for the vector loops; the ResNet stem's 3x3 stride 2 and a generic window.
        for (kernel, stride, padding, dilation, h, w) in [(3, 2, 1, 1, 9, 75), (3, 2, 1, 1, 6, 64), (2, 2, 0, 1, 5, 70),
                                                          (3, 3, 1, 2, 11, 53)] {
            let x = random(2, h, w)
            x[1, 2, 40] = .nan
            let pooled = maxPool2d(x, kernel: kernel, stride: stride, padding: padding, dilation: dilation)
            for c in 0..<2 {
                for oy in 0..<pooled.height {
                    for ox in 0..<pooled.width {
                        var best = -Float.infinity
                        for ky in 0..<kernel {
                            for kx in 0..<kernel {
                                let y = oy * stride - padding + ky * dilation, xx = ox * stride - padding + kx * dilation
                                if y >= 0 && y < h && xx >= 0 && xx < w && (x[c, y, xx] > best || x[c, y, xx].isNaN) {
                                    best = x[c, y, xx]
                                }
                            }
                        }
                        let value = pooled[c, oy, ox]
                        XCTAssertTrue(value == best || (value.isNaN && best.isNaN),
                                      "k\(kernel) s\(stride) \(h)x\(w) at \(c),\(oy),\(ox): \(value) vs \(best)")
                    }
                }
            }
            XCTAssertTrue(pooled.toArray().contains { $0.isNaN }, "the NaN reaches the output")
        }
    }

    func testAveragePoolsOverLargeWindowsEqualTheDoubleSums() {
        let x = random(3, 37, 61)
        let global = globalAveragePool(x), cells = adaptiveAvgPool2d(x, height: 2, width: 3)
        for c in 0..<3 {
            let plane = (0..<37).flatMap { y in (0..<61).map { Double(x[c, y, $0]) } }
            XCTAssertEqual(Double(global[c, 0, 0]), plane.reduce(0, +) / Double(plane.count), accuracy: 1e-6)
            // Cell (1, 2): rows 18..<37, columns 40..<61 (part rows: a sum per row).
            let cell = (18..<37).flatMap { y in (40..<61).map { Double(x[c, y, $0]) } }
            XCTAssertEqual(Double(cells[c, 1, 2]), cell.reduce(0, +) / Double(cell.count), accuracy: 1e-6)
        }
    }

    func testSeparableMaxPoolEqualsTheWindowedOne() {
        for (kernel, padding, h, w) in [(5, 2, 6, 7), (3, 1, 1, 9), (5, 2, 13, 4), (2, 0, 5, 5), (3, 0, 4, 6)] {
            let x = random(3, h, w)
            x[1, 0, 0] = .nan
            let fast = separableMaxPool(x, kernel: kernel, padding: padding).toArray()
            let window = windowMaxPool(x, kernel: kernel, stride: 1, padding: padding, dilation: 1, ceilMode: false).toArray()
            XCTAssertEqual(fast.count, window.count)
            for (a, b) in zip(fast, window) {
                XCTAssertTrue(a == b || (a.isNaN && b.isNaN), "k\(kernel) p\(padding) \(h)x\(w): \(a) vs \(b)")
            }
        }
    }
}
