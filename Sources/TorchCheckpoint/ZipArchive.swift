/// The entries of a zip archive as `torch.save` writes them (stored, not compressed), found through
/// the central directory (zip64 included). Nothing is extracted: an entry is a byte range of the
/// archive, and every offset and size is checked against it.
struct ZipArchive {
    let entries: [String: Range<Int>]

    /// Entries in a checkpoint: data.pkl, version, byteorder and one per storage.
    static let maximumEntries = 1 << 20

    init(_ bytes: UnsafeRawBufferPointer) throws {
        var reader = ByteReader(bytes)
        let directory = try Self.centralDirectory(&reader)
        var entries: [String: Range<Int>] = [:]
        var offset = directory.offset
        for _ in 0..<directory.count {
            try reader.seek(offset)
            guard try reader.uint32() == 0x0201_4b50 else {
                throw CheckpointError.corrupt("a central directory entry is broken")
            }
            try reader.skip(6)
            let method = try reader.uint16()
            try reader.skip(8)
            var compressedSize = Int(try reader.uint32()), size = Int(try reader.uint32())
            let nameLength = Int(try reader.uint16()), extraLength = Int(try reader.uint16())
            let commentLength = Int(try reader.uint16())
            try reader.skip(8)
            var localOffset = Int(try reader.uint32())
            let name = String(decoding: try reader.bytes(nameLength), as: UTF8.self)
            // Sizes and offsets too large for 32 bits are in the zip64 extra field, in this order.
            var extra = ByteReader(try reader.slice(extraLength))
            while extra.remaining >= 4 {
                let id = try extra.uint16(), length = Int(try extra.uint16())
                var field = ByteReader(try extra.slice(length))
                guard id == 0x0001 else { continue }
                if size == 0xFFFF_FFFF { size = try field.int64() }
                if compressedSize == 0xFFFF_FFFF { compressedSize = try field.int64() }
                if localOffset == 0xFFFF_FFFF { localOffset = try field.int64() }
            }
            offset = reader.position + commentLength
            guard !name.hasPrefix("/") && !name.split(separator: "/").contains("..") && !name.contains("\\") else {
                throw CheckpointError.corrupt("entry '\(name)' has a path that leaves the archive")
            }
            guard method == 0 else {
                let reason = "entry '\(name)' is compressed (method \(method)); torch.save stores them"
                throw CheckpointError.corrupt(reason)
            }
            guard compressedSize == size else { throw CheckpointError.corrupt("entry '\(name)' has two sizes") }
            try reader.seek(localOffset)
            guard try reader.uint32() == 0x0403_4b50 else {
                throw CheckpointError.corrupt("entry '\(name)' points to no local header")
            }
            try reader.skip(22)
            let localName = Int(try reader.uint16()), localExtra = Int(try reader.uint16())
            try reader.skip(localName + localExtra)
            let start = reader.position
            guard size <= bytes.count - start else {
                throw CheckpointError.corrupt("entry '\(name)' declares \(size) bytes past the end of the file")
            }
            entries[name] = start..<start + size
        }
        self.entries = entries
    }

    /// Where the central directory starts and how many entries it has, from the end-of-directory
    /// record (and its zip64 version when the counts overflow 16 or 32 bits).
    private static func centralDirectory(_ reader: inout ByteReader) throws -> (offset: Int, count: Int) {
        let size = reader.count
        guard size >= 22 else { throw CheckpointError.corrupt("too short for a zip archive") }
        // The record is 22 bytes plus a comment of at most 65535.
        var position = size - 22
        while reader.peekUInt32(at: position) != 0x0605_4b50 {
            guard position > max(0, size - 22 - 65535) else {
                throw CheckpointError.corrupt("no end of the zip directory (a truncated file?)")
            }
            position -= 1
        }
        try reader.seek(position + 10)
        var count = Int(try reader.uint16())
        try reader.skip(4)
        var offset = Int(try reader.uint32())
        if count == 0xFFFF || offset == 0xFFFF_FFFF {
            guard position >= 20, reader.peekUInt32(at: position - 20) == 0x0706_4b50 else {
                throw CheckpointError.corrupt("a zip64 archive without its locator")
            }
            try reader.seek(position - 12)
            try reader.seek(try reader.int64())
            guard try reader.uint32() == 0x0606_4b50 else {
            throw CheckpointError.corrupt("broken zip64 directory record")
        }
            try reader.skip(28)
            count = try reader.int64()
            try reader.skip(8)
            offset = try reader.int64()
        }
        guard count <= maximumEntries else { throw CheckpointError.corrupt("\(count) zip entries") }
        return (offset, count)
    }
}

/// Little-endian reads from a byte buffer, each checked against its end.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    private(set) var position = 0

    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    var count: Int { buffer.count }
    var remaining: Int { buffer.count - position }

    mutating func seek(_ offset: Int) throws {
        guard offset >= 0 && offset <= buffer.count else {
            throw CheckpointError.corrupt("offset \(offset) is past the end of the file (\(buffer.count) bytes)")
        }
        position = offset
    }

    mutating func skip(_ count: Int) throws { try seek(position + count) }

    mutating func slice(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0 && count <= remaining else {
            throw CheckpointError.corrupt("\(count) bytes wanted at byte \(position), \(remaining) left")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: buffer[position..<position + count])
    }

    mutating func bytes(_ count: Int) throws -> [UInt8] { Array(try slice(count)) }

    mutating func byte() throws -> UInt8 { try slice(1)[0] }

    mutating func uint16() throws -> UInt16 { UInt16(littleEndian: try slice(2).loadUnaligned(as: UInt16.self)) }

    mutating func uint32() throws -> UInt32 { UInt32(littleEndian: try slice(4).loadUnaligned(as: UInt32.self)) }

    /// A 64-bit count or offset, which must fit an Int and be non-negative.
    mutating func int64() throws -> Int {
        let value = Int64(littleEndian: try slice(8).loadUnaligned(as: Int64.self))
        guard value >= 0 else { throw CheckpointError.corrupt("a negative size or offset at byte \(position - 8)") }
        return Int(value)
    }

    func peekUInt32(at offset: Int) -> UInt32? {
        guard offset >= 0 && offset + 4 <= buffer.count else { return nil }
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
