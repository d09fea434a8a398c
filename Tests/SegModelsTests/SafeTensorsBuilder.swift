import Foundation
import SegEngine

/// Writes `.safetensors` files for tests: real ones, and ones broken on purpose.
struct SafeTensorsBuilder {
    struct Item {
        var dtype: String
        var shape: [Int]
        var bytes: Data
    }

    var items: [(name: String, item: Item)] = []
    var metadata: [String: String] = [:]

    mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        var data = Data()
        for value in floats { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        items.append((name, Item(dtype: "F32", shape: shape, bytes: data)))
    }

    mutating func add(_ name: String, dtype: String, shape: [Int], raw: [UInt16]) {
        var data = Data()
        for value in raw { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        items.append((name, Item(dtype: dtype, shape: shape, bytes: data)))
    }

    /// All tensors and metadata of an existing file, converted to F32.
    init(copying file: SafeTensorsFile) throws {
        metadata = file.metadata
        for (name, entry) in file.entries.sorted(by: { $0.key < $1.key }) {
            add(name, shape: entry.shape, floats: try file.floats(name, shape: entry.shape))
        }
    }

    init() {}

    func header() -> Data {
        var object: [String: Any] = [:]
        var offset = 0
        for (name, item) in items {
            object[name] = ["dtype": item.dtype, "shape": item.shape, "data_offsets": [offset, offset + item.bytes.count]]
            offset += item.bytes.count
        }
        if !metadata.isEmpty { object["__metadata__"] = metadata }
        return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    func data(header override: Data? = nil) -> Data {
        let json = override ?? header()
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, item) in items { data.append(item.bytes) }
        return data
    }

    func write(to url: URL) throws { try data().write(to: url) }
}
