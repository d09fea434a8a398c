import Foundation

/// Everything that can be wrong with a tensor file, each naming what and where.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case notSafeTensors(path: String, reason: String)
    case missingTensor(String)
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    case unsupportedDType(name: String, dtype: String)
    case nonFinite(name: String, index: Int, value: Float)
    case outOfRange(name: String, index: Int, value: Float, expected: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .notSafeTensors(let path, let reason): return "\(path) is not a valid .safetensors file: \(reason)"
        case .missingTensor(let name): return "the file has no tensor '\(name)'"
        case .shapeMismatch(let name, let expected, let found):
            return "tensor '\(name)' has shape \(found), expected \(expected)"
        case .unsupportedDType(let name, let dtype):
            return "tensor '\(name)' has dtype \(dtype); supported: F32, F16, BF16"
        case .nonFinite(let name, let index, let value):
            return "tensor '\(name)' holds \(value) at index \(index): the weights are broken (a diverged training run?)"
        case .outOfRange(let name, let index, let value, let expected):
            return "tensor '\(name)' holds \(value) at index \(index); \(expected)"
        }
    }
}

/// A memory-mapped `.safetensors` file: an 8-byte little-endian header length, a JSON header
/// mapping tensor names to dtype, shape and byte range, an optional `__metadata__` string map,
/// then the raw little-endian tensor bytes. Only the tensors asked for are ever converted.
public final class SafeTensorsFile {
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        /// Byte range inside the file (not just the data section).
        let bytes: Range<Int>
    }

    static let itemSizes = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                            "I8": 1, "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8]

    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    private let base: UnsafeRawPointer
    private let size: Int
    /// Memory-mapped from a file (unmapped at the end), or a copy of bytes in memory (freed).
    private let mapped: Bool

    /// A file's bytes in memory (a converted checkpoint), `path` naming it in messages.
    public init(contents: Data, path: String) throws {
        self.path = path
        size = contents.count
        mapped = false
        guard size >= 8 else { throw SafeTensorsError.notSafeTensors(path: path, reason: "file is only \(size) bytes") }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        contents.copyBytes(to: copy.assumingMemoryBound(to: UInt8.self), count: size)
        base = UnsafeRawPointer(copy)
        do {
            (metadata, entries) = try Self.parseHeader(base, size: size, path: path)
        } catch {
            copy.deallocate()
            throw error
        }
    }

    public init(path: String) throws {
        self.path = path
        mapped = true
        // Without blocking: opening a FIFO would wait for a writer before fstat could refuse it.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SafeTensorsError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError.unreadable(path: path, reason: "not a regular file")
        }
        size = Int(info.st_size)
        guard size >= 8 else { throw SafeTensorsError.notSafeTensors(path: path, reason: "file is only \(size) bytes") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw SafeTensorsError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(mapped)
        do {
            (metadata, entries) = try Self.parseHeader(base, size: size, path: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
    }

    /// Tensor `name` as stored, in its own dtype (nil where the file has no such tensor).
    public func stored(_ name: String) -> SafeTensorsWriter.Stored? {
        guard let entry = entries[name] else { return nil }
        return SafeTensorsWriter.Stored(name: name, dtype: entry.dtype, shape: entry.shape,
                                        bytes: Data(bytes: base + entry.bytes.lowerBound, count: entry.bytes.count))
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), size) } else { base.deallocate() }
    }

    private static func parseHeader(_ base: UnsafeRawPointer, size: Int, path: String) throws
        -> ([String: String], [String: Entry]) {
        func invalid(_ reason: String) -> SafeTensorsError { .notSafeTensors(path: path, reason: reason) }
        let headerLength = base.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(size - 8) else {
            throw invalid("header length \(headerLength) exceeds the file size \(size)")
        }
        let dataStart = 8 + Int(headerLength)
        let headerData = Data(bytes: base + 8, count: Int(headerLength))
        guard let json = try? JSONSerialization.jsonObject(with: headerData), let header = json as? [String: Any] else {
            throw invalid("header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in header.sorted(by: { $0.key < $1.key }) {  // the same message on every run
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw invalid("__metadata__ is not an object") }
                for (key, item) in map {
                    guard let text = item as? String else { throw invalid("__metadata__ value '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                  let shape = (fields["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (fields["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  offsets.count == 2, shape.count == (fields["shape"] as? [Any])?.count else {
                throw invalid("tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let itemSize = itemSizes[dtype] else { throw invalid("tensor '\(name)' has unknown dtype \(dtype)") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw invalid("tensor '\(name)' has a negative dimension") }
            let (count, overflow) = shape.reduce((1, false)) { acc, dim in
                let (product, o) = acc.0.multipliedReportingOverflow(by: dim)
                return (product, acc.1 || o)
            }
            let (bytes, bytesOverflow) = count.multipliedReportingOverflow(by: itemSize)
            guard !overflow, !bytesOverflow, offsets[0] >= 0, offsets[1] >= offsets[0],
                  offsets[1] - offsets[0] == bytes else {
                throw invalid("tensor '\(name)': data_offsets \(offsets) do not hold \(shape) of \(dtype)")
            }
            guard offsets[1] <= size - dataStart else {
                throw invalid("tensor '\(name)' ends at byte \(offsets[1]) of a \(size - dataStart)-byte data section")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, bytes: (dataStart + offsets[0])..<(dataStart + offsets[1]))
        }
        // Tensors must not share bytes: a header that points two names at one range is forged or broken.
        let ordered = entries.sorted { ($0.value.bytes.lowerBound, $0.value.bytes.upperBound) < ($1.value.bytes.lowerBound, $1.value.bytes.upperBound) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.value.bytes.overlaps(b.value.bytes) {
            throw invalid("tensors '\(a.key)' and '\(b.key)' overlap (bytes \(a.value.bytes) and \(b.value.bytes) of the file)")
        }
        return (metadata, entries)
    }

    /// The values of `name` as float32, after checking its shape.
    public func floats(_ name: String, shape expected: [Int]) throws -> [Float] {
        guard let entry = entries[name] else { throw SafeTensorsError.missingTensor(name) }
        guard entry.shape == expected else {
            throw SafeTensorsError.shapeMismatch(name: name, expected: expected, found: entry.shape)
        }
        return try floats(entry, name: name)
    }

    func floats(_ entry: Entry, name: String) throws -> [Float] {
        let values = try decode(entry, name: name)
        if let index = values.firstIndex(where: { !$0.isFinite }) {
            throw SafeTensorsError.nonFinite(name: name, index: index, value: values[index])
        }
        return values
    }

    private func decode(_ entry: Entry, name: String) throws -> [Float] {
        // Model files hold F32, F16 or BF16; F64 is not among them.
        guard entry.dtype != "F64", let values = FloatFormats.floats(base + entry.bytes.lowerBound,
                                                                    count: entry.shape.reduce(1, *), dtype: entry.dtype)
        else {
            throw SafeTensorsError.unsupportedDType(name: name, dtype: entry.dtype)
        }
        return values
    }
}

/// Writes `.safetensors` files: the JSON header (padded with spaces to 8 bytes, as the reference
/// writer does), then every tensor's little-endian bytes in the order given.
public enum SafeTensorsWriter {
    /// One tensor as stored: its dtype's name (F32, F16, ...), shape and encoded bytes.
    public struct Stored {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        public let bytes: Data

        public init(name: String, dtype: String, shape: [Int], bytes: Data) {
            precondition(SafeTensorsFile.itemSizes[dtype].map { $0 * shape.reduce(1, *) } == bytes.count,
                         "\(name): \(bytes.count) bytes do not hold \(shape) of \(dtype)")
            (self.name, self.dtype, self.shape, self.bytes) = (name, dtype, shape, bytes)
        }

        /// float32 values (little-endian on every platform segview runs on).
        public init(name: String, shape: [Int], values: [Float]) {
            let bytes = values.withUnsafeBufferPointer { Data(buffer: $0) }
            self.init(name: name, dtype: "F32", shape: shape, bytes: bytes)
        }
    }

    public static func encode(_ tensors: [(name: String, shape: [Int], values: [Float])],
                              metadata: [String: String]) throws -> Data {
        try encode(tensors.map { Stored(name: $0.name, shape: $0.shape, values: $0.values) }, metadata: metadata)
    }

    public static func encode(_ tensors: [Stored], metadata: [String: String]) throws -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for tensor in tensors {
            header[tensor.name] = ["dtype": tensor.dtype, "shape": tensor.shape,
                                   "data_offsets": [offset, offset + tensor.bytes.count]]
            offset += tensor.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var file = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for tensor in tensors { file.append(tensor.bytes) }
        return file
    }
}
