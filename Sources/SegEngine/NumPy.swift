import Foundation

/// NumPy `.npy` (format 1.0) for float32 arrays: logits handed to Python, fixtures read back.
public enum NumPyFile {
    public enum Error: Swift.Error, CustomStringConvertible {
        case malformed(String)
        public var description: String {
            switch self { case .malformed(let why): return "not a float32 .npy file: \(why)" }
        }
    }

    /// The bytes of a little-endian float32 C-order array.
    public static func encode(_ values: UnsafeBufferPointer<Float>, shape: [Int]) -> Data {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        // Magic (6) + version (2) + length (2) + header + newline is padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(buffer: values))
        return data
    }

    public static func encode(_ tensor: Tensor) -> Data {
        encode(UnsafeBufferPointer(start: tensor.data, count: tensor.count), shape: tensor.shape)
    }

    /// Reads a float32 array and its shape.
    public static func decode(_ data: Data) throws -> (values: [Float], shape: [Int]) {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw Error.malformed("bad magic")
        }
        let major = bytes[6]
        let headerStart = major == 1 ? 10 : 12
        let length = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        guard bytes.count >= headerStart + length,
              let header = String(bytes: bytes[headerStart..<headerStart + length], encoding: .ascii) else {
            throw Error.malformed("truncated header")
        }
        guard header.contains("'<f4'") else { throw Error.malformed("dtype is not <f4") }
        guard header.contains("'fortran_order': False") else { throw Error.malformed("Fortran order") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw Error.malformed("no shape")
        }
        let shape = header[open.upperBound..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let start = headerStart + length
        guard bytes.count - start == count * 4 else { throw Error.malformed("expected \(count) values") }
        let values = bytes[start...].withUnsafeBytes { raw in
            (0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) }
        }
        return (values, shape)
    }
}
