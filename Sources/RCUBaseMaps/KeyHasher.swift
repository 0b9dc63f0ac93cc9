/// Seeded hashing of fixed-size byte keys.
///
/// A folded 64×64→128-bit multiply per 8-byte word (the wyhash/folded-multiply family):
/// a handful of cycles for an 8-byte key, good avalanche in the low bits (the bucket
/// index) and the high bits (rculfhash's split order). Each map draws its own random seed,
/// so an attacker who does not know it cannot aim keys at one bucket (hash flooding).
@usableFromInline
struct KeyHasher: Sendable {
    @usableFromInline let seed: UInt64
    /// `seed ^ k0`, what the 8- and 4-byte keys' step mixes in (precomputed: two
    /// instructions fewer a lookup).
    @usableFromInline let seedK0: UInt64

    @usableFromInline static let k0: UInt64 = 0xA076_1D64_78BD_642F
    @usableFromInline static let k1: UInt64 = 0xE703_7ED1_A0B4_28DB

    init(seed: UInt64) {
        self.seed = seed
        seedK0 = seed ^ Self.k0
    }

    init() {
        var generator = SystemRandomNumberGenerator()
        self.init(seed: generator.next())
    }

    @inlinable @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// The hash of `count` bytes at `bytes`.
    @inlinable @inline(__always)
    func hash(_ bytes: UnsafeRawPointer, count: Int) -> UInt64 {
        if count == 8 {
            let word = bytes.loadUnaligned(as: UInt64.self)
            return Self.fold(word ^ seedK0, Self.k1 ^ 8)
        }
        if count == 4 {
            // 4-byte keys (eBPF's `u32` indices and ids) in one load, as 8-byte ones: the
            // general path's tail gathered them byte by byte, about 60 instructions.
            let word = UInt64(bytes.loadUnaligned(as: UInt32.self))
            return Self.fold(word ^ seedK0, Self.k1 ^ 4)
        }
        var h = seed ^ (UInt64(truncatingIfNeeded: count) &* Self.k1)
        var offset = 0
        while offset + 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            h = Self.fold(h ^ word ^ Self.k0, Self.k1)
            offset += 8
        }
        if offset < count {
            var tail: UInt64 = 0
            for index in offset..<count {
                tail |= UInt64(bytes.load(fromByteOffset: index, as: UInt8.self)) << (8 * UInt64(index - offset))
            }
            h = Self.fold(h ^ tail ^ Self.k0, Self.k1)
        }
        return Self.fold(h, Self.k0 ^ 0x5555_5555_5555_5555)
    }
}

/// Compares `count` bytes for equality, with fast paths for 8- and 4-byte keys.
@inlinable @inline(__always)
func keysEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
    switch count {
    case 8: return a.loadUnaligned(as: UInt64.self) == b.loadUnaligned(as: UInt64.self)
    case 16:
        return a.loadUnaligned(as: UInt64.self) == b.loadUnaligned(as: UInt64.self)
            && a.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    case 4: return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
    default: return memcmp(a, b, count) == 0
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
