import Foundation
@testable import SegEngine
import XCTest

final class FormatTests: XCTestCase {
    let context = EngineContext()

    func testHalfPrecisionDecoding() {
        XCTAssertEqual(FloatFormats.float(fromHalf: 0x3C00), 1)
        XCTAssertEqual(FloatFormats.float(fromHalf: 0xC000), -2)
        XCTAssertEqual(FloatFormats.float(fromHalf: 0x7BFF), 65504)  // largest finite half
        XCTAssertEqual(FloatFormats.float(fromHalf: 0x3555), 0.333251953125)
        XCTAssertEqual(FloatFormats.float(fromHalf: 0x0001), 5.960464477539063e-08)  // smallest subnormal
        XCTAssertEqual(FloatFormats.float(fromHalf: 0x8000).sign, .minus)
        XCTAssertEqual(FloatFormats.float(fromHalf: 0x7C00), .infinity)
        XCTAssertTrue(FloatFormats.float(fromHalf: 0x7E00).isNaN)
    }

    func testBFloat16Decoding() {
        XCTAssertEqual(FloatFormats.float(fromBFloat16: 0x3F80), 1)
        XCTAssertEqual(FloatFormats.float(fromBFloat16: 0xC0A0), -5)
        XCTAssertEqual(FloatFormats.float(fromBFloat16: 0x3EAB), 0.333984375)
    }

    func testNumPyRoundTrip() throws {
        let tensor = Tensor(channels: 2, height: 3, width: 5, values: (0..<30).map { Float($0) * 0.5 - 3 }, in: context)
        let data = NumPyFile.encode(tensor)
        XCTAssertEqual((data.count - 30 * 4) % 64, 0, "header is padded to 64 bytes")
        let header = String(decoding: data[10..<(data.count - 120)], as: UTF8.self)
        XCTAssertTrue(header.contains("'shape': (2, 3, 5)"), header)
        let (values, shape) = try NumPyFile.decode(data)
        XCTAssertEqual(shape, [2, 3, 5])
        XCTAssertEqual(values, tensor.toArray())
        XCTAssertThrowsError(try NumPyFile.decode(Data("not numpy".utf8)))
    }

    func testBufferPoolReusesReleasedBuffers() {
        let pool = context.pool
        var address: UnsafeMutablePointer<Float>?
        do {
            let first = Tensor(channels: 3, height: 17, width: 19, in: context)
            address = first.data
        }
        let live = pool.liveBytes
        pool.resetPeak()
        let tensorsBefore = pool.peakTensorBytes
        let second = Tensor(channels: 3, height: 17, width: 19, in: context)
        XCTAssertEqual(second.data, address, "a released buffer of the same size is handed out again")
        XCTAssertEqual(pool.liveBytes, live + 3 * 17 * 19 * 4)
        XCTAssertEqual(pool.peakBytes, live + 3 * 17 * 19 * 4)
        XCTAssertEqual(pool.peakTensorBytes, tensorsBefore + 3 * 17 * 19 * 4)
        context.withScratch(1000) { _ in }  // scratch counts in the peak of everything, not in the tensors'
        XCTAssertEqual(pool.peakBytes, live + 3 * 17 * 19 * 4 + 4000)
        XCTAssertEqual(pool.peakTensorBytes, tensorsBefore + 3 * 17 * 19 * 4)
    }

    func testBufferPoolLendsIdleBuffersToSmallerRequestsWithinItsFactor() {
        let pool = BufferPool()
        let size = 1 << 17  // a size class of its own: the buffer holds exactly this
        let large = pool.take(size)
        pool.recycle(large, count: size)
        let smaller = pool.take(size / BufferPool.reuseFactor)
        XCTAssertEqual(smaller, large, "a request of 1/reuseFactor of an idle buffer takes it")
        pool.recycle(smaller, count: size / BufferPool.reuseFactor)
        let tiny = pool.take(1000)
        XCTAssertNotEqual(tiny, large, "a much smaller request gets a buffer of its own")
        XCTAssertEqual(pool.liveBytes, 4000)
        for buffer in [large, tiny] {
            XCTAssertEqual(Int(bitPattern: buffer) % BufferPool.alignment, 0, "buffers start on a cache line")
        }
    }

    func testBufferPoolSizeClassesRoundUpByAtMostAQuarter() {
        XCTAssertEqual(BufferPool.sizeClass(4096), 4096)
        XCTAssertEqual(BufferPool.sizeClass(4097), 5120)
        XCTAssertEqual(BufferPool.sizeClass(1 << 20), 1 << 20)
        XCTAssertEqual(BufferPool.sizeClass((1 << 20) + 1), (1 << 20) + (1 << 18))
        for count in [5000, 65_537, 1_000_003, 33_554_431] {
            XCTAssertGreaterThanOrEqual(BufferPool.sizeClass(count), count)
            XCTAssertLessThanOrEqual(Double(BufferPool.sizeClass(count)), Double(count) * 1.25)
        }
    }
}
