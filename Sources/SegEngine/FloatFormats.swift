/// Conversions from the half-precision formats model files may store.
public enum FloatFormats {
    /// IEEE 754 binary16 to float32, subnormals, infinities and NaN included.
    @inline(__always)
    public static func float(fromHalf bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int(bits >> 10) & 0x1f
        let mantissa = UInt32(bits & 0x3ff)
        switch exponent {
        case 0:
            // Subnormal (or zero): mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        case 0x1f:
            return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
        default:
            return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
        }
    }

    /// bfloat16 is the upper half of a float32.
    @inline(__always)
    public static func float(fromBFloat16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }
}

extension FloatFormats {
    /// `count` little-endian values of a safetensors dtype (F64, F32, F16, BF16) as float32; nil
    /// for any other dtype.
    public static func floats(_ raw: UnsafeRawPointer, count: Int, dtype: String) -> [Float]? {
        func elements<Bits: FixedWidthInteger>(_: Bits.Type, _ convert: (Bits) -> Float) -> [Float] {
            (0..<count).map {
                convert(raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<Bits>.size, as: Bits.self).littleEndian)
            }
        }
        switch dtype {
        case "F64": return elements(UInt64.self) { Float(Double(bitPattern: $0)) }
        case "F32": return elements(UInt32.self, Float.init(bitPattern:))
        case "F16": return elements(UInt16.self, float(fromHalf:))
        case "BF16": return elements(UInt16.self, float(fromBFloat16:))
        default: return nil
        }
    }
}
