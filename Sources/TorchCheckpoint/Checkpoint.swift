import Foundation

/// What is wrong with a checkpoint.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case corrupt(String)
    case unsupported(String)
    /// A pickle naming a global outside the allow-list: refused before anything else happened.
    case forbiddenGlobal(String)
    case noStateDict(String)

    public var description: String {
        switch self {
        case .corrupt(let reason): "broken checkpoint: \(reason)"
        case .unsupported(let reason): "unsupported checkpoint: \(reason)"
        case .forbiddenGlobal(let name):
            "the pickle names '\(name)', which a state dict does not need (it could run code when loaded in "
                + "Python); segview reads only state dicts of tensors: save model.state_dict() on its own"
        case .noStateDict(let reason): "no state dict: \(reason)"
        }
    }
}

/// A tensor of a checkpoint, laid out contiguously (row-major, little-endian) whatever view of its
/// storage it was saved as.
public struct CheckpointTensor: Equatable {
    public let shape: [Int]
    /// safetensors' name for the element type: F32, F64, F16, BF16, I64, ...
    public let dtype: String
    public let isFloatingPoint: Bool
    public let bytes: [UInt8]
}

/// A PyTorch checkpoint as `torch.save` writes it, read without Python and without running any of
/// it: the zip format (torch >= 1.6: `NAME/data.pkl` and one entry per storage, `NAME/data/KEY`) and
/// the legacy format before it (magic number, protocol, system info, the pickle, the storage keys,
/// then each storage's element count and bytes).
public struct TorchCheckpoint {
    /// The state dict's tensors by name, out of the wrappers training scripts save (`state_dict`,
    /// `model_state_dict`, `model`, `net`) and without DataParallel's `module.` prefix.
    public let tensors: [String: CheckpointTensor]
    /// The wrapper keys that led to the state dict, outermost first.
    public let wrappers: [String]

