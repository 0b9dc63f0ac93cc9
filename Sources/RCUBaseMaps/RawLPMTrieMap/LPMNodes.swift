import RCUEpoch
import Synchronization

// The memory the readers of an LPM trie walk: immutable blocks, published through one root
// pointer and retired through the epoch. The writer-side bookkeeping that decides what the
// blocks hold is in LPMWriterTree.swift.

/// The layout of one stored prefix (an *entry*): `prefixLen` (4 bytes, host order), the key's
/// data bytes as the update gave them (host bits included, as Linux keeps them), then the
/// value, 8-byte aligned.
///
/// Invariant: an entry's prefix and data never change after it is published; its value
/// changes only through helper-mode writes in place. A replace publishes a new entry and
/// retires the old one, so a reader that found an entry may copy from it until its section
/// ends.
struct LPMEntryLayout: Sendable {
    let dataSize: Int
    let valueSize: Int
    /// Offset of the value: `round_up(4 + dataSize, 8)`.
    let valueOffset: Int
    /// Bytes per entry block.
    var byteCount: Int { valueOffset + valueSize }

    init(dataSize: Int, valueSize: Int) {
        self.dataSize = dataSize
        self.valueSize = valueSize
        valueOffset = (4 + dataSize + 7) & ~7
    }

    @inline(__always) static func prefixLen(_ entry: UnsafeRawPointer) -> Int { Int(entry.load(as: UInt32.self)) }
    @inline(__always) static func data(_ entry: UnsafeRawPointer) -> UnsafeRawPointer { entry + 4 }
    @inline(__always) func value(_ entry: UnsafeRawPointer) -> UnsafeRawPointer { entry + valueOffset }
}

/// The layout of a published node: one 8-bit stride of the key (byte `depth` of the data).
///
/// ```
///   0 ..< 32   childBits  4 × UInt64   bit s set: slot s leads to a child node
///  32 ..< 64   runBits    4 × UInt64   bit s set: a run of slots with one best entry starts at s
///                                      (bit 0 always set)
///  64          depth, childCount, runCount, ownCount: 4 × UInt16
///  72          childBase, runBase: 4 × UInt8 each, the set bits of the bitmap's words
///              before word w (so a rank is one population count, not up to four)
///  80          path: the data bytes 0 ..< depth every prefix below shares, padded to 8
///  then        children: childCount node addresses, in slot order
///  then        runs: runCount entry addresses (0: no prefix of this node covers the run)
///  then        own: ownCount entry addresses, the prefixes this node holds (for queries
///              whose prefix length ends inside this stride, and for nothing else)
/// ```
///
/// A node at depth `d` holds the prefixes of lengths `8d + 1 ... 8d + 8` (the root also
/// `/0`) whose first `8d` bits are its path. A slot's *best* entry is the longest of them
/// that covers the slot's 8 bits. A child may sit deeper than `d + 1` (path compression: the
/// nodes in between held no prefix and one child); a reader then compares the skipped bytes
/// with the child's path.
///
/// Invariant: after its publication a node changes in one way only: a writer may store, with
/// release ordering, a new subtree's address into one of its child slots (a change below a
/// node whose own layout is unchanged); readers load child slots with acquire ordering. All
/// else — bitmaps, counts, path, runs, own prefixes — is immutable; a change to them
/// publishes a new copy of the node.
enum LPMNode {
    static let headerSize = 80

    @inline(__always) static func depth(_ node: UnsafeRawPointer) -> Int { Int(node.load(fromByteOffset: 64, as: UInt16.self)) }
    @inline(__always) static func childCount(_ node: UnsafeRawPointer) -> Int { Int(node.load(fromByteOffset: 66, as: UInt16.self)) }
    @inline(__always) static func runCount(_ node: UnsafeRawPointer) -> Int { Int(node.load(fromByteOffset: 68, as: UInt16.self)) }
    @inline(__always) static func ownCount(_ node: UnsafeRawPointer) -> Int { Int(node.load(fromByteOffset: 70, as: UInt16.self)) }
    @inline(__always) static func path(_ node: UnsafeRawPointer) -> UnsafeRawPointer { node + headerSize }
    @inline(__always) static func children(_ node: UnsafeRawPointer, depth: Int) -> UnsafeRawPointer {
        node + headerSize + ((depth + 7) & ~7)
    }

    /// The child bitmap's set bits strictly below `slot`, and whether `slot`'s bit is set:
    /// one population count of the slot's word plus the stored count of the words before it.
    /// (Baseline x86-64 has no POPCNT instruction: each count is a dozen instructions.)
    @inline(__always)
    static func childRank(_ node: UnsafeRawPointer, _ slot: Int) -> (below: Int, isSet: Bool) {
        let word = slot &>> 6
        let bit = UInt64(slot & 63)
        let current = node.load(fromByteOffset: word &<< 3, as: UInt64.self)
        let base = Int(node.load(fromByteOffset: 72 &+ word, as: UInt8.self))
        return (base &+ (current & ((1 &<< bit) &- 1)).nonzeroBitCount, (current &>> bit) & 1 != 0)
    }

    /// The index of the run holding `slot`: the run bitmap's set bits at or below it, less
    /// one (bit 0 is always set).
    @inline(__always)
    static func runIndex(_ node: UnsafeRawPointer, _ slot: Int) -> Int {
        let word = slot &>> 6
        let bit = UInt64(slot & 63)
        let current = node.load(fromByteOffset: 32 &+ word &<< 3, as: UInt64.self)
        let base = Int(node.load(fromByteOffset: 76 &+ word, as: UInt8.self))
        return base &+ (current & ((2 &<< bit) &- 1)).nonzeroBitCount &- 1
    }

    /// Child slot `index` of a node's children: an atomic word, since a writer may store a
    /// new subtree into it while readers walk the node (the one field that changes after
    /// publication).
    @inline(__always)
    static func childSlot(_ children: UnsafeMutableRawPointer, _ index: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        (children + 8 &* index).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// Bytes of a node at `depth` with the given counts.
    static func byteCount(depth: Int, children: Int, runs: Int, own: Int) -> Int {
        headerSize + ((depth + 7) & ~7) + 8 * (children + runs + own)
    }
}

/// Whether the first `length` bits of `a` and `b` are equal.
@inline(__always)
func lpmBitsEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ length: Int) -> Bool {
    let whole = length &>> 3
    if whole > 0, memcmp(a, b, whole) != 0 { return false }
    let rest = length & 7
    if rest == 0 { return true }
    let mask = UInt8(truncatingIfNeeded: 0xFF00 &>> rest)
    return (a.load(fromByteOffset: whole, as: UInt8.self) ^ b.load(fromByteOffset: whole, as: UInt8.self)) & mask == 0
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
