import RCUEpoch

/// The writers' view of an LPM trie: one node per 8-bit stride that holds prefixes or leads
/// to some, with the prefixes it holds and its children. Only the thread holding the map's
/// writer lock touches it. It decides what each published node (``LPMNode``) holds and
/// answers the ordered questions (get-next-key) that the published nodes are not built for.
///
/// Invariants (between operations): every node but the root holds a prefix or has a child;
/// `own` and `children` are sorted; `published` is the node's current block when the node is
/// *significant* (the root, or it holds a prefix, or it has two children or more) and nil
/// otherwise — readers skip insignificant nodes (path compression). Its mutable fields skip
/// Swift's dynamic exclusivity checks (`@exclusivity(unchecked)`): one thread at a time, the
/// lock holder, touches them, and the checks cost a third of a rebuild.
final class LPMWriterNode {
    /// The stride: this node holds prefix lengths `8 * depth + 1 ... 8 * depth + 8` (the root
    /// also 0).
    let depth: Int
    /// Data bytes `0 ..< depth` shared by everything below.
    let path: [UInt8]
    /// Prefixes held here, by ``LPMWriterNode/ownIndex(relativeLength:byte:)``, sorted.
    @exclusivity(unchecked) var own: [(index: Int, entry: UnsafeMutableRawPointer)] = []
    /// Children by slot (byte `depth` of the data), sorted.
    @exclusivity(unchecked) var children: [(slot: UInt8, node: LPMWriterNode)] = []
    /// The published block while significant.
    @exclusivity(unchecked) var published: UnsafeMutableRawPointer?
    /// The block built for this node by the operation in progress, not yet published (nil
    /// between operations).
    @exclusivity(unchecked) var pending: UnsafeMutableRawPointer?

    init(depth: Int, path: [UInt8]) {
        self.depth = depth
        self.path = path
    }

    var isSignificant: Bool { depth == 0 || !own.isEmpty || children.count >= 2 }
    var isEmpty: Bool { own.isEmpty && children.isEmpty }

    /// The index of a prefix of `relativeLength` (0...8) bits whose stride byte is `byte`:
    /// `(1 << r) + (byte >> (8 - r))`, in 1...511; ordering by index orders by length.
    static func ownIndex(relativeLength r: Int, byte: UInt8) -> Int {
        (1 << r) + (r == 0 ? 0 : Int(byte) >> (8 - r))
    }

    func ownPosition(_ index: Int) -> (position: Int, found: Bool) {
        var low = 0, high = own.count
        while low < high {
            let mid = (low + high) / 2
            if own[mid].index < index { low = mid + 1 } else { high = mid }
        }
        return (low, low < own.count && own[low].index == index)
    }

    func childPosition(_ slot: UInt8) -> (position: Int, found: Bool) {
        var low = 0, high = children.count
        while low < high {
            let mid = (low + high) / 2
            if children[mid].slot < slot { low = mid + 1 } else { high = mid }
        }
        return (low, low < children.count && children[low].slot == slot)
    }

    func child(_ slot: UInt8) -> LPMWriterNode? {
        let (position, found) = childPosition(slot)
        return found ? children[position].node : nil
    }

    func entry(_ index: Int) -> UnsafeMutableRawPointer? {
        let (position, found) = ownPosition(index)
        return found ? own[position].entry : nil
    }

    func setEntry(_ index: Int, _ entry: UnsafeMutableRawPointer?) {
        let (position, found) = ownPosition(index)
        switch (found, entry) {
        case (true, let entry?): own[position].entry = entry
        case (true, nil): own.remove(at: position)
        case (false, let entry?): own.insert((index, entry), at: position)
        case (false, nil): break
        }
    }

    func setChild(_ slot: UInt8, _ node: LPMWriterNode?) {
        let (position, found) = childPosition(slot)
        switch (found, node) {
        case (true, let node?): children[position].node = node
        case (true, nil): children.remove(at: position)
        case (false, let node?): children.insert((slot, node), at: position)
        case (false, nil): break
        }
    }

    // MARK: Postorder (get-next-key)

    // Linux returns keys in the postorder of its binary trie: at each bit the 0 side, then
    // the 1 side, then the node itself (descendants before ancestors). That is the
    // lexicographic order of each prefix's bits followed by a terminator that sorts after
    // both bit values. Within one stride, an item's place in it is a 9-digit base-3 number:
    // a prefix of r bits is its bits then 2 (the terminator); a child is its 8 bits then 1
    // (everything below it continues with a bit, so it sorts after the prefixes that branch
    // off to its left and before the prefix of all 8 of its bits).

    static let powersOf3: [Int] = (0...8).map { power in (0..<(8 - power)).reduce(1) { value, _ in value * 3 } }

