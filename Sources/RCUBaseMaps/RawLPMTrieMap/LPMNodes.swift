import CRCUMapsShim
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
/// Two kinds — a *compressed* node (bitmaps and rank counting, for the sparse nodes, which
/// are most of them) and a *direct-indexed* node (256 slots, for the root and dense nodes:
/// one cache line per step instead of two). The layout is shared with the readers' walk in
/// C (`rcumaps_lpm_longest_match`, CRCUMapsShim), whose header states it too.
///
/// ```
/// Compressed:
///   0 ..< 32   childBits  4 × UInt64   bit s set: slot s leads to a child node
///  32 ..< 64   runBits    4 × UInt64   bit s set: a run of slots with one best entry starts at s
///                                      (bit 0 always set)
///  64          depth, childCount, runCount, ownCount: 4 × UInt16
///  72          childBase, runBase: 4 × UInt8 each, the set bits of the bitmap's words
///              before word w (so a rank is one population count, not up to four)
///  80          path: the data bytes 0 ..< depth every prefix below shares, padded to 8
///  then        children: childCount child words, in slot order
///  then        runs: runCount entry addresses (0: no prefix of this node covers the run)
///  then        own: ownCount entry addresses, the prefixes this node holds (for queries
///              whose prefix length ends inside this stride, and for nothing else)
/// Direct-indexed:
///   0 ..< 64   unused (zero)
///  64          depth | 0x8000, childCount, 0, ownCount: 4 × UInt16; 72 ..< 80 zero
///  80          path, padded to 8
///  then        from the next multiple of 16: 256 slots of 16 bytes, {child word (0: no
///              child), the slot's best entry (0: none)}
///  then        own: ownCount entry addresses
/// ```
///
/// A *child word* is the child block's address (blocks are 64-byte aligned) with, in its
/// low 6 bits: bit 0 set when the child is direct-indexed, bits 1...5 the strides skipped,
/// `min(childDepth - depth - 1, 31)` (31: read the child's depth field). A reader so knows
/// which byte indexes the child, and its kind, before the child's first cache line arrives.
///
/// A node at depth `d` holds the prefixes of lengths `8d + 1 ... 8d + 8` (the root also
/// `/0`) whose first `8d` bits are its path. A slot's *best* entry is the longest of them
/// that covers the slot's 8 bits. A child may sit deeper than `d + 1` (path compression: the
/// nodes in between held no prefix and one child); a reader then compares the skipped bytes
/// with the child's path. The root is always direct-indexed (4 KiB); another node is when
/// its child words and runs number at least ``directThreshold``.
///
/// Invariant: after its publication a node changes in one way only: a writer may store, with
/// release ordering, a new child word into one of its child slots (a change below a node
/// whose own layout is unchanged); readers load child slots with acquire ordering. All
/// else — bitmaps, counts, path, runs, best entries, own prefixes — is immutable; a change to
/// them publishes a new copy of the node.
enum LPMNode {
    static let headerSize = Int(RCUMAPS_LPM_HEADER_SIZE)
    static let directFlag = Int(RCUMAPS_LPM_DIRECT_FLAG)
    static let farDelta = Int(RCUMAPS_LPM_FAR_DELTA)
    /// Child words plus runs from which a non-root node is direct-indexed: its compressed
    /// form would take at least 1 KiB, a quarter of the direct one's slots.
    static let directThreshold = 128

    @inline(__always) static func depth(_ node: UnsafeRawPointer) -> Int {
        Int(node.load(fromByteOffset: 64, as: UInt16.self)) & ~directFlag
    }
    @inline(__always) static func isDirect(_ node: UnsafeRawPointer) -> Bool {
        Int(node.load(fromByteOffset: 64, as: UInt16.self)) & directFlag != 0
    }
    @inline(__always) static func path(_ node: UnsafeRawPointer) -> UnsafeRawPointer { node + headerSize }
    /// A compressed node's child words (the path's end).
    @inline(__always) static func children(_ node: UnsafeRawPointer, depth: Int) -> UnsafeRawPointer {
        node + headerSize + ((depth + 7) & ~7)
    }
    /// A direct-indexed node's 256 slots of 16 bytes.
    @inline(__always) static func directSlots(_ node: UnsafeRawPointer, depth: Int) -> UnsafeRawPointer {
        node + ((headerSize + ((depth + 7) & ~7) + 15) & ~15)
    }

    /// The child bitmap's set bits strictly below `slot`, and whether `slot`'s bit is set
    /// (compressed nodes).
    @inline(__always)
    static func childRank(_ node: UnsafeRawPointer, _ slot: Int) -> (below: Int, isSet: Bool) {
        let word = slot &>> 6
        let bit = UInt64(slot & 63)
        let current = node.load(fromByteOffset: word &<< 3, as: UInt64.self)
        let base = Int(node.load(fromByteOffset: 72 &+ word, as: UInt8.self))
        return (base &+ (current & ((1 &<< bit) &- 1)).nonzeroBitCount, (current &>> bit) & 1 != 0)
    }

    /// The atomic child word that `slot` of a published node leads through, or nil when the
    /// slot has no child. The one field of a node that changes after publication.
    static func childSlot(_ node: UnsafeMutableRawPointer, depth: Int, slot: Int) -> UnsafeMutablePointer<Atomic<UInt>>? {
        if isDirect(node) {
            return (UnsafeMutableRawPointer(mutating: directSlots(node, depth: depth)) + 16 &* slot)
                .assumingMemoryBound(to: Atomic<UInt>.self)
        }
        let (index, isSet) = childRank(node, slot)
        guard isSet else { return nil }
        return (UnsafeMutableRawPointer(mutating: children(node, depth: depth)) + 8 &* index)
            .assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The child word of a slot of a node at `depth` that leads to `child`, a block at
    /// `childDepth`.
    static func childWord(_ child: UnsafeMutableRawPointer, depth: Int, childDepth: Int) -> UInt {
        let address = UInt(bitPattern: child)
        _rcumapsPrecondition(address & UInt(RCUMAPS_LPM_TAG_MASK) == 0, "LPM trie: a node block is not 64-byte aligned")
        let delta = UInt(min(childDepth - depth - 1, farDelta))
        return address | delta &<< 1 | (isDirect(child) ? 1 : 0)
    }

    /// Bytes of a compressed node at `depth` with the given counts.
    static func byteCount(depth: Int, children: Int, runs: Int, own: Int) -> Int {
        headerSize + ((depth + 7) & ~7) + 8 * (children + runs + own)
    }

    /// Bytes of a direct-indexed node at `depth` holding `own` prefixes.
    static func directByteCount(depth: Int, own: Int) -> Int {
        ((headerSize + ((depth + 7) & ~7) + 15) & ~15) + 16 * 256 + 8 * own
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
