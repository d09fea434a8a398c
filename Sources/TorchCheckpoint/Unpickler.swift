/// A value of a restricted pickle: plain data, the containers state dicts are made of, and the few
/// objects of PyTorch's format (storages, tensors). Nothing a pickle names is ever called: the
/// allowed globals are recognised by name and their effect is modelled here.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes (the legacy
    /// format's magic number).
    case largeInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    /// An allowed global, not yet applied to arguments.
    case global(String)
    case storage(StorageReference)
    case tensor(TensorReference)
    /// A value the allow-list admits but segview has no use for (a NumPy scalar: a best score).
    case opaque(String)
}

/// Lists and dicts are shared by reference: a pickle fills them after storing them in its memo.
final class PickleList { var items: [PickleValue] = [] }

final class PickleDict { var pairs: [(key: PickleValue, value: PickleValue)] = [] }

final class PickleTuple {
    var items: [PickleValue]
    init(_ items: [PickleValue]) { self.items = items }
}

/// Every container a pickle made, so that they can be emptied one by one: freeing a deeply nested
/// value (100,000 lists in 200 KB) would recurse once per level and overflow the stack, and a list
/// that contains itself would never be freed.
final class PickleArena {
    private var lists: [PickleList] = []
    private var dicts: [PickleDict] = []
    private var tuples: [PickleTuple] = []

    func list(_ items: [PickleValue] = []) -> PickleValue {
        let list = PickleList()
        list.items = items
        lists.append(list)
        return .list(list)
    }

    func dict(_ pairs: [(key: PickleValue, value: PickleValue)] = []) -> PickleValue {
        let dict = PickleDict()
        dict.pairs = pairs
        dicts.append(dict)
        return .dict(dict)
    }

    func tuple(_ items: [PickleValue]) -> PickleValue {
        let tuple = PickleTuple(items)
        tuples.append(tuple)
        return .tuple(tuple)
    }

    /// Empties every container (each still held here, so none is freed from inside another), then
    /// lets them go. Values read from the pickle are empty afterwards.
    func release() {
        lists.forEach { $0.items = [] }
        dicts.forEach { $0.pairs = [] }
        tuples.forEach { $0.items = [] }
        (lists, dicts, tuples) = ([], [], [])
    }
}

/// A storage a persistent id names: a key into the archive's data (or the legacy file's storage
/// table), its element type and its number of elements.
struct StorageReference {
    let key: String
    let dtype: TorchDType
    let count: Int
}

/// `torch._utils._rebuild_tensor_v2`'s arguments: a view of a storage.
struct TensorReference {
    let storage: StorageReference
    let offset: Int
    let shape: [Int]
    let strides: [Int]
}

/// Element types of the `torch.*Storage` classes.
enum TorchDType: String {
    case float32 = "F32", float64 = "F64", float16 = "F16", bfloat16 = "BF16"
    case int64 = "I64", int32 = "I32", int16 = "I16", int8 = "I8", uint8 = "U8", bool = "BOOL"

    init?(storage: String) {
        let types: [String: TorchDType] = [
            "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
            "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
            "ByteStorage": .uint8, "BoolStorage": .bool,
        ]
        guard let type = types[storage] else { return nil }
        self = type
    }

    var size: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .int8, .uint8, .bool: 1
        }
    }

    var isFloatingPoint: Bool { [.float32, .float64, .float16, .bfloat16].contains(self) }
}

