import CRCUMapsShim
import RCUBaseMaps
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A concurrent dictionary for any `Hashable` and `Sendable` keys and `Sendable` values:
/// what you reach for instead of `Mutex<[Key: Value]>` when it is read far more often than
/// written.
///
/// ```swift
/// let routes = RCUDictionary<String, Route>()
/// routes["10.0.0.0/8"] = route                     // from any thread
/// if let route = routes["10.0.0.0/8"] { use(route) }   // lock-free, from any thread or task
/// routes.insertIfAbsent(fallback, forKey: "default")
/// routes.update(forKey: "10.0.0.0/8") { old in old?.withMetric(5) }
/// ```
///
/// - Reads never lock, never write shared memory and never block: a lookup enters an epoch
///   section, finds the entry in a cache-line bucket (a 7-bit tag per slot filters the key
///   comparisons) and copies (retains) its value before leaving.
/// - Each entry is an immutable node. A write publishes a new node, or unlinks one, under
///   one of the dictionary's writer stripes (a lock per group of buckets): writers of keys
///   in different stripes do not contend.
/// - A replaced or removed node is released after a grace period — once no reader can
///   still be reading it — on the reclamation thread, where the key's and value's `deinit`s
///   (if any) run. ``/RCUEpoch/Epoch/barrier()-129j7`` waits for them.
/// - A value of one word — 8 bytes of plain data (`Int`, `Double`) or a class reference —
///   is replaced in place, with an atomic exchange, and costs no allocation; a reference
///   replaced so is released after a grace period too. Other values get a new node.
/// - Unbounded: the bucket array doubles when entries average four a bucket and halves
///   when they fall under one in two; the resize takes every stripe (writers wait for it,
///   readers do not: they keep reading the old array until they next look). An allocation
///   failure stops the program, as for `Dictionary`.
///
/// Values are copied out whole: a `struct` value is read as a consistent copy, a class
/// reference is retained before the section ends, so the object outlives any concurrent
/// removal for as long as the reader holds it.
///
/// Concurrency: every method may be called from any thread and from Swift concurrency
/// tasks; reads never wait, writes wait only for a writer of the same stripe, a resize, or
/// (rarely) reclamation that fell far behind (``/RCUEpoch/EpochRetireList/throttleIfBehind()``).
public final class RCUDictionary<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: the table pointer is atomic; tables change only under the stripe
    // locks and are retired through the epoch; nodes are immutable once published and
    // retired through the epoch; Key and Value are Sendable.

    /// The current bucket array (a ``DictionaryTable`` base address).
    @usableFromInline let table = Atomic<UInt>(0)
    /// Offsets of the key and the value in a node (the hash is at 0).
    @usableFromInline let keyOffset: Int
    @usableFromInline let valueOffset: Int
    @usableFromInline let nodes: EpochRetireList
    /// How a present key's value is replaced (see ``DictionaryValueStorage``).
    @usableFromInline let storage: DictionaryValueStorage
    /// References replaced in place (``DictionaryValueStorage/objectWord``), released after
    /// a grace period; `nil` for the other kinds of value.
    @usableFromInline let replacedObjects: EpochRetireList?
    @usableFromInline let layout: DictionaryNodeLayout<Key, Value>
    /// One lock per stripe; chain `i` belongs to stripe `i & stripeMask`.
    @usableFromInline let locks: BucketLocks
    /// Entries per stripe, one 64-byte line each (changed under the stripe's lock).
    @usableFromInline let counts: UnsafeMutableRawPointer
    @usableFromInline let stripeMask: Int
    /// Fewest buckets (at least one chain per stripe).
    @usableFromInline let minimumBuckets: Int
    /// Set while one writer resizes (the others do not queue up behind it).
    let resizing = Atomic<Bool>(false)

    /// An empty dictionary.
    ///
    /// - Parameter minimumCapacity: entries to size the bucket array for up front (it
    ///   grows and shrinks by itself anyway).
    public init(minimumCapacity: Int = 0) {
        layout = DictionaryNodeLayout()
        keyOffset = layout.keyOffset
        valueOffset = layout.valueOffset
        nodes = EpochRetireList(blockSize: layout.size, tag: PoolTag("rcud"), finalizer: layout)
        storage = DictionaryValueStorage(for: Value.self)
        replacedObjects = storage == .objectWord
            ? EpochRetireList(referencesWithTag: PoolTag("rcuo"), finalizer: DictionaryObjectReleaser()) : nil
        let cpus = Swift.max(1, Swift.min(64, sysconf(Int32(_SC_NPROCESSORS_CONF))))
        let stripes = Swift.max(16, Self.powerOfTwo(atLeast: 4 * cpus))
        stripeMask = stripes - 1
        minimumBuckets = stripes
        locks = BucketLocks(count: stripes)
        counts = UnsafeMutableRawPointer.allocate(byteCount: stripes * 64, alignment: 64)
        for stripe in 0..<stripes { (counts + stripe * 64).initializeMemory(as: Atomic<Int>.self, to: Atomic(0)) }
        let buckets = Swift.max(stripes, Self.powerOfTwo(atLeast: Swift.min(1 << 24, Swift.max(0, minimumCapacity) / 2)))
        guard let first = DictionaryTable.make(bucketCount: buckets) else {
            _rcumapsTrap("RCUDictionary: out of memory for \(buckets) buckets")
        }
        table.store(UInt(bitPattern: first.base), ordering: .releasing)
    }

    deinit {
        // No reader or writer holds the dictionary: retire every node and the table (a
        // reader that dropped it inside a section still reads them until the section ends).
        let current = currentTable
        current.forEachNode { nodes.retire(UnsafeMutableRawPointer(bitPattern: $0)!) }
        current.retire()
        nodes.flush()
        for stripe in 0...stripeMask { (counts + stripe * 64).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1) }
        counts.deallocate()
    }

    static func powerOfTwo(atLeast value: Int) -> Int {
        value <= 1 ? 1 : 1 << (Int.bitWidth - (value - 1).leadingZeroBitCount)
    }

    @usableFromInline var currentTable: DictionaryTable {
        DictionaryTable(UnsafeMutableRawPointer(bitPattern: table.load(ordering: .acquiring))!)
    }

    // MARK: Reading

    /// The value stored under `key`, or `nil`. Setting stores (`nil` removes).
    ///
    /// Concurrency: reading takes no lock: it copies (retains) the value inside an epoch
    /// section. Setting is ``updateValue(_:forKey:)`` / ``removeValue(forKey:)``.
    @inlinable
    public subscript(key: Key) -> Value? {
        get {
            let hash = key.hashValue
            Epoch.enter()
            defer { Epoch.exit() }
            guard let node = find(key, hash: hash) else { return nil }
            return value(of: node)
        }
        set {
            if let newValue { updateValue(newValue, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    /// The value stored under `key`, or `defaultValue()` if there is none (nothing is stored).
    @inlinable
    public subscript(key: Key, default defaultValue: @autoclosure () -> Value) -> Value {
        self[key] ?? defaultValue()
    }

    /// Whether `key` has a value.
    @inlinable
    public func contains(_ key: Key) -> Bool {
        let hash = key.hashValue
        Epoch.enter()
        defer { Epoch.exit() }
        return find(key, hash: hash) != nil
    }

    /// Entries in the dictionary: a snapshot under concurrent writes (exact when writers
    /// are quiet).
    public var count: Int {
        var total = 0
        for stripe in 0...stripeMask { total &+= stripeCount(stripe).pointee.load(ordering: .relaxed) }
        return Swift.max(0, total)
    }

    /// Whether the dictionary holds no entry (see ``count``).
    public var isEmpty: Bool { count == 0 }

    /// The node of `key`, or nil. Caller holds an epoch section.
    @inlinable @inline(__always)
    func find(_ key: Key, hash: Int) -> UInt? {
        var found: UInt?
        _ = currentTable.forEachCandidate(inChainOf: hash) { node in
            guard nodeHash(node) == hash, self.key(of: node) == key else { return false }
            found = node
            return true
        }
        return found
    }

    @inlinable @inline(__always)
    func nodeHash(_ node: UInt) -> Int { UnsafeRawPointer(bitPattern: node)!.load(as: Int.self) }

    @inlinable @inline(__always)
    func key(of node: UInt) -> Key {
        (UnsafeRawPointer(bitPattern: node)! + keyOffset).assumingMemoryBound(to: Key.self).pointee
    }

    /// A copy of `node`'s value (retained, for a reference). Caller holds an epoch section
    /// or the node's stripe.
    @inlinable @inline(__always)
    func value(of node: UInt) -> Value {
        if storage == .node {
            return (UnsafeRawPointer(bitPattern: node)! + valueOffset).assumingMemoryBound(to: Value.self).pointee
        }
        // One word replaced in place: read atomically (acquiring: the writer's release
        // publishes what a reference points to), then copied. A reference read here is
        // released, once replaced, only after a grace period: it is alive to be retained.
        return decode(valueWord(node).pointee.load(ordering: .acquiring))
    }

    /// The value word of a node whose value is one word (``DictionaryValueStorage/node`` excepted).
    @inlinable @inline(__always)
    func valueWord(_ node: UInt) -> UnsafeMutablePointer<Atomic<UInt>> {
        (UnsafeMutableRawPointer(bitPattern: node)! + valueOffset).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// A copy of the value whose bits are `bits` (a retained copy, for a reference; the
    /// bits keep their own).
    @inlinable @inline(__always)
    func decode(_ bits: UInt) -> Value {
        var word = bits
        return withUnsafeBytes(of: &word) { $0.load(as: Value.self) }
    }

    /// The bits of `value` for a value word, owning what the word owns (a retain, for a
    /// reference).
    @inlinable @inline(__always)
    func ownedBits(_ value: Value) -> UInt {
        let bits = unsafeBitCast(value, to: UInt.self)
        if storage == .objectWord {
            // The reference's own retain, which the word keeps (no `as AnyObject`: in a
            // specialised caller that cast still went through swift_dynamicCast).
            _ = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).retain()
        }
        return bits
    }

    /// Replaces `node`'s value in place (caller holds its stripe) and returns the value it
    /// displaced; a displaced reference is released after a grace period.
    @inlinable @inline(__always)
    func exchangeValue(of node: UInt, with value: Value) -> Value {
        let old = valueWord(node).pointee.exchange(ownedBits(value), ordering: .acquiringAndReleasing)
        let displaced = decode(old)
        if storage == .objectWord { replacedObjects!.retire(UnsafeMutableRawPointer(bitPattern: old)!) }
        return displaced
    }

    // MARK: Writing

    /// Stores `value` under `key`, replacing any value there.
    ///
    /// - Returns: The value replaced — exactly the one this write displaced — or `nil`
    ///   if the key was new.
    @inlinable @discardableResult
    public func updateValue(_ value: Value, forKey key: Key) -> Value? {
        let hash = key.hashValue
        if storage != .node {
            // A present key's one-word value is replaced in place: no node, no allocation.
            let replaced: Value?? = write(hash) { table, _ -> Value?? in
                guard let place = table.locate(hash, { self.nodeHash($0) == hash && self.key(of: $0) == key }) else {
                    return .none
                }
                return .some(exchangeValue(of: DictionaryTable.slot(place.bucket, place.slot).pointee.load(ordering: .relaxed),
                                           with: value))
            }
            if let replaced { return replaced }
        }
        let node = makeNode(key, value, hash: hash)
        return write(hash) { table, stripe -> Value? in
            if let place = table.locate(hash, { self.nodeHash($0) == hash && self.key(of: $0) == key }) {
                let old = DictionaryTable.slot(place.bucket, place.slot).pointee.exchange(node, ordering: .acquiringAndReleasing)
                let displaced = self.value(of: old)
                nodes.retire(UnsafeMutableRawPointer(bitPattern: old)!)
                return displaced
            }
            insert(node, hash: hash, into: table, stripe: stripe)
            return nil
        }
    }

    /// Stores `value` under `key` only if the key has no value.
    ///
    /// - Returns: `true` if it was stored; `false` if the key had a value (left as it was).
    ///
    /// Concurrency: of several threads inserting one absent key, exactly one gets `true`.
    @inlinable @discardableResult
    public func insertIfAbsent(_ value: Value, forKey key: Key) -> Bool {
        if contains(key) { return false }  // a present key costs no allocation
        let hash = key.hashValue
        let node = makeNode(key, value, hash: hash)
        let inserted = write(hash) { table, stripe -> Bool in
            if table.locate(hash, { self.nodeHash($0) == hash && self.key(of: $0) == key }) != nil { return false }
            insert(node, hash: hash, into: table, stripe: stripe)
            return true
        }
        if !inserted { layout.destroyUnpublished(node, in: nodes) }
        return inserted
    }

    /// Removes `key` and returns its value: of several threads removing one key, exactly
    /// one gets it.
    ///
    /// - Returns: The value removed, or `nil` if the key had none.
    @inlinable @discardableResult
    public func removeValue(forKey key: Key) -> Value? {
        let hash = key.hashValue
        return write(hash) { table, stripe -> Value? in
            guard let place = table.locate(hash, { self.nodeHash($0) == hash && self.key(of: $0) == key }) else {
                return nil
            }
            let node = DictionaryTable.slot(place.bucket, place.slot).pointee.load(ordering: .relaxed)
            table.clear(place)
            stripeCount(stripe).pointee.wrappingSubtract(1, ordering: .relaxed)
            let removed = self.value(of: node)
            nodes.retire(UnsafeMutableRawPointer(bitPattern: node)!)
            return removed
        }
    }

    /// Replaces the value of `key` with `newValue` only if it is currently `expected`
    /// (compare-and-replace).
    ///
    /// - Returns: `true` if it was replaced; `false` if the key had another value or none.
    ///
    /// Concurrency: linearizable: if it returns `true`, `expected` was the value at the
    /// moment `newValue` took its place.
    @inlinable
    public func replaceValue(forKey key: Key, ifCurrent expected: Value, with newValue: Value) -> Bool
    where Value: Equatable {
        let hash = key.hashValue
        if storage != .node {
            return write(hash) { table, _ -> Bool in
                guard let place = table.locate(hash, { self.nodeHash($0) == hash && self.key(of: $0) == key }) else {
                    return false
                }
                let node = DictionaryTable.slot(place.bucket, place.slot).pointee.load(ordering: .relaxed)
                guard self.value(of: node) == expected else { return false }
                _ = exchangeValue(of: node, with: newValue)
                return true
            }
        }
        let node = makeNode(key, newValue, hash: hash)
        let replaced = write(hash) { table, _ -> Bool in
            guard let place = table.locate(hash, { self.nodeHash($0) == hash && self.key(of: $0) == key }) else {
                return false
            }
            let slot = DictionaryTable.slot(place.bucket, place.slot)
            let old = slot.pointee.load(ordering: .relaxed)
            guard self.value(of: old) == expected else { return false }
            slot.pointee.store(node, ordering: .releasing)
            nodes.retire(UnsafeMutableRawPointer(bitPattern: old)!)
            return true
        }
        if !replaced { layout.destroyUnpublished(node, in: nodes) }
        return replaced
    }

    /// Changes the value of `key` with `transform`, atomically with respect to other writes
    /// of the key: `transform` gets the current value (or `nil`) and returns the new one
    /// (`nil` removes the key).
    ///
    /// `transform` runs outside any lock, so it may run more than once: if another thread
    /// changes the key between the read and the write, the write is abandoned and
    /// `transform` runs again on the newer value. Keep it free of side effects other than
    /// computing the new value.
    ///
    /// - Returns: The value stored (or `nil` if the key ends up absent).
    @inlinable @discardableResult
    public func update(forKey key: Key, _ transform: (Value?) throws -> Value?) rethrows -> Value? {
        let hash = key.hashValue
        let inPlace = storage != .node
        while true {
            // The node, its value word (one-word values: replaced in place, so the node
            // alone does not tell a change) and a copy of the value.
            let current: (node: UInt, bits: UInt, value: Value)? = Epoch.withSection { _ in
                find(key, hash: hash).map { node in
                    let bits = inPlace ? valueWord(node).pointee.load(ordering: .acquiring) : 0
                    return (node, bits, inPlace ? decode(bits) : value(of: node))
                }
            }
            let updated = try transform(current?.value)
            // A new node, unless a one-word value replaces the current one in place.
            let node = updated.flatMap { inPlace && current != nil ? nil : makeNode(key, $0, hash: hash) }
            let committed = write(hash) { table, stripe -> Bool in
                let place = table.locate(hash, { self.nodeHash($0) == hash && self.key(of: $0) == key })
                let stored = place.map { DictionaryTable.slot($0.bucket, $0.slot).pointee.load(ordering: .relaxed) }
                guard stored == current?.node else { return false }  // changed meanwhile
                if inPlace, let stored, valueWord(stored).pointee.load(ordering: .relaxed) != current!.bits {
                    return false  // replaced in place meanwhile
                }
                switch (place, node) {
                case (nil, nil):
                    break
                case (nil, let node?):
                    insert(node, hash: hash, into: table, stripe: stripe)
                case (let place?, nil):
                    if inPlace, let updated {
                        _ = exchangeValue(of: stored!, with: updated)
                    } else {
                        table.clear(place)
                        stripeCount(stripe).pointee.wrappingSubtract(1, ordering: .relaxed)
                        nodes.retire(UnsafeMutableRawPointer(bitPattern: stored!)!)
                    }
                case (let place?, let node?):
                    DictionaryTable.slot(place.bucket, place.slot).pointee.store(node, ordering: .releasing)
                    nodes.retire(UnsafeMutableRawPointer(bitPattern: stored!)!)
                }
                return true
            }
            if committed { return updated }
            if let node { layout.destroyUnpublished(node, in: nodes) }
        }
    }

    /// Removes every entry (each is released after a grace period).
    public func removeAll() {
        for stripe in 0...stripeMask { locks.lock(stripe) }
        let current = currentTable
        current.forEachNode { nodes.retire(UnsafeMutableRawPointer(bitPattern: $0)!) }
        guard let empty = DictionaryTable.make(bucketCount: minimumBuckets) else {
            _rcumapsTrap("RCUDictionary: out of memory for \(minimumBuckets) buckets")
        }
        table.store(UInt(bitPattern: empty.base), ordering: .releasing)
        for stripe in 0...stripeMask { stripeCount(stripe).pointee.store(0, ordering: .relaxed) }
        for stripe in (0...stripeMask).reversed() { locks.unlock(stripe) }
        current.retire()
        nodes.throttleIfBehind()
    }

    // MARK: Iteration

    /// Every entry, copied (keys and values retained) in one epoch section. Not atomic with
    /// respect to concurrent writers: each entry is one some write stored, and a key
    /// present for the whole pass is included once.
    public func snapshot() -> [(key: Key, value: Value)] {
        var entries: [(key: Key, value: Value)] = []
        entries.reserveCapacity(count)
        Epoch.withSection { _ in
            currentTable.forEachNode { entries.append((key(of: $0), value(of: $0))) }
        }
        return entries
    }

    /// The keys, copied (see ``snapshot()``).
    public var keys: [Key] { snapshot().map(\.key) }

    /// The values, copied (see ``snapshot()``).
    public var values: [Value] { snapshot().map(\.value) }

    /// A `Dictionary` with the same entries (see ``snapshot()``).
    public var dictionary: [Key: Value] { Dictionary(snapshot(), uniquingKeysWith: { _, last in last }) }

    // MARK: Internals

    @inlinable @inline(__always)
    func stripeCount(_ stripe: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (counts + stripe &* 64).assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// A new, unpublished node for `key` and `value`.
    @inlinable
    func makeNode(_ key: Key, _ value: Value, hash: Int) -> UInt {
        guard let block = nodes.allocate() else { _rcumapsTrap("RCUDictionary: out of memory for an entry") }
        return UInt(bitPattern: layout.initialize(block, key: key, value: value, hash: hash))
    }

    /// Runs `body` on the current table with the stripe of `hash` locked, inside an epoch
    /// section; then grows or shrinks the table if its stripe's count says so, and lets
    /// reclamation catch up if it fell far behind.
    ///
    /// Inlinable, as every write is: specialised in the caller, a write makes no generic
    /// runtime calls (metadata lookups of `R` and of the closure's tuples); unspecialised,
    /// those made the write three times the instructions.
    @inlinable
    func write<R>(_ hash: Int, _ body: (DictionaryTable, Int) -> R) -> R {
        let stripe = hash & stripeMask
        var buckets = 0
        let result: R = Epoch.withSection { _ in
            locks.lock(stripe)
            defer { locks.unlock(stripe) }
            let table = currentTable
            buckets = table.bucketCount
            return body(table, stripe)
        }
        // Entries average about the same in every stripe: one stripe's count tells the load.
        let perStripe = stripeCount(stripe).pointee.load(ordering: .relaxed)
        let stripes = stripeMask + 1
        if perStripe > 4 * buckets / stripes + 4 || (buckets > minimumBuckets && perStripe * stripes * 2 < buckets) {
            resize()
        }
        nodes.throttleIfBehind()
        replacedObjects?.throttleIfBehind()
        return result
    }

    /// Stores a new node in its chain (caller holds its stripe) and counts it.
    @inlinable
    func insert(_ node: UInt, hash: Int, into table: DictionaryTable, stripe: Int) {
        guard table.insert(node, hash: hash) else { _rcumapsTrap("RCUDictionary: out of memory for a bucket") }
        stripeCount(stripe).pointee.wrappingAdd(1, ordering: .relaxed)
    }

    /// Rebuilds the bucket array at about two entries a bucket, with every stripe held;
    /// readers keep reading the old array, which is retired after a grace period.
    @usableFromInline
    func resize() {
        guard resizing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        defer { resizing.store(false, ordering: .releasing) }
        for stripe in 0...stripeMask { locks.lock(stripe) }
        let old = currentTable
        let wanted = Swift.max(minimumBuckets, Self.powerOfTwo(atLeast: count / 2))
        var replaced = false
        if wanted != old.bucketCount, let new = DictionaryTable.make(bucketCount: wanted) {
            var complete = true
            old.forEachNode { node in if complete { complete = new.insert(node, hash: nodeHash(node)) } }
            if complete {
                table.store(UInt(bitPattern: new.base), ordering: .releasing)
                replaced = true
            } else {
                new.retire()  // no memory for its overflow buckets: keep the old array
            }
        }
        for stripe in (0...stripeMask).reversed() { locks.unlock(stripe) }
        if replaced { old.retire() }
    }
}

extension RCUDictionary: Sequence {
    /// Iterates a ``snapshot()`` taken when iteration starts: each step is self-contained
    /// (no section is held between steps), and the entries are those of the snapshot.
    public func makeIterator() -> IndexingIterator<[(key: Key, value: Value)]> {
        snapshot().makeIterator()
    }
}

extension RCUDictionary: ExpressibleByDictionaryLiteral {
    /// A dictionary with the given entries (later duplicates win).
    public convenience init(dictionaryLiteral elements: (Key, Value)...) {
        self.init(minimumCapacity: elements.count)
        for (key, value) in elements { updateValue(value, forKey: key) }
    }
}

// MARK: - Nodes

/// The layout of a dictionary node: the key's hash (8 bytes), then the key and the value
/// at their alignments. Nodes come from the dictionary's ``EpochRetireList`` (malloc'd,
/// 16-byte aligned); this object deinitializes retired ones after their grace period.
///
/// Invariant: a node's hash, key and value are initialized before it is published and never
/// change while it is reachable; key and value are deinitialized exactly once — by
/// ``finalize(_:)`` after a grace period, or by ``destroyUnpublished(_:in:)`` for a node
/// never published.
@usableFromInline
final class DictionaryNodeLayout<Key: Hashable & Sendable, Value: Sendable>: EpochBlockFinalizer {
    @usableFromInline let keyOffset: Int
    @usableFromInline let valueOffset: Int
    @usableFromInline let size: Int

    init() {
        let header = MemoryLayout<Int>.size
        keyOffset = (header + MemoryLayout<Key>.alignment - 1) & ~(MemoryLayout<Key>.alignment - 1)
        let afterKey = keyOffset + MemoryLayout<Key>.size
        valueOffset = (afterKey + MemoryLayout<Value>.alignment - 1) & ~(MemoryLayout<Value>.alignment - 1)
        size = Swift.max(valueOffset + MemoryLayout<Value>.size, header)
        _rcumapsPrecondition(Swift.max(MemoryLayout<Key>.alignment, MemoryLayout<Value>.alignment) <= 16,
                             "RCUDictionary: keys and values aligned beyond 16 bytes are not supported")
    }

    @inlinable
    func initialize(_ block: UnsafeMutableRawPointer, key: Key, value: Value, hash: Int) -> UnsafeMutableRawPointer {
        block.initializeMemory(as: Int.self, to: hash)
        (block + keyOffset).initializeMemory(as: Key.self, to: key)
        (block + valueOffset).initializeMemory(as: Value.self, to: value)
        rcumaps_tsan_publish(block)
        return block
    }

    /// Deinitializes and frees a node that was never published.
    @usableFromInline
    func destroyUnpublished(_ node: UInt, in list: EpochRetireList) {
        let block = UnsafeMutableRawPointer(bitPattern: node)!
        finalize(block)
        list.freeUnpublished(block)
    }

    /// Deinitializes a retired node's key and value (the reclamation thread, after its
    /// grace period).
    @usableFromInline
    func finalize(_ block: UnsafeMutableRawPointer) {
        (block + keyOffset).assumingMemoryBound(to: Key.self).deinitialize(count: 1)
        (block + valueOffset).assumingMemoryBound(to: Value.self).deinitialize(count: 1)
    }
}

/// How an ``RCUDictionary`` replaces the value of a present key.
///
/// Readers copy a value inside an epoch section while writers may replace it, so a value
/// must not change under a reader mid-copy. A value of one machine word can be replaced
/// in place, atomically, where anything larger needs a new node (and the old one retired).
@usableFromInline
enum DictionaryValueStorage: UInt8, Sendable {
    /// A new node replaces the old one, which is retired (values of any type).
    case node
    /// Eight bytes of plain data (`Int`, `Double`, …): replaced with an atomic exchange
    /// in the node.
    case plainWord
    /// A strong reference to a class instance: replaced with an atomic exchange in the
    /// node; the reference replaced is released after a grace period (a reader may be
    /// about to retain it).
    case objectWord

    init<Value>(for _: Value.Type) {
        guard MemoryLayout<Value>.size == 8, MemoryLayout<Value>.alignment == 8 else { self = .node; return }
        if _isPOD(Value.self) {
            self = .plainWord
        } else if Value.self is AnyObject.Type {
            self = .objectWord
        } else {
            self = .node
        }
    }
}

/// Releases the references an ``RCUDictionary`` replaced in place, after their grace period.
final class DictionaryObjectReleaser: EpochBlockFinalizer {
    func finalize(_ block: UnsafeMutableRawPointer) {
        Unmanaged<AnyObject>.fromOpaque(block).release()
    }
}