    /// Whether a file's first bytes are a zip archive or a pickle (legacy checkpoints start with one).
    public static func recognises(_ head: [UInt8]) -> Bool {
        head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: legacyHead)
    }

    /// A legacy checkpoint's first pickle: protocol 2, then the magic number as a 10-byte LONG1.
    /// (Two bytes would not do: a safetensors header length of 640 mod 65536 starts with 80 02.)
    static let legacyHead: [UInt8] = [0x80, 0x02, 0x8A, 0x0A,
                                      0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    public init(path: String) throws {
        // Foundation's mapped read of an empty file leaks its fallback buffer; nothing to map anyway.
        let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        guard size != 0 else { throw CheckpointError.corrupt("the file is empty") }
        let contents = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        (tensors, wrappers) = try contents.withUnsafeBytes { bytes in
            let arena = PickleArena()
            defer { arena.release() }
            let storages: Storages
            let root: PickleValue
            if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
                (root, storages) = try Self.readZip(bytes, arena)
            } else if bytes.count > 262, bytes[257..<262].elementsEqual(Array("ustar".utf8)) {
                throw CheckpointError.unsupported("a tar checkpoint (PyTorch before 0.4); load and save it again")
            } else {
                (root, storages) = try Self.readLegacy(bytes, arena)
            }
            let (dict, wrappers) = try Self.stateDict(root)
            return (try Self.tensors(of: dict, storages), wrappers)
        }
    }

    // MARK: formats

    /// The byte range of every storage by key, and each storage's element type as the pickle named it.
    private final class Storages {
        var types: [String: TorchDType] = [:]
        var ranges: [String: Range<Int>] = [:]
        let bytes: UnsafeRawBufferPointer

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        /// A persistent id: ('storage', torch.XStorage, key, location, element count[, view]).
        func load(_ id: PickleValue) throws -> PickleValue {
            guard case .tuple(let tuple) = id, case let fields = tuple.items, fields.count >= 5,
                  case .string("storage") = fields[0], case .global(let type) = fields[1],
                  case .string(let key) = fields[2], case .int(let count) = fields[4],
                  count >= 0, let dtype = TorchDType(storage: String(type.dropFirst("torch.".count)))
            else { throw CheckpointError.corrupt("a persistent id that is not a storage") }
            if fields.count > 5 {
                guard case .none = fields[5] else { throw CheckpointError.unsupported("a legacy view of a storage") }
            }
            if let known = types[key], known != dtype {
                throw CheckpointError.corrupt("storage \(key) is read as both \(known.rawValue) and \(dtype.rawValue)")
            }
            types[key] = dtype
            return .storage(StorageReference(key: key, dtype: dtype, count: count))
        }
    }

    private static func readZip(_ bytes: UnsafeRawBufferPointer, _ arena: PickleArena) throws
        -> (PickleValue, Storages) {
        let archive = try ZipArchive(bytes)
        let pickles = archive.entries.keys.filter { name in
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.last == "data.pkl" && parts.count <= 2
        }
        guard pickles.count == 1, let pickle = pickles.first, let range = archive.entries[pickle] else {
            throw CheckpointError.corrupt("the archive has \(pickles.count) data.pkl entries, not one")
        }
        let prefix = String(pickle.dropLast("data.pkl".count))
        if let order = archive.entries[prefix + "byteorder"],
           String(decoding: UnsafeRawBufferPointer(rebasing: bytes[order]), as: UTF8.self) != "little" {
            throw CheckpointError.unsupported("a big-endian checkpoint")
        }
        let storages = Storages(bytes)
        var unpickler = Unpickler(UnsafeRawBufferPointer(rebasing: bytes[range]), arena: arena,
                                  persistentLoad: storages.load)
        let root = try unpickler.load()
        for key in storages.types.keys {
            guard let entry = archive.entries[prefix + "data/" + key] else {
                throw CheckpointError.corrupt("storage \(key) has no entry \(prefix)data/\(key)")
            }
            storages.ranges[key] = entry
        }
        return (root, storages)
    }

    /// The magic number the legacy format starts with, as LONG1's little-endian bytes.
    private static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    private static func readLegacy(_ bytes: UnsafeRawBufferPointer, _ arena: PickleArena) throws
        -> (PickleValue, Storages) {
        let storages = Storages(bytes)
        var unpickler = Unpickler(bytes, arena: arena, persistentLoad: storages.load)
        guard case .largeInt(let magic) = try unpickler.load(), magic == legacyMagic else {
            throw CheckpointError.corrupt("neither a zip archive nor a legacy checkpoint (no magic number)")
        }
        guard case .int(1001) = try unpickler.load() else {
            throw CheckpointError.unsupported("a legacy protocol other than 1001")
        }
        guard case .dict(let system) = try unpickler.load() else {
            throw CheckpointError.corrupt("no system information")
        }
        for (key, value) in system.pairs {
            if case .string("little_endian") = key, case .bool(false) = value {
                throw CheckpointError.unsupported("a big-endian checkpoint")
            }
        }
        let root = try unpickler.load()
        guard case .list(let keys) = try unpickler.load() else {
            throw CheckpointError.corrupt("no list of storage keys")
        }
        var reader = ByteReader(bytes)
        try reader.seek(unpickler.position)
        for item in keys.items {
            guard case .string(let key) = item, let dtype = storages.types[key] else {
                throw CheckpointError.corrupt("a storage key that no tensor uses")
            }
            let count = try reader.int64()
            let (length, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow && length <= reader.remaining else {
                throw CheckpointError.corrupt("storage \(key) declares \(count) elements past the end of the file")
            }
            storages.ranges[key] = reader.position..<reader.position + length
            try reader.skip(length)
        }
        return (root, storages)
    }

    // MARK: the state dict

    static let wrapperKeys = ["state_dict", "model_state_dict", "model", "net"]

    /// The dict of tensors inside the wrappers: a wrapper key first (a training script may keep a
    /// tensor, a best score, beside its state dict), else the dict itself if it holds tensors.
    private static func stateDict(_ root: PickleValue) throws -> (PickleDict, [String]) {
        func find(_ value: PickleValue, depth: Int) -> (PickleDict, [String])? {
            guard case .dict(let dict) = value else { return nil }
            if depth < 4 {
                for key in wrapperKeys {
                    let named = dict.pairs.first { if case .string(key) = $0.key { true } else { false } }
                    guard let inner = named,
                          let (found, path) = find(inner.value, depth: depth + 1) else { continue }
                    return (found, [key] + path)
                }
            }
            return dict.pairs.contains { if case .tensor = $0.value { true } else { false } } ? (dict, []) : nil
        }
        guard let found = find(root, depth: 0) else {
            let looked = wrapperKeys.joined(separator: ", ")
            throw CheckpointError.noStateDict("found no dict of tensors (looked inside \(looked))")
        }
        return found
    }

    private static func tensors(of dict: PickleDict, _ storages: Storages) throws -> [String: CheckpointTensor] {
        var named: [(String, TensorReference)] = []
        for (key, value) in dict.pairs {
            guard case .string(let name) = key, case .tensor(let tensor) = value else { continue }
            named.append((name, tensor))
        }
        let prefixed = !named.isEmpty && named.allSatisfy { $0.0.hasPrefix("module.") }
        var tensors: [String: CheckpointTensor] = [:]
        // Views may share a storage (tied weights, aliases), but a small file must not expand without
        // bound through thousands of views of one big storage.
        let budget = 4 * storages.bytes.count + (1 << 20)
        var produced = 0
        for (name, reference) in named {
            let key = prefixed ? String(name.dropFirst("module.".count)) : name
            guard tensors[key] == nil else { throw CheckpointError.corrupt("tensor '\(key)' appears twice") }
            let tensor = try contiguous(reference, name: key, storages)
            produced += tensor.bytes.count
            guard produced <= budget else {
                let reason = "the tensors' views repeat the file's storages more than a state dict's do "
                    + "(\(produced) bytes from a file of \(storages.bytes.count))"
                throw CheckpointError.corrupt(reason)
            }
            tensors[key] = tensor
        }
        return tensors
    }

    /// The tensor's elements in row-major order, every index checked against its storage.
    private static func contiguous(_ tensor: TensorReference, name: String, _ storages: Storages) throws
        -> CheckpointTensor {
        let storage = tensor.storage
        guard let range = storages.ranges[storage.key] else {
            throw CheckpointError.corrupt("storage \(storage.key) is missing")
        }
        let size = storage.dtype.size
        guard storage.count <= range.count / size else {
            throw CheckpointError.corrupt("storage \(storage.key) holds \(range.count) bytes, not \(storage.count) "
                                          + "elements of \(storage.dtype.rawValue)")
        }
        guard tensor.offset >= 0, tensor.shape.allSatisfy({ $0 >= 0 }), tensor.strides.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError.corrupt("tensor '\(name)' has a negative size, stride or offset")
        }
        // A dimension of one element never moves, whatever stride the file gives it.
        let strides = zip(tensor.shape, tensor.strides).map { extent, stride in extent <= 1 ? 0 : stride }
        var count = 1, last = tensor.offset
        for (extent, stride) in zip(tensor.shape, strides) {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            let (reach, reachOverflow) = max(0, extent - 1).multipliedReportingOverflow(by: stride)
            let (end, endOverflow) = last.addingReportingOverflow(reach)
            guard !overflow && !reachOverflow && !endOverflow && product <= Int32.max else {
                throw CheckpointError.corrupt("tensor '\(name)' of shape \(tensor.shape) is too large")
            }
            count = product
            last = end
        }
        guard count == 0 || last < storage.count else {
            throw CheckpointError.corrupt("tensor '\(name)' reads element \(last) of a storage of \(storage.count)")
        }
        // Only an expanded view (a stride of 0) has more elements than its storage: no state dict holds one.
        guard count <= storage.count else {
            throw CheckpointError.corrupt("tensor '\(name)' has \(count) elements, more than its storage's "
                                          + "\(storage.count) (an expanded view)")
        }
        guard count > 0 else {
            return CheckpointTensor(shape: tensor.shape, dtype: storage.dtype.rawValue,
                                    isFloatingPoint: storage.dtype.isFloatingPoint, bytes: [])
        }
        let source = UnsafeRawBufferPointer(rebasing: storages.bytes[range])
        let rowMajor = tensor.shape.indices.map { tensor.shape[($0 + 1)...].reduce(1, *) }
        if zip(tensor.shape, zip(strides, rowMajor)).allSatisfy({ $0 <= 1 || $1.0 == $1.1 }) {
            return CheckpointTensor(shape: tensor.shape, dtype: storage.dtype.rawValue,
                                    isFloatingPoint: storage.dtype.isFloatingPoint,
                                    bytes: Array(source[tensor.offset * size..<(tensor.offset + count) * size]))
        }
        var bytes = [UInt8](repeating: 0, count: count * size)
        // Walk the elements in row-major order: an odometer over the shape.
        var index = [Int](repeating: 0, count: tensor.shape.count)
        var element = tensor.offset
        bytes.withUnsafeMutableBytes { target in
            for position in 0..<count {
                target.baseAddress!.advanced(by: position * size)
                    .copyMemory(from: source.baseAddress!.advanced(by: element * size), byteCount: size)
                var axis = tensor.shape.count - 1
                // One step past an axis's end may pass Int.max; wrapping arithmetic undoes it exactly.
                while axis >= 0 {
                    index[axis] += 1
                    element &+= strides[axis]
                    if index[axis] < tensor.shape[axis] { break }
                    element &-= strides[axis] &* index[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        return CheckpointTensor(shape: tensor.shape, dtype: storage.dtype.rawValue,
                                isFloatingPoint: storage.dtype.isFloatingPoint, bytes: bytes)
    }
}