    static func order(ofOwnIndex index: Int) -> Int {
        let r = Int.bitWidth - 1 - index.leadingZeroBitCount
        let bits = index - (1 << r)
        var key = 2 * powersOf3[r]
        for i in 0..<r where (bits >> (r - 1 - i)) & 1 == 1 { key += powersOf3[i] }
        return key
    }

    static func order(ofSlot slot: UInt8) -> Int {
        var key = 1
        for i in 0..<8 where (Int(slot) >> (7 - i)) & 1 == 1 { key += powersOf3[i] }
        return key
    }

    /// The first entry in postorder after position `after` of this stride (-1: the first).
    func first(after: Int) -> UnsafeMutableRawPointer? {
        var bestOrder = Int.max
        var bestEntry: UnsafeMutableRawPointer?
        var bestChild: LPMWriterNode?
        for (index, entry) in own {
            let order = Self.order(ofOwnIndex: index)
            if order > after, order < bestOrder { (bestOrder, bestEntry, bestChild) = (order, entry, nil) }
        }
        for (slot, node) in children {
            let order = Self.order(ofSlot: slot)
            if order > after, order < bestOrder { (bestOrder, bestEntry, bestChild) = (order, nil, node) }
        }
        if let bestChild { return bestChild.first(after: -1) }
        return bestEntry
    }

    /// The first entry in postorder after the prefix `length`/`data` (present or not).
    func successor(length: Int, data: UnsafeRawPointer) -> UnsafeMutableRawPointer? {
        let owner = length == 0 ? 0 : (length - 1) / 8
        let byte = data.load(fromByteOffset: depth, as: UInt8.self)
        if owner == depth {
            return first(after: Self.order(ofOwnIndex: Self.ownIndex(relativeLength: length - 8 * depth, byte: byte)))
        }
        if let child = child(byte), let found = child.successor(length: length, data: data) { return found }
        return first(after: Self.order(ofSlot: byte))
    }

    /// Every node of the subtree, for teardown.
    func forEachNode(_ body: (LPMWriterNode) -> Void) {
        body(self)
        for (_, child) in children { child.forEachNode(body) }
    }
}

/// Builds published blocks for writer nodes.
struct LPMNodeBuilder {
    let tag: PoolTag

    /// Where a reader arrives when it follows the slot leading to `node`: the node's block
    /// if it is significant (its `pending` one when rebuilt in this operation), else its
    /// only child's target.
    static func target(_ node: LPMWriterNode) -> UnsafeMutableRawPointer {
        var node = node
        while !node.isSignificant { node = node.children[0].node }
        return node.pending ?? node.published!
    }

    /// The child word (see ``LPMNode``) a node at `depth` stores for its child `node`.
    static func childWord(_ node: LPMWriterNode, depth: Int) -> UInt {
        let block = target(node)
        return LPMNode.childWord(block, depth: depth, childDepth: LPMNode.depth(block))
    }