/// Python's pickle, restricted to what checkpoints of state dicts hold (protocols 2 to 5).
///
/// GLOBAL and STACK_GLOBAL may name only `allowedGlobals`; any other name (`os.system`,
/// `builtins.eval`, a model class of a whole pickled module) is refused at that opcode, before
/// anything else happens, and nothing is ever executed: REDUCE on an allowed name is interpreted
/// here. Sizes are checked against the bytes left, and the memo and stack are bounded.
struct Unpickler {
    /// The names a state dict checkpoint needs, and what training scripts keep beside it: the NumPy
    /// scalars the references store their best scores as (jfzhang95's `best_pred`, wkentaro's
    /// `best_mean_iu`) and the command line of torchvision's reference trainer (`args`, an
    /// `argparse.Namespace`). Those become opaque: nothing is built from them.
    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
        "torch.BoolStorage",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "_codecs.encode",
        "argparse.Namespace",
    ]

    static let maximumStack = 1 << 20
    static let maximumMemo = 1 << 22

    private var reader: ByteReader
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private let arena: PickleArena
    /// Turns a persistent id (BINPERSID) into a value: PyTorch's storages.
    private let persistentLoad: (PickleValue) throws -> PickleValue

    /// Containers are made in `arena`; release it once the values are no longer needed.
    init(_ bytes: UnsafeRawBufferPointer, arena: PickleArena,
         persistentLoad: @escaping (PickleValue) throws -> PickleValue) {
        reader = ByteReader(bytes)
        self.arena = arena
        self.persistentLoad = persistentLoad
    }

    /// Bytes consumed so far: the legacy format puts several pickles one after another.
    var position: Int { reader.position }

    /// Reads one pickle, up to its STOP.
    mutating func load() throws -> PickleValue {
        stack = []
        marks = []
        memo = [:]
        while true {
            let at = reader.position
            let opcode = try reader.byte()
            if opcode == 0x2E {  // STOP
                guard let result = stack.last, stack.count == 1 else {
                    throw malformed("STOP with \(stack.count) values")
                }
                return result
            }
            try step(opcode, at: at)
            guard stack.count <= Self.maximumStack else { throw malformed("more than \(Self.maximumStack) values") }
            guard memo.count <= Self.maximumMemo else { throw malformed("more than \(Self.maximumMemo) memo entries") }
        }
    }

    private func malformed(_ reason: String) -> CheckpointError { .corrupt("pickle: \(reason)") }

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast(), marks.last.map({ stack.count >= $0 }) ?? true else {
            throw malformed("pops an empty stack")
        }
        return value
    }

    /// The values since the last MARK, which is removed.
    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw malformed("no MARK") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private mutating func text(_ count: Int) throws -> String {
        String(decoding: try reader.slice(count), as: UTF8.self)
    }

    private mutating func line() throws -> String {
        var bytes: [UInt8] = []
        while true {
            let byte = try reader.byte()
            if byte == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
            guard bytes.count <= 256 else { throw malformed("a GLOBAL name over 256 bytes") }
        }
    }

    private mutating func step(_ opcode: UInt8, at offset: Int) throws {
        switch opcode {
        case 0x80: _ = try reader.byte()  // PROTO
        case 0x95: try reader.skip(8)  // FRAME
        case 0x7D: stack.append(arena.dict())  // EMPTY_DICT
        case 0x5D: stack.append(arena.list())  // EMPTY_LIST
        case 0x29: stack.append(arena.tuple([]))  // EMPTY_TUPLE
        case 0x28: marks.append(stack.count)  // MARK
        case 0x74: stack.append(arena.tuple(try popMark()))  // TUPLE
        case 0x85: stack.append(arena.tuple([try pop()]))  // TUPLE1
        case 0x86:  // TUPLE2
            let second = try pop()
            stack.append(arena.tuple([try pop(), second]))
        case 0x87:  // TUPLE3
            let third = try pop(), second = try pop()
            stack.append(arena.tuple([try pop(), second, third]))
        case 0x6C: stack.append(arena.list(try popMark()))  // LIST
        case 0x64: stack.append(arena.dict(try pairs(try popMark())))  // DICT
        case 0x61:  // APPEND
            let item = try pop()
            try list(on: stack.last).items.append(item)
        case 0x65:  // APPENDS
            let items = try popMark()
            try list(on: stack.last).items.append(contentsOf: items)
        case 0x73:  // SETITEM
            let value = try pop(), key = try pop()
            try dict(on: stack.last).pairs.append((key, value))
        case 0x75:  // SETITEMS
            let items = try pairs(try popMark())
            try dict(on: stack.last).pairs.append(contentsOf: items)
        case 0x71: try memoize(Int(try reader.byte()))  // BINPUT
        case 0x72: try memoize(Int(try reader.uint32()))  // LONG_BINPUT
        case 0x94: try memoize(memo.count)  // MEMOIZE
        case 0x68: try recall(Int(try reader.byte()))  // BINGET
        case 0x6A: try recall(Int(try reader.uint32()))  // LONG_BINGET
        case 0x4A: stack.append(.int(Int(Int32(bitPattern: try reader.uint32()))))  // BININT
        case 0x4B: stack.append(.int(Int(try reader.byte())))  // BININT1
        case 0x4D: stack.append(.int(Int(try reader.uint16())))  // BININT2
        case 0x8A: stack.append(try long(Int(try reader.byte())))  // LONG1
        case 0x47:  // BINFLOAT: big-endian
            let bits = try reader.slice(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            stack.append(.float(Double(bitPattern: bits)))
        case 0x4E: stack.append(.none)  // NONE
        case 0x88: stack.append(.bool(true))  // NEWTRUE
        case 0x89: stack.append(.bool(false))  // NEWFALSE
        case 0x58: stack.append(.string(try text(Int(try reader.uint32()))))  // BINUNICODE
        case 0x8C: stack.append(.string(try text(Int(try reader.byte()))))  // SHORT_BINUNICODE
        case 0x8D: stack.append(.string(try text(try reader.int64())))  // BINUNICODE8
        case 0x54: stack.append(.string(try text(Int(try reader.uint32()))))  // BINSTRING
        case 0x55: stack.append(.string(try text(Int(try reader.byte()))))  // SHORT_BINSTRING
        case 0x42: stack.append(.bytes(try reader.bytes(Int(try reader.uint32()))))  // BINBYTES
        case 0x43: stack.append(.bytes(try reader.bytes(Int(try reader.byte()))))  // SHORT_BINBYTES
        case 0x8E: stack.append(.bytes(try reader.bytes(try reader.int64())))  // BINBYTES8
        case 0x63:  // GLOBAL "module\nname\n"
            let module = try line()
            stack.append(try global(module, try line()))
        case 0x93:  // STACK_GLOBAL
            guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                throw malformed("STACK_GLOBAL without two names")
            }
            stack.append(try global(module, name))
        case 0x52, 0x81:  // REDUCE, NEWOBJ
            let arguments = try pop(), callable = try pop()
            guard case .global(let name) = callable, case .tuple(let values) = arguments else {
                throw malformed("REDUCE of something not a global applied to a tuple")
            }
            stack.append(try reduce(name, values.items))
        case 0x62: _ = try pop()  // BUILD: the state of an object segview does not rebuild
        case 0x51: stack.append(try persistentLoad(try pop()))  // BINPERSID
        case 0x30: _ = try pop()  // POP
        case 0x31: _ = try popMark()  // POP_MARK
        case 0x32:  // DUP
            guard let top = stack.last else { throw malformed("DUP of an empty stack") }
            stack.append(top)
        default:
            let reason = String(format: "pickle opcode 0x%02X at byte %d is not one state dicts use", opcode, offset)
            throw CheckpointError.unsupported(reason)
        }
    }

    private mutating func memoize(_ index: Int) throws {
        guard let top = stack.last else { throw malformed("memoizes an empty stack") }
        memo[index] = top
    }

    private mutating func recall(_ index: Int) throws {
        guard let value = memo[index] else { throw malformed("recalls memo \(index), never stored") }
        stack.append(value)
    }

    /// A two's-complement little-endian integer of `count` bytes.
    private mutating func long(_ count: Int) throws -> PickleValue {
        let bytes = try reader.slice(count)
        guard count <= 8 else { return .largeInt(Array(bytes)) }
        guard count > 0 else { return .int(0) }
        var value = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if count < 8 && bytes[count - 1] & 0x80 != 0 { value |= ~UInt64(0) << (8 * count) }  // sign-extend
        return .int(Int(Int64(bitPattern: value)))
    }

    private func list(on value: PickleValue?) throws -> PickleList {
        guard case .list(let list) = value else { throw malformed("APPEND to something not a list") }
        return list
    }

    private func dict(on value: PickleValue?) throws -> PickleDict {
        guard case .dict(let dict) = value else { throw malformed("SETITEM on something not a dict") }
        return dict
    }

    private func pairs(_ items: [PickleValue]) throws -> [(key: PickleValue, value: PickleValue)] {
        guard items.count % 2 == 0 else { throw malformed("a dict with a key and no value") }
        return stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
    }

    private func global(_ module: String, _ name: String) throws -> PickleValue {
        let qualified = "\(module).\(name)"
        guard Self.allowedGlobals.contains(qualified) else { throw CheckpointError.forbiddenGlobal(qualified) }
        return .global(qualified)
    }

    /// What calling an allowed global would give, modelled: never executed.
    private func reduce(_ name: String, _ arguments: [PickleValue]) throws -> PickleValue {
        switch name {
        case "collections.OrderedDict":
            guard arguments.isEmpty else { throw malformed("OrderedDict with arguments") }
            return arena.dict()
        case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
            guard arguments.count >= 4, case .storage(let storage) = arguments[0], case .int(let offset) = arguments[1],
                  let shape = integers(arguments[2]), let strides = integers(arguments[3]), shape.count == strides.count
            else { throw malformed("\(name) with arguments that are not a storage, an offset, a size and strides") }
            return .tensor(TensorReference(storage: storage, offset: offset, shape: shape, strides: strides))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard case .tensor = arguments.first else { throw malformed("\(name) of something not a tensor") }
            return arguments[0]
        case "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "_codecs.encode",
             "argparse.Namespace":
            return .opaque(name)
        default:
            throw malformed("\(name) cannot be called")
        }
    }

    private func integers(_ value: PickleValue) -> [Int]? {
        guard case .tuple(let tuple) = value else { return nil }
        let items = tuple.items
        let values = items.compactMap { item -> Int? in
            if case .int(let value) = item { return value }
            return nil
        }
        return values.count == items.count ? values : nil
    }
}