    /// A new block for `node`, unpublished; nil when memory runs out. Direct-indexed for the
    /// root and when child words and runs number ``LPMNode/directThreshold`` or more.
    ///
    /// The best entry of each slot and the runs are worked out in two buffers on the stack.
    /// (They were arrays, allocated and grown on every build: with the loops' bounds checks,
    /// a fifth of the instructions of an insert into a trie of 20,000 routes. Finding the
    /// runs from the prefixes' bounds instead of slot by slot, a binary search of `own` per
    /// length per bound, cost more.)
    func build(_ node: LPMWriterNode) -> UnsafeMutableRawPointer? {
        withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: 512) { buffer in
            // Invariant: `buffer` holds 512 pointers: `best` the first 256, `runs` the rest.
            let best = UnsafeMutableBufferPointer(rebasing: buffer[0 ..< 256])
            let runs = UnsafeMutableBufferPointer(rebasing: buffer[256 ..< 512])
            best.initialize(repeating: nil)
            // The best entry per slot: shorter prefixes first, longer ones overwrite them
            // (`own` is sorted by index, which sorts by length).
            for (index, entry) in node.own {
                let r = Int.bitWidth - 1 - index.leadingZeroBitCount
                let start = (index - (1 << r)) << (8 - r)
                UnsafeMutableBufferPointer(rebasing: best[start ..< start + (1 << (8 - r))]).update(repeating: entry)
            }
            var runBits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            var runCount = 0
            for slot in 0..<256 where slot == 0 || best[slot] != best[slot &- 1] {
                setBit(&runBits, slot)
                runs.initializeElement(at: runCount, to: best[slot])
                runCount &+= 1
            }
            if node.depth == 0 || node.children.count + runCount >= LPMNode.directThreshold {
                return buildDirect(node, best: UnsafeBufferPointer(best))
            }
            return buildCompressed(node, runs: UnsafeBufferPointer(rebasing: runs[0 ..< runCount]), runBits: runBits)
        }
    }

    /// A compressed block for `node` (bitmaps and rank counting), whose runs of equal best
    /// entries are `runs`, starting at the slots set in `runBits`.
    private func buildCompressed(_ node: LPMWriterNode, runs: UnsafeBufferPointer<UnsafeMutableRawPointer?>,
                                 runBits: (UInt64, UInt64, UInt64, UInt64)) -> UnsafeMutableRawPointer? {
        var childBits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (slot, _) in node.children { setBit(&childBits, Int(slot)) }
        let size = LPMNode.byteCount(depth: node.depth, children: node.children.count, runs: runs.count, own: node.own.count)
        guard let block = EpochMemory.allocateCacheAligned(byteCount: size, tag: tag) else { return nil }
        // Initialise every byte before publication (the block is reachable by nobody yet).
        block.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        withUnsafeBytes(of: childBits) { block.copyMemory(from: $0.baseAddress!, byteCount: 32) }
        withUnsafeBytes(of: runBits) { (block + 32).copyMemory(from: $0.baseAddress!, byteCount: 32) }
        writeHeader(block, node, depthField: node.depth, runs: runs.count)
        withUnsafeBytes(of: (childBits, runBits)) { words in
            for (offset, first) in [(72, 0), (76, 4)] {
                var total = 0
                for word in 0..<4 {
                    block.storeBytes(of: UInt8(total), toByteOffset: offset + word, as: UInt8.self)
                    total += words.load(fromByteOffset: (first + word) * 8, as: UInt64.self).nonzeroBitCount
                }
            }
        }
        var cursor = UnsafeMutableRawPointer(mutating: LPMNode.children(block, depth: node.depth))
        for (_, child) in node.children {
            cursor.storeBytes(of: Self.childWord(child, depth: node.depth), as: UInt.self)
            cursor += 8
        }
        for run in runs {
            cursor.storeBytes(of: UInt(bitPattern: run), as: UInt.self)
            cursor += 8
        }
        storeOwn(node, at: cursor)
        return block
    }

    /// A direct-indexed block for `node`, whose per-slot best entries are `best`.
    private func buildDirect(_ node: LPMWriterNode, best: UnsafeBufferPointer<UnsafeMutableRawPointer?>) -> UnsafeMutableRawPointer? {
        let size = LPMNode.directByteCount(depth: node.depth, own: node.own.count)
        guard let block = EpochMemory.allocateCacheAligned(byteCount: size, tag: tag) else { return nil }
        // Initialise every byte before publication (the block is reachable by nobody yet).
        block.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        writeHeader(block, node, depthField: node.depth | LPMNode.directFlag, runs: 0)
        let slots = UnsafeMutableRawPointer(mutating: LPMNode.directSlots(block, depth: node.depth))
        for (slot, child) in node.children {
            (slots + 16 * Int(slot)).storeBytes(of: Self.childWord(child, depth: node.depth), as: UInt.self)
        }
        for slot in 0..<256 {
            (slots + 16 * slot + 8).storeBytes(of: UInt(bitPattern: best[slot]), as: UInt.self)
        }
        storeOwn(node, at: slots + 16 * 256)
        return block
    }

    /// Depth field, counts and path: the parts of the header both kinds share.
    private func writeHeader(_ block: UnsafeMutableRawPointer, _ node: LPMWriterNode, depthField: Int, runs: Int) {
        block.storeBytes(of: UInt16(depthField), toByteOffset: 64, as: UInt16.self)
        block.storeBytes(of: UInt16(node.children.count), toByteOffset: 66, as: UInt16.self)
        block.storeBytes(of: UInt16(runs), toByteOffset: 68, as: UInt16.self)
        block.storeBytes(of: UInt16(node.own.count), toByteOffset: 70, as: UInt16.self)
        node.path.withUnsafeBytes { if !$0.isEmpty { (block + LPMNode.headerSize).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
    }

    private func storeOwn(_ node: LPMWriterNode, at start: UnsafeMutableRawPointer) {
        var cursor = start
        for (_, entry) in node.own {
            cursor.storeBytes(of: entry, as: UnsafeMutableRawPointer.self)
            cursor += 8
        }
    }

    private func setBit(_ bits: inout (UInt64, UInt64, UInt64, UInt64), _ slot: Int) {
        let bit: UInt64 = 1 << UInt64(slot & 63)
        switch slot >> 6 {
        case 0: bits.0 |= bit
        case 1: bits.1 |= bit
        case 2: bits.2 |= bit
        default: bits.3 |= bit
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
