import CRCUMapsShim
import RCUBaseMaps
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A concurrent dictionary for any `Hashable` and `Sendable` keys and `Sendable` values:
/// what you reach for instead of `Mutex<[Key: Value]>` when it is read far more often than
/// written. (Keys and values aligned to at most 16 bytes, which every Swift type is; a C type
/// declared with a larger alignment stops the program with a message when the dictionary is
/// made.)
///
/// ```swift
/// let routes = RCUDictionary<String, Route>()
/// routes["10.0.0.0/8"] = route                     // from any thread
/// if let route = routes["10.0.0.0/8"] { use(route) }   // lock-free, from any thread or task
/// routes.insertIfAbsent(fallback, forKey: "default")
/// routes.update(forKey: "10.0.0.0/8") { old in old?.withMetric(5) }
/// ```
///
/// - Reads never lock and write no shared memory of the dictionary's (the subscript's copy of
///   a class value retains it: a write to the object's reference count, which
///   ``withValue(forKey:_:)`` avoids): a lookup enters an epoch section, finds
///   the entry in a cache-line bucket of three slots (a 7-bit tag per slot filters the key
///   comparisons) and copies (retains) its value before leaving. They are lock-free, not
///   wait-free: a read whose bucket had a slot filled or emptied while it read reads again
///   (except where keys and values both live in immutable nodes, which need no second look).
/// - Where an entry lives depends on its types. A value of one word — 8 bytes of plain data
///   (`Int`, `Double`, a pair of `UInt32`s) or a reference to a class type named as such (`MyClass`; not
///   `AnyObject`, a protocol existential or an optional, which go in nodes) — is kept in the slot itself and replaced in
///   place, with an atomic exchange; with an integer key (`Int`, `UInt32`, …) the key is in
///   the slot too, so such an entry is no allocation at all and a lookup reads one cache
///   line of the dictionary. Other keys live in an immutable node the slot points to, and
///   other values in that node, which a write replaces whole. A `String` key's node also
///   keeps the key's UTF-8 bytes when they fit — what fills the node's last cache line, at
///   least 16 bytes: 32 with a value in the slot (a 64-byte node), 24 with an 8-byte value in
///   the node (64 bytes too), more in the second line of a larger value's node — so a lookup
///   compares bytes in the node instead of reading the stored string's buffer (canonically
///   equivalent spellings still match through `==`).
/// - Keys are hashed with their `hashValue` (the standard library's per-process seeded
///   SipHash, unless the type implements `hashValue` itself), mixed with a random seed of
///   this dictionary by a multiply–xorshift finaliser (so a structured `hashValue`, such as
///   `id << 20`, still spreads), except the standard library's integer types of at most 64
///   bits and `String`:
///   an integer's bits
///   are mixed with a random seed of this dictionary by a multiply–xorshift finaliser, a
///   string's UTF-8 bytes (of its ASCII equivalent, if it has one, so canonically
///   equivalent spellings still hash alike) by a seeded multiply–fold hash; each costs
///   about a tenth of SipHash's instructions (a string with other non-ASCII scalars is
///   scanned, then hashed with its `hashValue`). They spread any keys over the buckets, but
///   unlike SipHash they are not designed to withstand an attacker who picks keys to
///   collide after learning the seed from timing; a dictionary keyed by untrusted integers
///   or strings that must resist that can wrap them in a struct (its `hashValue` is used).
/// - Writes happen under one of the dictionary's writer stripes (a lock per group of
///   buckets): writers of keys in different stripes do not contend.
/// - A replaced or removed node, and a class reference taken out of a slot, is released
///   after a grace period — once no reader can still be reading it — on the reclamation
///   thread, where the key's and value's `deinit`s (if any) run: within a few grace periods
///   of the write even if no other write follows (they go to reclamation in batches; a
///   batch left partly filled is sent after about one grace period). In a process at its
///   thread limit, where the epoch layer's grace-period thread cannot start, they wait for
///   a removal or replacement made once the thread can start (a start is tried at most
///   once every 10 ms; an insert of a new key retires nothing and tries only while the
///   dictionary's emptied overflow buckets are over their bound), or for a barrier.
///   ``/RCUEpoch/Epoch/barrier()-129j7`` waits for them.
/// - Unbounded: when entries average more than three a bucket (judged by one writer stripe's
///   count, with a slack of four entries a stripe, so a small table — one bucket a stripe —
///   runs up to seven a bucket before its first rebuild), or fewer than one in two, the
///   bucket array is rebuilt at one or two entries a bucket; an overflow bucket emptied by
///   a delete is unlinked at once and freed after a grace period; the resize takes every
///   stripe (writers wait for it, outside any epoch section, so reclamation goes on;
///   readers do not wait: they keep reading the old array until they next look). The array
///   stops growing at 2^25 buckets (a 2 GiB block, about 100 million entries at three a
///   bucket); beyond that, chains of overflow buckets grow instead. An allocation failure
///   stops the program, as for `Dictionary`.
///
/// Values are copied out whole: a `struct` value is read as a consistent copy, a class
/// reference is retained before the section ends, so the object outlives any concurrent
/// removal for as long as the reader holds it. ``withValue(forKey:_:)`` lends the stored
/// value to a closure instead: a class reference is not retained, so readers of the same
/// objects on several cores write nothing shared and scale.
///
/// Concurrency: every method may be called from any thread and from Swift concurrency
/// tasks; reads never wait (except in a thread's first section, which registers the thread:
/// chiefly while another thread prepares a `fork()`, see ``/RCUEpoch/Epoch``),
/// writes wait only for a writer of the same stripe, a resize, a
/// ``removeAll()`` publishing its empty table, or (rarely; on a task's thread 2 ms at most for
/// each of its two retire lists and its emptied overflow buckets) reclamation that fell far
/// behind (``/RCUEpoch/EpochRetireList/throttleIfBehind()``).
public final class RCUDictionary<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: the table pointer is atomic; tables change only under the stripe
    // locks and are retired through the epoch; nodes are immutable once published and
    // retired through the epoch; Key and Value are Sendable.

    /// The current bucket array (a ``DictionaryTable`` base address).
    @usableFromInline let table = Atomic<UInt>(0)
    /// What a slot's two words hold.
    @usableFromInline let layout: SlotLayout
    /// How a present key's value is replaced (see ``DictionaryValueStorage``).
    @usableFromInline let storage: DictionaryValueStorage
    /// Offsets of the key and the value in a node (the hash is at 0).
    @usableFromInline let keyOffset: Int
    @usableFromInline let valueOffset: Int
    /// The nodes of ``SlotLayout/nodeKey`` and ``SlotLayout/node`` dictionaries.
    @usableFromInline let nodes: EpochRetireList
    /// References taken out of value words (replaced or removed), released after a grace
    /// period; `nil` unless values are class references kept in slots.
    @usableFromInline let replacedObjects: EpochRetireList?
    @usableFromInline let nodeLayout: DictionaryNodeLayout<Key, Value>
    /// The pool tag of the bucket arrays (``RCUDictionaryMemoryTags/table``).
    let tableTag: PoolTag
    /// Emptied overflow buckets this dictionary freed whose grace period may not have
    /// passed: counted up as they are freed, counted down by ``overflowResetBatch`` by each
    /// work item, which runs a grace period after it was posted (``postOverflowReset()``).
    @usableFromInline let overflowFreed = Atomic<Int>(0)
    /// Of ``overflowFreed``, the buckets no posted work item covers yet.
    let overflowUnposted = Atomic<Int>(0)
    /// Set when ``overflowFreed`` passes ``overflowBehindBuckets``: the next writes outside a
    /// section wait (``waitForOverflowReclamation()``).
    @usableFromInline let overflowBehind = Atomic<Bool>(false)
    /// How many writes outside a section found ``overflowBehind`` set and went to wait (for
    /// tests).
    @usableFromInline let overflowThrottles = Atomic<Int>(0)
    /// One lock per stripe; chain `i` belongs to stripe `i & stripeMask`.
    @usableFromInline let locks: BucketLocks
    /// Entries per stripe, one 64-byte line each (changed under the stripe's lock): at +0
    /// the count, at +8 the stripe's stamp counter (``nextStamp(_:)``), at +16 and +24 the
    /// table size and the count at which a write of the stripe last found no resize due
    /// (``resizeCheckIsDue(_:perStripe:buckets:)``), at +32 the thread (`pthread_self`)
    /// inside a subscript `_modify` access holding the stripe, or 0, at +40 the highest
    /// count a write of the stripe saw since that note (written outside the lock: a hint).
    @usableFromInline let counts: UnsafeMutableRawPointer
    @usableFromInline let stripeMask: Int
    /// log2 of the stripe count: buckets per stripe is `bucketCount >> stripeShift`.
    @usableFromInline let stripeShift: Int
    /// Fewest buckets: at least one chain per stripe, and what `minimumCapacity` and
    /// ``reserveCapacity(_:)`` asked for (the table never shrinks below it). Only grows.
    @usableFromInline let minimumBucketsWord: Atomic<Int>
    /// ``minimumBucketsWord``, read.
    @usableFromInline var minimumBuckets: Int { minimumBucketsWord.load(ordering: .relaxed) }
    /// Set while one writer resizes (the others do not queue up behind it).
    let resizing = Atomic<Bool>(false)
    /// How many times a write counted every stripe's entries to decide on a resize (tests).
    let resizeChecks = Atomic<Int>(0)
    /// Tests: runs in ``removeAll()`` once it has checked the floor, holding every stripe,
    /// before it publishes the empty table. Set before the dictionary is shared.
    nonisolated(unsafe) var afterRemoveAllCheckedTheFloor: (() -> Void)?
    #if DEBUG
    /// Tests (debug builds only): runs in ``find(_:hash:)`` with 0 once it has read a slot's
    /// key word and found it the key's, and with 1 once it has read the value word, before
    /// it looks at the control word again. Set before the dictionary is shared.
    @usableFromInline nonisolated(unsafe) var findReadAWord: ((Int) -> Void)?
    #endif
    /// Whether keys are the standard library's integers, hashed by ``hash(of:)`` from their
    /// bits with ``seed`` rather than with `hashValue`.
    @usableFromInline let hashesKeyBits: Bool
    /// This dictionary's random seed for integer and `String` keys.
    @usableFromInline let seed: UInt

    /// What the two words of a slot hold.
    @usableFromInline
    enum SlotLayout: UInt8, Sendable {
        /// Integer keys and one-word values: the key's bits and the value's bits. No node.
        case inline
        /// One-word values, other keys: a node holding the hash and the key, and the value's bits.
        case nodeKey
        /// Other values: a node holding the hash, the key and the value; the value word holds
        /// the *stamp* of the write that stored the node (``nextStamp(_:)``), which
        /// ``update(forKey:_:)`` compares: a node's address alone can come back for another
        /// node once the first is freed.
        case node
    }

    /// An empty dictionary.
    ///
    /// - Parameter minimumCapacity: entries to size the bucket array for up front (at most
    ///   2^24 buckets' worth); it grows beyond that by itself, and shrinks back only as far
    ///   as that.
    public convenience init(minimumCapacity: Int = 0) {
        self.init(minimumCapacity: minimumCapacity, memoryTags: RCUDictionaryMemoryTags())
    }

    /// An empty dictionary whose memory is accounted under `memoryTags`.
    package init(minimumCapacity: Int = 0, memoryTags: RCUDictionaryMemoryTags) {
        tableTag = memoryTags.table
        storage = DictionaryValueStorage(for: Value.self)
        layout = storage == .node ? .node : Self.keysFitInline ? .inline : .nodeKey
        hashesKeyBits = Self.keysFitInline
        seed = UInt.random(in: .min ... .max)
        nodeLayout = DictionaryNodeLayout(includesValue: layout == .node)
        keyOffset = nodeLayout.keyOffset
        valueOffset = nodeLayout.valueOffset
        // Flushed when idle: a removed or replaced key or value is released about a grace
        // period after its last writer, not when 63 more have gone through its stripe (or
        // at the next Epoch.barrier(): found by review, 2026-12-05, sixteenth session).
        nodes = EpochRetireList(blockSize: nodeLayout.size, tag: memoryTags.nodes, finalizer: nodeLayout,
                                flushesWhenIdle: true)
        replacedObjects = storage == .objectWord
            ? EpochRetireList(referencesWithTag: memoryTags.objects, finalizer: DictionaryObjectReleaser(),
                              flushesWhenIdle: true) : nil
        let cpus = Swift.max(1, Swift.min(64, sysconf(Int32(_SC_NPROCESSORS_CONF))))
        let stripes = Swift.max(16, Self.powerOfTwo(atLeast: 4 * cpus))
        stripeMask = stripes - 1
        stripeShift = stripes.trailingZeroBitCount
        let buckets = Self.minimumBuckets(for: minimumCapacity, stripes: stripes)
        // Before: the stripe count, and the first write shrank a table sized for
        // `minimumCapacity` back to it (found by review, 2026-12-03).
        minimumBucketsWord = Atomic(buckets)
        locks = BucketLocks(count: stripes)
        counts = UnsafeMutableRawPointer.allocate(byteCount: stripes * 64, alignment: 64)
        for stripe in 0..<stripes {
            (counts + stripe * 64).initializeMemory(as: Atomic<Int>.self, to: Atomic(0))
            (counts + stripe * 64 + 8).initializeMemory(as: Atomic<UInt>.self, to: Atomic(0))
            (counts + stripe * 64 + 16).initializeMemory(as: Atomic<Int>.self, to: Atomic(0))
            (counts + stripe * 64 + 24).initializeMemory(as: Atomic<Int>.self, to: Atomic(0))
            (counts + stripe * 64 + 32).initializeMemory(as: Atomic<UInt>.self, to: Atomic(0))
            (counts + stripe * 64 + 40).initializeMemory(as: Atomic<Int>.self, to: Atomic(0))
        }
        guard let first = DictionaryTable.make(bucketCount: buckets, tag: tableTag) else {
            _rcumapsTrap("RCUDictionary: out of memory for \(buckets) buckets")
        }
        table.store(UInt(bitPattern: first.base), ordering: .releasing)
    }

    /// Whether keys are kept in the slots themselves: the standard library's integers of at
    /// most 8 bytes, whose `==` compares exactly their bits (floating-point keys are not:
    /// `0.0 == -0.0`).
    static var keysFitInline: Bool {
        Key.self == Int.self || Key.self == UInt.self || Key.self == Int64.self || Key.self == UInt64.self
            || Key.self == Int32.self || Key.self == UInt32.self || Key.self == Int16.self || Key.self == UInt16.self
            || Key.self == Int8.self || Key.self == UInt8.self
    }

    deinit {
        // No reader or writer holds the dictionary: retire every entry and the table (a
        // reader that dropped it inside a section still reads them until the section ends).
        let current = currentTable
        current.forEachSlot { bucket, slot, _ in retireEntry(at: DictionaryTable.Place(bucket: bucket, slot: slot)) }
        current.retire()
        nodes.flush()
        replacedObjects?.flush()
        for stripe in 0...stripeMask {
            (counts + stripe * 64).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
            (counts + stripe * 64 + 8).assumingMemoryBound(to: Atomic<UInt>.self).deinitialize(count: 1)
            (counts + stripe * 64 + 16).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
            (counts + stripe * 64 + 24).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
            (counts + stripe * 64 + 32).assumingMemoryBound(to: Atomic<UInt>.self).deinitialize(count: 1)
            (counts + stripe * 64 + 40).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
        }
        counts.deallocate()
    }

    /// The fewest buckets for `minimumCapacity` entries (two a bucket, at most 2^24 buckets'
    /// worth) and `stripes` writer stripes (one chain each at least).
    static func minimumBuckets(for minimumCapacity: Int, stripes: Int) -> Int {
        Swift.max(stripes, powerOfTwo(atLeast: Swift.min(1 << 24, Swift.max(0, minimumCapacity) / 2)))
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
    /// section. Setting is ``updateValue(_:forKey:)`` / ``removeValue(forKey:)``. To read
    /// a field of a class value without retaining the object (a write to it that every
    /// core reading the object takes turns on), use ``withValue(forKey:_:)``.
    ///
    /// A read-modify-write through the subscript — `d[k]! += 1`, `d[k]? += 1`,
    /// `d[k]?.field = x`, `d[k]?.append(y)` — is one atomic step, as under a `Mutex`: the
    /// subscript's `_modify` takes the key's writer stripe, reads the value, lets the
    /// expression change it, and stores the result (or removes the key, if it became
    /// `nil`) before it lets go. Writers of other keys of that stripe wait meanwhile, and a
    /// resize, which takes every stripe in order, waits for it while holding the stripes
    /// before it — so writers of those stripes wait for the expression too; readers never
    /// do. So the
    /// expression should be short, and must not:
    /// - write to this dictionary (`reserveCapacity` and `removeAll` included), or change
    ///   another of its values through the subscript (`swap(&d[a], &d[b])`): the write
    ///   would wait for the stripe its own thread holds
    ///   (an overlapping access through the subscript stops the program with a message,
    ///   as Swift's exclusivity checks stop one on a class's property);
    /// - suspend (`await` inside an `inout` access, `await bump(&d[k])`): the stripe would
    ///   stay held while the task sleeps, and tasks writing its keys would block the
    ///   threads the sleeping one needs to resume;
    /// - wait for a grace period (`Epoch.synchronize()`), or take locks in an order that
    ///   another thread's access of another dictionary reverses.
    ///
    /// The atomic step covers value types (`Int`, structs, arrays…); for a class value,
    /// `d[k]!.field += 1` changes the object through a reference the getter returned, with
    /// no hold (the object's own synchronisation applies). Plain assignment (`d[k] = v`)
    /// and reads take no hold.
    @inlinable
    public subscript(key: Key) -> Value? {
        get {
            let hash = self.hash(of: key)
            Epoch._libraryEnter()
            defer { Epoch._libraryExit() }
            return read(key, hash: hash)?.value
        }
        set {
            if let newValue { _ = store(newValue, forKey: key, returningDisplaced: false) } else { removeValue(forKey: key) }
        }
        _modify {
            let hash = self.hash(of: key)
            let (stripe, outer) = lockForModify(hash)
            var value = Epoch.withSection { _ in lockedValue(key, hash: hash) }
            // On every way out of the access, a throw in the caller's expression included
            // (its changes so far are kept, as a stored property's are).
            defer { commitModify(value, key: key, hash: hash, stripe: stripe, outer: outer) }
            yield &value
        }
    }

    /// The value stored under `key`, or `defaultValue()` if there is none (nothing is stored
    /// by reading). A read-modify-write through it — `d[k, default: 0] += 1`, the counting
    /// idiom — is one atomic step that stores the result, as the subscript without a default
    /// does (see there for what the expression must not do). So is an assignment through it
    /// (`d[k, default: v] = x`, which has no setter), and `defaultValue` is evaluated with
    /// the key's stripe held: it must not write to this dictionary either.
    @inlinable
    public subscript(key: Key, default defaultValue: @autoclosure () -> Value) -> Value {
        get { self[key] ?? defaultValue() }
        _modify {
            let hash = self.hash(of: key)
            let (stripe, outer) = lockForModify(hash)
            var value = Epoch.withSection { _ in lockedValue(key, hash: hash) } ?? defaultValue()
            defer { commitModify(value, key: key, hash: hash, stripe: stripe, outer: outer) }
            yield &value
        }
    }

    /// Takes the writer stripe of `hash` for a `_modify` access (as ``write(_:_:)`` does,
    /// registered first) and returns it, with the dictionary whose access the thread was
    /// inside before (restored by ``commitModify(_:key:hash:stripe:outer:)``). An access
    /// overlapping another of this dictionary on the same thread (`swap(&d[a], &d[b])`)
    /// stops the program with a message: it would wait for a stripe its own thread holds,
    /// or, through a resize, for every stripe (found by review, 2026-12-05).
    @inlinable
    func lockForModify(_ hash: Int) -> (stripe: Int, outer: UnsafeRawPointer?) {
        let me = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        let outer = rcumaps_modify_holder_get()
        // Inside another access (of any dictionary: the record names only the innermost, so
        // a → b → a must be looked for too; found by review, 2026-12-05): does this thread
        // hold a stripe of this one?
        if _slowPath(outer != nil) { checkNoOverlappingModify() }
        let stripe = hash & stripeMask
        rcumaps_ensure_registered()
        locks.lock(stripe)
        modifyOwner(stripe).pointee.store(UInt(pthread_self()), ordering: .relaxed)
        rcumaps_modify_holder_set(me)
        return (stripe, outer)
    }

    /// The thread is inside an access of some dictionary: stops the program if it holds
    /// one of this dictionary's stripes for one. (The record can be stale: an access
    /// that resumed on another thread after an `await`, which the subscript forbids,
    /// committed there and could not clear this thread's record.)
    @usableFromInline @inline(never)
    func checkNoOverlappingModify() {
        let thread = UInt(pthread_self())
        for stripe in 0...stripeMask where modifyOwner(stripe).pointee.load(ordering: .relaxed) == thread {
            _rcumapsTrap("RCUDictionary: overlapping accesses to one dictionary: an access through its subscript that changes the value must end before another begins on its thread — say swap(&d[a], &d[b]), or an inout access held across an await (`await f(&d[k])`: the task may resume on another thread, and this one begin another access); use update(forKey:) or read, await, then write")
        }
    }

    /// The word naming the thread inside a `_modify` access that holds `stripe` (0: none).
    @inlinable @inline(__always)
    func modifyOwner(_ stripe: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        (counts + (stripe &* 64 &+ 32)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// `key`'s value, copied; caller holds its stripe (nothing can change it) and a section.
    @inlinable
    func lockedValue(_ key: Key, hash: Int) -> Value? {
        guard let place = currentTable.locate(hash, { self.keyWordMatches($0, key, hash) }) else { return nil }
        return layout == .node
            ? nodeValue(place.keyWord.pointee.load(ordering: .relaxed))
            : decode(place.valueWord.pointee.load(ordering: .relaxed))
    }

    /// Stores the result of a `_modify` access (`nil`: the key is removed), lets go of
    /// `stripe`, then does a write's follow-up (resize check, reclamation throttle).
    @inlinable
    func commitModify(_ value: Value?, key: Key, hash: Int, stripe: Int, outer: UnsafeRawPointer?) {
        // (On the thread that began the access; one that resumed elsewhere after an `await`
        // leaves that thread's record alone.)
        if rcumaps_modify_holder_get() == UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) {
            rcumaps_modify_holder_set(outer)
        }
        modifyOwner(stripe).pointee.store(0, ordering: .relaxed)
        let buckets = Epoch.withSection { _ -> Int in
            let table = currentTable
            let place = table.locate(hash, { self.keyWordMatches($0, key, hash) })
            switch (place, value) {
            case (nil, nil):
                break
            case (nil, let value?):
                switch layout {
                case .inline: insert(key: encode(key), value: ownedBits(value), hash: hash, into: table, stripe: stripe)
                case .nodeKey:
                    insert(key: makeNode(key, nil, hash: hash), value: ownedBits(value), hash: hash, into: table, stripe: stripe)
                case .node:
                    insert(key: makeNode(key, value, hash: hash), value: nextStamp(stripe), hash: hash, into: table, stripe: stripe)
                }
            case (let place?, nil):
                remove(place, from: table, hash: hash, stripe: stripe)
            case (let place?, let value?):
                if layout == .node {
                    let old = replaceNode(at: place, with: makeNode(key, value, hash: hash), stripe: stripe)
                    nodes.retire(UnsafeMutableRawPointer(bitPattern: old)!)
                } else {
                    _ = exchangeValue(at: place, with: value, returningDisplaced: false)
                }
            }
            return table.bucketCount
        }
        locks.unlock(stripe)
        afterWrite(stripe: stripe, buckets: buckets)
    }

    /// Whether `key` has a value.
    @inlinable
    public func contains(_ key: Key) -> Bool {
        let hash = self.hash(of: key)
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        return find(key, hash: hash) != nil
    }

    /// Runs `body` with the value stored under `key`, borrowed, not copied; returns its
    /// result, or `nil` if the key has no value.
    ///
    /// ```swift
    /// let port = sessions.withValue(forKey: id) { $0.port }   // no retain of the session
    /// ```
    ///
    /// The subscript returns a class reference retained: a write to the object's reference
    /// count, so two cores that look up the same objects take turns on those cache lines.
    /// Reading a field here writes nothing shared, and lookups of it scale with the cores.
    ///
    /// Concurrency: lock-free, from any thread or task. `body` runs inside an epoch section
    /// (the value cannot be released while it runs): keep it short, and do not wait in it
    /// for a grace period (``/RCUEpoch/Epoch/synchronize()-9adyg``) or for another thread. The
    /// value is the one stored when the key was found; a concurrent write may replace it
    /// while `body` runs (`body` still sees the one it was given). `body` may copy the
    /// value out (a retain, for a reference) to keep it beyond the call.
    @inlinable @inline(__always)
    public func withValue<Result, Failure: Error>(
        forKey key: Key, _ body: (borrowing Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        let hash = self.hash(of: key)
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        guard let words = find(key, hash: hash) else { return nil }
        if layout == .node {
            // Nodes are immutable and live until a grace period after they are retired.
            return try body((UnsafeRawPointer(bitPattern: words.key)! + valueOffset).assumingMemoryBound(to: Value.self).pointee)
        }
        if storage == .objectWord {
            // A reference lent as a guaranteed one, neither retained nor released: the
            // object lives until a grace period after the slot gives it up (retireValueBits).
            var failure: Failure?
            let result: Result? = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: words.value)!)
                ._withUnsafeGuaranteedRef { object in
                    do throws(Failure) { return try body(unsafeBitCast(object, to: Value.self)) } catch {
                        failure = error
                        return nil
                    }
                }
            if let failure { throw failure }
            return result
        }
        // A one-word value of plain data: a copy of its bits is all there is to lend.
        return try body(decode(words.value))
    }

    /// Entries in the dictionary: exact when writers are quiet; under concurrent writes an
    /// approximation (the stripes' counts are added one after another, so a key removed from
    /// one stripe and another inserted into a later one may both be counted, or neither: a
    /// total that never held at any one moment, over or under — `isEmpty` can be `true` for
    /// a dictionary that always held a key).
    public var count: Int {
        var total = 0
        for stripe in 0...stripeMask { total &+= stripeCount(stripe).pointee.load(ordering: .relaxed) }
        return Swift.max(0, total)
    }

    /// Whether the dictionary holds no entry (see ``count``).
    public var isEmpty: Bool { count == 0 }

    /// The two words of `key`'s slot, read so that they belong together (a bucket whose
    /// slots were emptied or filled between the reads is read again), or nil. Caller holds
    /// an epoch section.
    @inlinable @inline(__always)
    func find(_ key: Key, hash: Int) -> (key: UInt, value: UInt)? {
        let probe = layout == .inline ? encode(key) : 0
        while true {
            var found: (key: UInt, value: UInt)?
            var changed = false
            _ = currentTable.forEachCandidate(inChainOf: hash) { bucket, slot, control in
                let keyBits = DictionaryTable.keyWord(bucket, slot).pointee.load(ordering: .acquiring)
                guard layout == .inline ? keyBits == probe : keyBits != 0 && nodeMatches(keyBits, key, hash) else { return false }
                #if DEBUG
                findReadAWord?(0)
                #endif
                let valueBits = DictionaryTable.valueWord(bucket, slot).pointee.load(ordering: .acquiring)
                #if DEBUG
                findReadAWord?(1)
                #endif
                if layout == .node {
                    // Nodes are immutable and outlive the section: no second look needed. (The
                    // stamp may be newer than the node; ``update(forKey:_:)`` then retries.)
                    found = (keyBits, valueBits)
                    return true
                }
                if DictionaryTable.unchanged(bucket, since: control) {
                    found = (keyBits, valueBits)
                } else {
                    changed = true
                }
                return true
            }
            if !changed { return found }
        }
    }

    /// `key`'s value, copied (retained), with the slot words it was read from. Caller holds
    /// an epoch section.
    @inlinable @inline(__always)
    func read(_ key: Key, hash: Int) -> (words: (key: UInt, value: UInt), value: Value)? {
        guard let words = find(key, hash: hash) else { return nil }
        return (words, layout == .node ? nodeValue(words.key) : decode(words.value))
    }

    /// The hash of `key`: integer keys' bits are xored with the dictionary's random seed and
    /// then mixed by two multiply–xorshift rounds (MurmurHash3's 64-bit finaliser, about 10
    /// instructions against SipHash's 90): a change in any bit of the key reaches both the
    /// low bits (the bucket) and the top bits (the slot tag); `String` keys' UTF-8 bytes are
    /// hashed with the seed by ``StringKeyHash`` (about 40 instructions for 24 bytes against
    /// 300 for `hashValue`), canonical equivalence kept; other keys' `hashValue` goes through
    /// the same finaliser as an integer key's bits. (`hashValue` was used as it came: it is
    /// SipHash's for a type that implements `hash(into:)`, but a type may still implement
    /// `hashValue` itself — deprecated, legal — and `id << 20` put every key in one stripe,
    /// bucket and tag, one chain of N / 3 buckets; `Dictionary` mixes it again. Found by
    /// review, 2026-12-06.)
    @inlinable @inline(__always)
    func hash(of key: Key) -> Int {
        if hashesKeyBits { return hash(ofIntegerBits: encode(key)) }
        if Key.self == String.self { return StringKeyHash.hash(unsafeBitCast(key, to: String.self), seed: seed) }
        return hash(ofIntegerBits: UInt(bitPattern: key.hashValue))
    }

    /// The hash of the integer key whose bits (zero-extended) are `bits`.
    @inlinable @inline(__always)
    func hash(ofIntegerBits bits: UInt) -> Int {
        var mixed = UInt64(bits ^ seed)
        mixed = (mixed ^ (mixed &>> 33)) &* 0xFF51_AFD7_ED55_8CCD
        mixed = (mixed ^ (mixed &>> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return Int(truncatingIfNeeded: mixed ^ (mixed &>> 33))
    }

    /// Whether the node at `node` holds `key` (of `hash`).
    ///
    /// A `String` key whose UTF-8 bytes the node keeps (`DictionaryNodeLayout.keyBytesOffset`)
    /// is compared with those bytes first: equal bytes are equal strings, and the stored
    /// string's own buffer — one more dependent cache miss — is not read. Different bytes
    /// can still be equal strings (canonically equivalent Unicode, `"\u{212A}" == "K"`), so
    /// those go on to `==`, as does every other key type.
    @inlinable @inline(__always)
    func nodeMatches(_ node: UInt, _ key: Key, _ hash: Int) -> Bool {
        guard nodeHash(node) == hash else { return false }
        if Key.self == String.self, nodeLayout.keyBytesEqual(UnsafeRawPointer(bitPattern: node)!, key) { return true }
        return self.key(ofNode: node) == key
    }

    /// Whether the key word `keyBits` (of a slot whose tag matches `hash`) holds `key`.
    /// Caller holds the chain's stripe, or an epoch section.
    @inlinable @inline(__always)
    func keyWordMatches(_ keyBits: UInt, _ key: Key, _ hash: Int) -> Bool {
        layout == .inline ? keyBits == encode(key) : nodeMatches(keyBits, key, hash)
    }

    @inlinable @inline(__always)
    func nodeHash(_ node: UInt) -> Int { UnsafeRawPointer(bitPattern: node)!.load(as: Int.self) }

    @inlinable @inline(__always)
    func key(ofNode node: UInt) -> Key {
        (UnsafeRawPointer(bitPattern: node)! + keyOffset).assumingMemoryBound(to: Key.self).pointee
    }

    /// The key a slot's key word stands for.
    @inlinable @inline(__always)
    func key(ofKeyWord keyBits: UInt) -> Key {
        layout == .inline ? decodeKey(keyBits) : key(ofNode: keyBits)
    }

    /// The hash of the key a slot's key word stands for.
    @inlinable
    func hash(ofKeyWord keyBits: UInt) -> Int {
        layout == .inline ? hash(ofIntegerBits: keyBits) : nodeHash(keyBits)
    }

    /// A copy of a ``SlotLayout/node`` node's value. Caller holds an epoch section or the
    /// node's stripe.
    @inlinable @inline(__always)
    func nodeValue(_ node: UInt) -> Value {
        (UnsafeRawPointer(bitPattern: node)! + valueOffset).assumingMemoryBound(to: Value.self).pointee
    }

    /// An inline key's bits (zero-extended).
    @inlinable @inline(__always)
    func encode(_ key: Key) -> UInt {
        var bits: UInt = 0
        withUnsafeMutableBytes(of: &bits) { $0.storeBytes(of: key, as: Key.self) }
        return bits
    }

    @inlinable @inline(__always)
    func decodeKey(_ bits: UInt) -> Key {
        withUnsafeBytes(of: bits) { $0.load(as: Key.self) }
    }

    /// A copy of the value whose bits are `bits` (a retained copy, for a reference; the
    /// bits keep their own). For a reference, the caller must know it alive: read from a
    /// slot inside a section (a reference taken out of a slot is released only after a
    /// grace period), or under the slot's stripe.
    @inlinable @inline(__always)
    func decode(_ bits: UInt) -> Value {
        var word = bits
        return withUnsafeBytes(of: &word) { $0.load(as: Value.self) }
    }

    /// The bits of `value` for a value word, owning what the word owns (for a reference, a
    /// retain). `value` is consumed: a caller that passes its last use of an owned value
    /// hands its retain over (the optimiser pairs the retain here with the release of
    /// `value`, so none is made); one that keeps using the value pays a copy.
    @inlinable @inline(__always)
    func ownedBits(_ value: consuming Value) -> UInt {
        guard storage == .objectWord else { return unsafeBitCast(value, to: UInt.self) }
        // No `as AnyObject`: in a specialised caller that cast still went through
        // swift_dynamicCast; `unsafeBitCast` to a class type keeps the reference's identity,
        // which the retain/release pairing needs.
        return UInt(bitPattern: Unmanaged<AnyObject>.passRetained(unsafeBitCast(value, to: AnyObject.self)).toOpaque())
    }

    /// Gives up what value bits taken out of a slot own: a reference is released after a
    /// grace period (a reader may be about to retain it).
    @inlinable @inline(__always)
    func retireValueBits(_ bits: UInt) {
        if storage == .objectWord { replacedObjects!.retire(UnsafeMutableRawPointer(bitPattern: bits)!) }
    }

    /// Replaces the value in a place in place (caller holds its stripe; one-word values)
    /// and returns the value it displaced.
    @inlinable @inline(__always)
    func exchangeValue(at place: DictionaryTable.Place, with value: Value) -> Value {
        exchangeValue(at: place, with: value, returningDisplaced: true)!
    }

    /// ``exchangeValue(at:with:)``, copying the displaced value out only if asked (a copy of
    /// a reference is a retain, and its release later).
    @inlinable @inline(__always)
    func exchangeValue(at place: DictionaryTable.Place, with value: Value, returningDisplaced: Bool) -> Value? {
        exchangeValue(at: place, withBits: ownedBits(value), returningDisplaced: returningDisplaced)
    }

    /// Stores value bits that own their value (``ownedBits(_:)``) in a place (caller holds
    /// its stripe; one-word values) and retires the bits they displace, copying the
    /// displaced value out only if asked.
    @inlinable @inline(__always)
    func exchangeValue(at place: DictionaryTable.Place, withBits bits: UInt, returningDisplaced: Bool) -> Value? {
        let old = place.valueWord.pointee.exchange(bits, ordering: .acquiringAndReleasing)
        let displaced = returningDisplaced ? decode(old) : nil
        retireValueBits(old)
        return displaced
    }

    /// Retires what a place held (its words, read before it was cleared, or of a table
    /// that dies): its node and, for a value kept in the slot, the value. Caller held the
    /// place's stripe, every stripe, or is deinit.
    @inlinable
    func retireEntry(key keyBits: UInt, value valueBits: UInt) {
        if layout != .node { retireValueBits(valueBits) }
        if layout != .inline { nodes.retire(UnsafeMutableRawPointer(bitPattern: keyBits)!) }
    }

    /// Retires what a live place holds (see ``retireEntry(key:value:)``).
    @inlinable
    func retireEntry(at place: DictionaryTable.Place) {
        retireEntry(key: place.keyWord.pointee.load(ordering: .relaxed), value: place.valueWord.pointee.load(ordering: .relaxed))
    }

    /// Empties a place (caller holds its stripe), uncounts it and retires what it held.
    @inlinable
    func remove(_ place: DictionaryTable.Place, from table: DictionaryTable, hash: Int, stripe: Int) {
        let keyBits = place.keyWord.pointee.load(ordering: .relaxed)
        let valueBits = place.valueWord.pointee.load(ordering: .relaxed)
        if table.clear(place, hash: hash) { overflowBucketFreed() }
        stripeCount(stripe).pointee.wrappingSubtract(1, ordering: .relaxed)
        retireEntry(key: keyBits, value: valueBits)
    }

    /// Emptied overflow buckets that may await reclamation past which writes wait: 16 MiB,
    /// the retire lists' threshold, at 128 bytes a bucket (a cache line and its header).
    static var overflowBehindBuckets: Int { EpochRetireList.throttleThreshold / 128 }

    /// After an emptied overflow bucket went to reclamation (caller holds a stripe): counts
    /// it, posts a reset of a batch of the count now and then, and flags the writes to wait
    /// (``afterWrite(stripe:buckets:)``) once the dictionary's own backlog of them passes
    /// ``overflowBehindBuckets``. Overflow buckets go through `EpochMemory`, not a retire
    /// list, and nothing pushed back on them: a writer that kept emptying and refilling one
    /// chain's fourth slot — every time a bucket allocated and one freed — grew the backlog
    /// without bound while a section was held or reclamation fell behind, even in a
    /// dictionary of integer keys and values, which has no other retirements (found by
    /// review, 2026-12-06, twenty-fourth session). Counted per dictionary: the pending bytes
    /// of its pool tag, which every dictionary shares, made one dictionary's writers wait
    /// for another's retired bucket arrays and overflow buckets (found by review of the fix).
    @usableFromInline @inline(never)
    func overflowBucketFreed() {
        let freed = overflowFreed.wrappingAdd(1, ordering: .relaxed).newValue
        if overflowUnposted.wrappingAdd(1, ordering: .relaxed).newValue >= Self.overflowResetBatch { postOverflowReset() }
        if freed > Self.overflowBehindBuckets {
            overflowBehind.store(true, ordering: .relaxed)
            // The resets that bring the count down run on the grace-period driver: where its
            // thread could not be started, they wait for a retry (found by review, 2026-12-06,
            // twenty-ninth session: a dictionary of integers retires nothing else, and its
            // writers waited 250 ms each for a backlog already reclaimed).
            EpochWorkItem.retryDriverStartIfItFailed()
        }
    }

    /// Buckets each reset covers: an eighth of ``overflowBehindBuckets``.
    static var overflowResetBatch: Int { overflowBehindBuckets / 8 }

    /// Takes ``overflowResetBatch`` buckets off ``overflowUnposted`` and posts a work item
    /// that takes them off ``overflowFreed`` a grace period from now (their grace period has
    /// then passed). Each item covers its own batch, so any number may be in flight: with a
    /// single item in flight, marked by a flag, the buckets freed while it waited stayed
    /// counted after their reclamation, and a fork between the flag and the item's queueing
    /// left the flag set in the child for good (found by review, 2026-12-06). An item lost
    /// to a fork leaves one batch counted, no more.
    func postOverflowReset() {
        let batch = Self.overflowResetBatch
        var current = overflowUnposted.load(ordering: .relaxed)
        while current >= batch {
            let (exchanged, original) = overflowUnposted.compareExchange(
                expected: current, desired: current - batch, ordering: .relaxed)
            if exchanged {
                let item = EpochWorkItem { [weak self] in self?.overflowFreed.wrappingSubtract(batch, ordering: .relaxed) }
                // No memory for the item: the batch goes back, for the next free to post.
                if item?.scheduleOnGracePeriodDriver() != true { overflowUnposted.wrappingAdd(batch, ordering: .relaxed) }
                return
            }
            current = original
        }
    }

    /// Waits, after a write outside any section, while this dictionary's emptied overflow
    /// buckets awaiting reclamation are over ``overflowBehindBuckets``: at most 250 ms, 2 ms
    /// on a Swift task's thread, as a retire list's writers wait. Inside a section (or on
    /// the reclamation thread) it may not wait: the flag stays for the next write outside
    /// one, unless the backlog is gone (clearing it there let a writer inside sections keep
    /// the backlog growing unthrottled: found by review of the fix).
    @usableFromInline @inline(never)
    func waitForOverflowReclamation() {
        guard !Epoch.isInsideAnyReadLock, !EpochMemory.isReclamationThread else {
            if overflowFreed.load(ordering: .relaxed) <= Self.overflowBehindBuckets { overflowBehind.store(false, ordering: .relaxed) }
            return
        }
        overflowThrottles.wrappingAdd(1, ordering: .relaxed)
        let onTask = withUnsafeCurrentTask(body: { $0 != nil })
        let limit = onTask ? EpochRetireList.taskThrottleWaitLimit : EpochRetireList.throttleWaitLimit
        let clock = ContinuousClock()
        let start = clock.now
        while overflowFreed.load(ordering: .acquiring) > Self.overflowBehindBuckets, clock.now - start < limit {
            EpochWorkItem.retryDriverStartIfItFailed()  // (see overflowBucketFreed)
            usleep(200)
        }
        // Left set on a task's thread while the backlog lasts, as a retire list does: each of
        // its writes then waits its 2 ms.
        if !onTask || overflowFreed.load(ordering: .acquiring) <= Self.overflowBehindBuckets {
            overflowBehind.store(false, ordering: .relaxed)
        }
    }

    // MARK: Writing

    /// Stores `value` under `key`, replacing any value there.
    ///
    /// Which key instance stays when `key` equals the stored key with other bytes (`0.0`
    /// and `-0.0`, `"K"` and the Kelvin sign, class keys whose `==` compares contents):
    /// values kept in their slot (integers, class references, other one-word values) are
    /// swapped in place and the stored key stays, as in `Dictionary`; values kept in a node
    /// (every other type) get a new node, which holds `key`. The same holds for
    /// ``replaceValue(forKey:ifCurrent:with:)`` and ``update(forKey:_:)``.
    ///
    /// - Returns: The value replaced — exactly the one this write displaced — or `nil`
    ///   if the key was new.
    @inlinable @discardableResult
    public func updateValue(_ value: Value, forKey key: Key) -> Value? {
        store(value, forKey: key, returningDisplaced: true)
    }

    /// Stores `value` under `key`; returns the value displaced if `returningDisplaced` (the
    /// subscript's setter does not ask: it spares the copy, a retain and a release for a
    /// reference). `value` is consumed: a value kept in the slot takes over its retain.
    @inlinable
    func store(_ value: consuming Value, forKey key: Key, returningDisplaced: Bool) -> Value? {
        let hash = self.hash(of: key)
        guard layout != .node else { return storeNode(value, forKey: key, hash: hash, returningDisplaced: returningDisplaced) }
        // The value's word, made before any lock is taken: the slot keeps what `value` owned.
        let bits = ownedBits(value)
        // A present key's value is replaced in place; a new integer key needs no node.
        let done: Value?? = write(hash) { table, stripe -> Value?? in
            if let place = table.locate(hash, { self.keyWordMatches($0, key, hash) }) {
                return .some(exchangeValue(at: place, withBits: bits, returningDisplaced: returningDisplaced))
            }
            guard layout == .inline else { return .none }
            insert(key: encode(key), value: bits, hash: hash, into: table, stripe: stripe)
            return .some(nil)
        }
        if let done { return done }
        return storeNewNodeKey(bits, forKey: key, hash: hash, returningDisplaced: returningDisplaced)
    }

    /// The rest of ``store(_:forKey:returningDisplaced:)`` for a key a
    /// ``SlotLayout/nodeKey`` dictionary did not hold: a node for the key, in a new slot with
    /// the value's word `bits` (or, if another writer inserted the key meanwhile, the word
    /// replaces its value). Kept out of line: the replacing path stays small.
    @inlinable @inline(never)
    func storeNewNodeKey(_ bits: UInt, forKey key: Key, hash: Int, returningDisplaced: Bool) -> Value? {
        let node = makeNode(key, nil, hash: hash)
        var unused = false
        let displaced = write(hash) { table, stripe -> Value? in
            if let place = table.locate(hash, { self.nodeMatches($0, key, hash) }) {
                unused = true  // another writer inserted the key meanwhile
                return exchangeValue(at: place, withBits: bits, returningDisplaced: returningDisplaced)
            }
            insert(key: node, value: bits, hash: hash, into: table, stripe: stripe)
            return nil
        }
        if unused { nodeLayout.destroyUnpublished(node, in: nodes) }
        return displaced
    }

    /// ``store(_:forKey:returningDisplaced:)`` for a ``SlotLayout/node`` dictionary: a new
    /// node holding the key and the value replaces the old one, which is retired.
    @inlinable
    func storeNode(_ value: consuming Value, forKey key: Key, hash: Int, returningDisplaced: Bool) -> Value? {
        let node = makeNode(key, value, hash: hash)
        return write(hash) { table, stripe -> Value? in
            if let place = table.locate(hash, { self.nodeMatches($0, key, hash) }) {
                let old = replaceNode(at: place, with: node, stripe: stripe)
                let displaced = returningDisplaced ? nodeValue(old) : nil
                nodes.retire(UnsafeMutableRawPointer(bitPattern: old)!)
                return displaced
            }
            insert(key: node, value: nextStamp(stripe), hash: hash, into: table, stripe: stripe)
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
        let hash = self.hash(of: key)
        let node = layout == .inline ? 0 : makeNode(key, value, hash: hash)
        let inserted = write(hash) { table, stripe -> Bool in
            if table.locate(hash, { self.keyWordMatches($0, key, hash) }) != nil { return false }
            switch layout {
            case .inline: insert(key: encode(key), value: ownedBits(value), hash: hash, into: table, stripe: stripe)
            case .nodeKey: insert(key: node, value: ownedBits(value), hash: hash, into: table, stripe: stripe)
            case .node: insert(key: node, value: nextStamp(stripe), hash: hash, into: table, stripe: stripe)
            }
            return true
        }
        if !inserted && node != 0 { nodeLayout.destroyUnpublished(node, in: nodes) }
        return inserted
    }

    /// Removes `key` and returns its value: of several threads removing one key, exactly
    /// one gets it.
    ///
    /// - Returns: The value removed, or `nil` if the key had none.
    @inlinable @discardableResult
    public func removeValue(forKey key: Key) -> Value? {
        let hash = self.hash(of: key)
        return write(hash) { table, stripe -> Value? in
            guard let place = table.locate(hash, { self.keyWordMatches($0, key, hash) }) else { return nil }
            let removed = layout == .node
                ? nodeValue(place.keyWord.pointee.load(ordering: .relaxed))
                : decode(place.valueWord.pointee.load(ordering: .relaxed))
            remove(place, from: table, hash: hash, stripe: stripe)
            return removed
        }
    }

    /// Removes `key` only if its value is currently `expected` (compare-and-remove): a cache
    /// that expires the entry it read, and not a newer one another thread stored since.
    ///
    /// "Currently `expected`" is `==`, not identity: for a class whose `==` compares
    /// contents, a newer object equal to `expected` is removed too (compare `ObjectIdentifier`s
    /// through a wrapper whose `==` does, to expire only the object read).
    ///
    /// - Returns: `true` if it was removed; `false` if the key had another value or none.
    ///
    /// Concurrency: linearizable, as ``replaceValue(forKey:ifCurrent:with:)``: if it returns
    /// `true`, `expected` was the value at the moment the key left, and of several threads
    /// removing one key with the same `expected`, exactly one gets `true`. `==` runs while
    /// this key's writer stripe is held: keep it short, and free of calls into this
    /// dictionary (a write from it would wait for itself).
    @inlinable @discardableResult
    public func removeValue(forKey key: Key, ifCurrent expected: Value) -> Bool where Value: Equatable {
        let hash = self.hash(of: key)
        return write(hash) { table, stripe -> Bool in
            guard let place = table.locate(hash, { self.keyWordMatches($0, key, hash) }) else { return false }
            let current = layout == .node
                ? nodeValue(place.keyWord.pointee.load(ordering: .relaxed))
                : decode(place.valueWord.pointee.load(ordering: .relaxed))
            guard current == expected else { return false }
            remove(place, from: table, hash: hash, stripe: stripe)
            return true
        }
    }

    /// Replaces the value of `key` with `newValue` only if it is currently `expected`
    /// (compare-and-replace). "Currently `expected`" is `==`, not identity (see
    /// ``removeValue(forKey:ifCurrent:)``).
    ///
    /// - Returns: `true` if it was replaced; `false` if the key had another value or none.
    ///
    /// Concurrency: linearizable: if it returns `true`, `expected` was the value at the
    /// moment `newValue` took its place. `==` runs while this key's writer stripe is held:
    /// keep it short, and free of calls into this dictionary (a write from it would wait for
    /// itself).
    @inlinable
    public func replaceValue(forKey key: Key, ifCurrent expected: Value, with newValue: Value) -> Bool
    where Value: Equatable {
        let hash = self.hash(of: key)
        if layout != .node {
            return write(hash) { table, _ -> Bool in
                guard let place = table.locate(hash, { self.keyWordMatches($0, key, hash) }),
                      decode(place.valueWord.pointee.load(ordering: .relaxed)) == expected
                else { return false }
                _ = exchangeValue(at: place, with: newValue)
                return true
            }
        }
        let node = makeNode(key, newValue, hash: hash)
        let replaced = write(hash) { table, stripe -> Bool in
            guard let place = table.locate(hash, { self.nodeMatches($0, key, hash) }),
                  nodeValue(place.keyWord.pointee.load(ordering: .relaxed)) == expected else { return false }
            let old = replaceNode(at: place, with: node, stripe: stripe)
            nodes.retire(UnsafeMutableRawPointer(bitPattern: old)!)
            return true
        }
        if !replaced { nodeLayout.destroyUnpublished(node, in: nodes) }
        return replaced
    }

    /// Changes the value of `key` with `transform`, atomically with respect to other writes
    /// of the key: `transform` gets the current value (or `nil`) and returns the new one
    /// (`nil` removes the key).
    ///
    /// `transform` runs outside any lock, so it may run more than once: if the key's slot
    /// changed between the read and the write, the write is abandoned and `transform` runs
    /// again on the newer value. (With an integer key, a one-word value replaced and then put
    /// back, or the key removed and inserted again with the same one-word value, counts as
    /// unchanged: the write still replaces exactly the value `transform` was given. With
    /// other keys and values that live in a node, the key's reinsertion is a new node with a
    /// new stamp, which counts as a change; with other keys and one-word values, a node at the
    /// address of the one `transform` was given — the key removed and inserted again with
    /// the same value after its old node was freed — may count as unchanged, as with an
    /// integer key.) Keep it free of side effects other than computing the new value.
    ///
    /// - Returns: The value stored (or `nil` if the key ends up absent).
    @inlinable @discardableResult
    public func update(forKey key: Key, _ transform: (Value?) throws -> Value?) rethrows -> Value? {
        let hash = self.hash(of: key)
        while true {
            // The slot's words and a copy of the value. The key word alone does not tell a
            // change: a one-word value is replaced in place, and a node's address can come
            // back for a new node once the section has ended and the old one is freed; the
            // value word (a one-word value, or the node's stamp) tells.
            let current = Epoch.withSection { _ in read(key, hash: hash) }
            let updated = try transform(current?.value)
            // A new node, unless the slot keeps the value (a present key, or an integer key).
            let node: UInt? = updated.flatMap { value in
                switch layout {
                case .inline: nil
                case .nodeKey: current == nil ? makeNode(key, value, hash: hash) : nil
                case .node: makeNode(key, value, hash: hash)
                }
            }
            let committed = write(hash) { table, stripe -> Bool in
                let place = table.locate(hash, { self.keyWordMatches($0, key, hash) })
                // Changed meanwhile: another entry, or another value (or node) in the same slot.
                guard place?.keyWord.pointee.load(ordering: .relaxed) == current?.words.key else { return false }
                if let place, place.valueWord.pointee.load(ordering: .relaxed) != current!.words.value { return false }
                switch (place, updated) {
                case (nil, nil):
                    break
                case (nil, let value?):
                    let keyBits = layout == .inline ? encode(key) : node!
                    insert(key: keyBits, value: layout == .node ? nextStamp(stripe) : ownedBits(value), hash: hash,
                           into: table, stripe: stripe)
                case (let place?, nil):
                    remove(place, from: table, hash: hash, stripe: stripe)
                case (let place?, let value?):
                    if layout == .node {
                        let old = replaceNode(at: place, with: node!, stripe: stripe)
                        nodes.retire(UnsafeMutableRawPointer(bitPattern: old)!)
                    } else {
                        _ = exchangeValue(at: place, with: value)
                    }
                }
                return true
            }
            if committed { return updated }
            if let node { nodeLayout.destroyUnpublished(node, in: nodes) }
        }
    }

    /// Makes room for at least `minimumCapacity` entries without a rebuild of the bucket
    /// array, as `Dictionary.reserveCapacity(_:)` does, and keeps the array from shrinking
    /// below that afterwards (as ``init(minimumCapacity:)``: at most 2^24 buckets' worth). A
    /// bulk load that reserves first rebuilds the array once, here, instead of at every
    /// doubling on the way.
    ///
    /// Concurrency: any thread, but not inside a subscript `_modify` access of this
    /// dictionary (it would wait for the stripe that access holds: stopped with a message).
    /// If the array must grow, this rebuilds it as a growing write does: every writer stripe
    /// is held while the entries move (writers wait; readers never do, and keep reading the
    /// old array, retired after a grace period). A smaller request than the current floor
    /// changes nothing.
    public func reserveCapacity(_ minimumCapacity: Int) {
        if rcumaps_modify_holder_get() != nil { checkNoOverlappingModify() }
        let wanted = Self.minimumBuckets(for: minimumCapacity, stripes: stripeMask + 1)
        var floor = minimumBuckets
        while floor < wanted {
            let (exchanged, original) = minimumBucketsWord.compareExchange(expected: floor, desired: wanted,
                                                                           ordering: .sequentiallyConsistent)
            if exchanged { break }
            floor = original
        }
        // A resize under way may have read the floor before it rose, and may be shrinking
        // the array below it: wait for it to end, then look again, until no resize runs and
        // the array is at least the floor (a resize that starts after the floor rose reads
        // it: the flag's exchange and this load are sequentially consistent with the floor's).
        // A `removeAll` reads the floor and publishes its empty table holding every stripe
        // without the flag: the array is read holding stripe 0, so one that read the floor
        // before it rose has published by then (its empty table of the old floor stayed
        // after both calls returned: found by review, 2026-12-05, nineteenth session).
        while true {
            let busy = resizing.load(ordering: .sequentiallyConsistent)
            if !busy, tableSizeSeenAfterRemovals() >= minimumBuckets { return }
            if busy {
                sched_yield()
            } else {
                resize(checkedBy: 0, perStripe: stripeCount(0).pointee.load(ordering: .relaxed))
            }
        }
    }

    /// Buckets in the current array, read in a section of its own (a moment's figure: for
    /// the stress run, which counts the resizes its workers see).
    package var bucketCountNow: Int { Epoch.withSection { _ in currentTable.bucketCount } }

    /// The array's bucket count, read holding stripe 0: after any `removeAll` that holds the
    /// stripes has published its table.
    private func tableSizeSeenAfterRemovals() -> Int {
        rcumaps_ensure_registered()  // before the lock (see `write`)
        locks.lock(0)
        defer { locks.unlock(0) }
        return Epoch.withSection { _ in currentTable.bucketCount }
    }

    /// Removes every entry (each is released after a grace period).
    ///
    /// Concurrency: holds every stripe only to publish the empty table (made before) and
    /// reset the counts, so writers wait for that alone; the old table's entries are retired
    /// after, when no writer can reach them. (Every stripe was held while the entries were
    /// retired, and every writer waited for a walk of the whole table: found by review,
    /// 2026-12-05.) Readers never wait. Not inside a subscript `_modify` access of this
    /// dictionary (stopped with a message: it would wait for the stripe that access holds).
    public func removeAll() {
        if rcumaps_modify_holder_get() != nil { checkNoOverlappingModify() }
        rcumaps_ensure_registered()  // before the locks (see `write`)
        var empty: DictionaryTable
        while true {
            let size = minimumBuckets
            guard let made = DictionaryTable.make(bucketCount: size, tag: tableTag) else {
                _rcumapsTrap("RCUDictionary: out of memory for \(size) buckets")
            }
            for stripe in 0...stripeMask { locks.lock(stripe) }
            // A `reserveCapacity` may have raised the floor since it was read: make the
            // empty table again at the new size (found by review, 2026-12-05).
            if minimumBuckets == size {
                empty = made
                afterRemoveAllCheckedTheFloor?()
                break
            }
            for stripe in (0...stripeMask).reversed() { locks.unlock(stripe) }
            made.retire()
        }
        let current = currentTable
        table.store(UInt(bitPattern: empty.base), ordering: .releasing)
        for stripe in 0...stripeMask { stripeCount(stripe).pointee.store(0, ordering: .relaxed) }
        for stripe in (0...stripeMask).reversed() { locks.unlock(stripe) }
        // Writers take the table under their stripe, and every one from now on finds the
        // empty one: the old table's slots change no more, and only this call retires them.
        // Retired only once no new reader can reach them: a retire list hands a full batch
        // to liburcu at once, and its grace period covers only the readers already inside a
        // section. Retired while the old table was still published, an entry could be
        // released under a reader that found it after that batch's grace period began.
        // (The old table itself stays intact until `current.retire()` below.)
        current.forEachSlot { bucket, slot, _ in retireEntry(at: DictionaryTable.Place(bucket: bucket, slot: slot)) }
        current.retire()
        // (Only lists this dictionary uses: an inline one has no nodes, and waited for other
        // dictionaries' node backlog under the shared tag; found by review, 2026-12-06.)
        if layout != .inline { nodes.throttleIfBehind() }
        replacedObjects?.throttleIfBehind()
    }

    // MARK: Iteration

    /// Every entry, copied (keys and values retained) in one epoch section. Not atomic with
    /// respect to concurrent writers: each entry is one some write stored, and a key
    /// present for the whole pass is included once. A key removed and inserted again while
    /// the pass runs may be missed, or — unlike `Dictionary` — listed twice (from its old
    /// slot and its new one): do not build a `Dictionary(uniqueKeysWithValues:)` from it
    /// while writers run; ``dictionary`` keeps one entry per key.
    ///
    /// The one section lasts the whole pass, and no grace period of the process ends while
    /// it does: other maps' reclamation waits, and their writers may be throttled. Take
    /// snapshots of a large dictionary while writers are quiet, or accept that pause.
    public func snapshot() -> [(key: Key, value: Value)] {
        var entries: [(key: Key, value: Value)] = []
        entries.reserveCapacity(count)
        Epoch.withSection { _ in
            currentTable.forEachSlot { bucket, slot, loaded in
                var control = loaded
                while true {
                    // Emptied since: its key was not there for the whole pass.
                    guard (control >> UInt64(8 &* slot)) & 0xFF != 0 else { return }
                    let keyBits = DictionaryTable.keyWord(bucket, slot).pointee.load(ordering: .acquiring)
                    if layout == .node {
                        // An immutable node that outlives the section: its key and value belong
                        // together, whatever replaced it in the slot since.
                        if keyBits != 0 { entries.append((key(ofNode: keyBits), nodeValue(keyBits))) }
                        return
                    }
                    let valueBits = DictionaryTable.valueWord(bucket, slot).pointee.load(ordering: .acquiring)
                    if DictionaryTable.unchanged(bucket, since: control) {
                        entries.append((key(ofKeyWord: keyBits), decode(valueBits)))
                        return
                    }
                    // Another slot of the bucket (or this one) was emptied or filled between
                    // the loads: read the slot again rather than skip a key that stayed.
                    control = DictionaryTable.control(bucket).pointee.load(ordering: .acquiring)
                }
            }
        }
        return entries
    }

    /// The keys, copied (see ``snapshot()``). Under concurrent writes, `keys` and
    /// ``values`` are two passes, not one: their orders need not match (`zip(d.keys,
    /// d.values)` can pair a key with another's value, where `Dictionary`'s always match);
    /// take pairs from ``snapshot()`` or by iterating.
    public var keys: [Key] { snapshot().map(\.key) }

    /// The values, copied (see ``snapshot()``; and ``keys`` for why the two need not pair up).
    public var values: [Value] { snapshot().map(\.value) }

    /// A `Dictionary` with the same entries (see ``snapshot()``).
    public var dictionary: [Key: Value] { Dictionary(snapshot(), uniquingKeysWith: { _, last in last }) }

    // MARK: Internals

    @inlinable @inline(__always)
    func stripeCount(_ stripe: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (counts + stripe &* 64).assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// The highest count a write of `stripe` saw since its last resize note (a hint, written
    /// outside the lock; see ``resizeCheckIsDue(_:perStripe:buckets:)``).
    @inlinable @inline(__always)
    func stripePeak(_ stripe: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (counts + (stripe &* 64 &+ 40)).assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// A new stamp for a ``SlotLayout/node`` slot's value word, from `stripe`'s counter
    /// (caller holds the stripe). A key always maps to the same stripe, so each write of a
    /// key stores a stamp larger than any before it: a slot's (node, stamp) pair never
    /// repeats, even when a freed node's address comes back.
    @inlinable @inline(__always)
    func nextStamp(_ stripe: Int) -> UInt {
        // A load and a store, not an atomic add: the stripe's lock orders its writers.
        let counter = (counts + (stripe &* 64 &+ 8)).assumingMemoryBound(to: Atomic<UInt>.self)
        let stamp = counter.pointee.load(ordering: .relaxed) &+ 1
        counter.pointee.store(stamp, ordering: .relaxed)
        return stamp
    }

    /// Puts `node` in a ``SlotLayout/node`` place in place of its node, with a new stamp
    /// stored first (a reader that sees the new node sees the new stamp); returns the node
    /// it displaced (caller holds `stripe`, and retires it).
    @inlinable @inline(__always)
    func replaceNode(at place: DictionaryTable.Place, with node: UInt, stripe: Int) -> UInt {
        place.valueWord.pointee.store(nextStamp(stripe), ordering: .releasing)
        return place.keyWord.pointee.exchange(node, ordering: .acquiringAndReleasing)
    }

    /// A new, unpublished node for `key` (and `value`, for ``SlotLayout/node``).
    @inlinable
    func makeNode(_ key: Key, _ value: consuming Value?, hash: Int) -> UInt {
        guard let block = nodes.allocate() else { _rcumapsTrap("RCUDictionary: out of memory for an entry") }
        return UInt(bitPattern: nodeLayout.initialize(block, key: key, value: value, hash: hash))
    }

    /// Runs `body` on the current table with the stripe of `hash` locked, inside an epoch
    /// section; then grows or shrinks the table if its stripe's count says so, and lets
    /// reclamation catch up if it fell far behind.
    ///
    /// The lock is taken before the section is entered: a writer waiting for its stripe —
    /// behind a resize, which holds every stripe while it rehashes — waits outside any
    /// section, so grace periods, and the reclamation of every map in the process, go on
    /// meanwhile. (Under the stripe's lock the table cannot be replaced nor the chain's
    /// nodes retired by anyone else; the section covers what `body` reads of the rest.)
    ///
    /// Inlinable, as every write is: specialised in the caller, a write makes no generic
    /// runtime calls (metadata lookups of `R` and of the closure's tuples); unspecialised,
    /// those made the write three times the instructions. Always inlined: a call would pass
    /// the body as a closure context, retaining what it captures.
    @inlinable @inline(__always)
    func write<R>(_ hash: Int, _ body: (DictionaryTable, Int) -> R) -> R {
        // A write inside a subscript access of this dictionary on this thread would wait for
        // the stripe that access holds, or, growing, for every stripe: stopped with the
        // overlapping-access message instead (it hung without one; found by review,
        // 2026-12-06, thirtieth session). One thread-local load when no access is open.
        if _slowPath(rcumaps_modify_holder_get() != nil) { checkNoOverlappingModify() }
        let stripe = hash & stripeMask
        var buckets = 0
        // Registered before the lock: the section below registers a new thread at the fork
        // gate, which a fork keeps closed while it waits for sections, some of which may wait
        // for this lock (a deadlock; found by review, 2026-12-05, as for the bucket hash).
        rcumaps_ensure_registered()
        locks.lock(stripe)
        let result: R = Epoch.withSection { _ in
            let table = currentTable
            buckets = table.bucketCount
            return body(table, stripe)
        }
        locks.unlock(stripe)
        afterWrite(stripe: stripe, buckets: buckets)
        return result
    }

    /// A write's follow-up, after it let go of `stripe` (whose table had `buckets`
    /// buckets): grows or shrinks the table if the stripe's count says so, and lets
    /// reclamation catch up if it fell far behind.
    @inlinable @inline(__always)
    func afterWrite(stripe: Int, buckets: Int) {
        // Entries average about the same in every stripe: one stripe's count tells the load.
        // (Shifts, not a division: both counts are powers of two, and a 64-bit division
        // takes tens of cycles on every write.)
        let perStripe = stripeCount(stripe).pointee.load(ordering: .relaxed)
        let peak = stripePeak(stripe)
        if perStripe > peak.pointee.load(ordering: .relaxed) { peak.pointee.store(perStripe, ordering: .relaxed) }
        let bucketsPerStripe = buckets &>> stripeShift
        // (A table at its largest size grows no more: without the bound, every write past
        // it took every stripe's lock to find that out.)
        if (perStripe > 3 &* bucketsPerStripe &+ 4 && buckets < DictionaryTable.maxBucketCount)
            || (buckets > minimumBuckets && perStripe &* 2 < bucketsPerStripe),
           resizeCheckIsDue(stripe, perStripe: perStripe, buckets: buckets) {
            resize(checkedBy: stripe, perStripe: perStripe)
        }
        if layout != .inline { nodes.throttleIfBehind() }
        replacedObjects?.throttleIfBehind()
        if _slowPath(overflowBehind.load(ordering: .relaxed)) { waitForOverflowReclamation() }
    }

    /// Stores a new entry's words in its chain (caller holds its stripe) and counts it.
    @inlinable
    func insert(key: UInt, value: UInt, hash: Int, into table: DictionaryTable, stripe: Int) {
        guard table.insert(key: key, value: value, hash: hash) else { _rcumapsTrap("RCUDictionary: out of memory for a bucket") }
        stripeCount(stripe).pointee.wrappingAdd(1, ordering: .relaxed)
    }

    /// The bucket count for the entries counted now: one or two entries a bucket, within
    /// `minimumBuckets ... DictionaryTable.maxBucketCount`.
    var wantedBucketCount: Int {
        Swift.min(DictionaryTable.maxBucketCount, Swift.max(minimumBuckets, Self.powerOfTwo(atLeast: count / 2)))
    }

    /// Whether a write of `stripe`, whose count `perStripe` says the table of `buckets` may be
    /// due for a resize, should count every stripe to decide. Not when a write of the stripe
    /// found no resize due at this table size and a count within `max(8, buckets per
    /// stripe)` of this one: one stripe over (or under) its share while the whole table is
    /// not (keys whose `hashValue`s crowd a few stripes) summed every stripe's count on each
    /// of its writes (found by review, 2026-12-04); now once in that many. Also due when the
    /// stripe's count has halved from the highest it reached since the note (at least 2):
    /// a stripe under half its share can never drift that far while it stays under, so once
    /// every stripe had noted such a count, emptying the dictionary never shrank it (found
    /// by review, 2026-12-05, eighteenth session). Halving from the note itself missed a
    /// stripe noted at 0 that filled and drained again, and counting a note of 0 made every
    /// write leaving such a stripe empty count every stripe; from the peak, a stripe checks
    /// at most once per fill and drain.
    @usableFromInline
    func resizeCheckIsDue(_ stripe: Int, perStripe: Int, buckets: Int) -> Bool {
        let line = counts + stripe &* 64
        guard line.advanced(by: 16).assumingMemoryBound(to: Atomic<Int>.self).pointee.load(ordering: .relaxed) == buckets
        else { return true }
        let checkedAt = line.advanced(by: 24).assumingMemoryBound(to: Atomic<Int>.self).pointee.load(ordering: .relaxed)
        let drift = perStripe > checkedAt ? perStripe &- checkedAt : checkedAt &- perStripe
        let peak = stripePeak(stripe).pointee.load(ordering: .relaxed)
        return drift >= Swift.max(8, buckets &>> stripeShift) || (peak >= 2 && perStripe &* 2 <= peak)
    }

    /// Rebuilds the bucket array at one or two entries a bucket, with every stripe held;
    /// readers keep reading the old array, which is retired after a grace period. Called by
    /// a write of `stripe` whose count was `perStripe`.
    @usableFromInline
    func resize(checkedBy stripe: Int, perStripe: Int) {
        resizeChecks.wrappingAdd(1, ordering: .relaxed)
        // One stripe over its share while the whole table is not (keys whose hashes crowd
        // into a few stripes) asks for the size the table has: nothing to do, and no reason
        // to take every stripe's lock on each such write; the stripe notes it
        // (``resizeCheckIsDue(_:perStripe:buckets:)``).
        // (The table's size is read in a section: another resize may retire it meanwhile.)
        let current = Epoch.withSection({ _ in currentTable.bucketCount })
        guard wantedBucketCount != current else {
            let line = counts + stripe &* 64
            line.advanced(by: 24).assumingMemoryBound(to: Atomic<Int>.self).pointee.store(perStripe, ordering: .relaxed)
            stripePeak(stripe).pointee.store(perStripe, ordering: .relaxed)
            line.advanced(by: 16).assumingMemoryBound(to: Atomic<Int>.self).pointee.store(current, ordering: .relaxed)
            return
        }
        guard resizing.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged
        else { return }
        defer { resizing.store(false, ordering: .releasing) }
        rcumaps_ensure_registered()  // before the locks (see `write`): it retires under them
        for stripe in 0...stripeMask { locks.lock(stripe) }
        let old = currentTable
        let wanted = wantedBucketCount
        var replaced = false
        if wanted != old.bucketCount {
            // Out of memory stops the program, as an insert's overflow bucket does. (Keeping the
            // old array instead, every later write found the table due for a resize and took
            // every stripe's lock again to fail again.)
            guard let new = DictionaryTable.make(bucketCount: wanted, tag: tableTag) else {
                _rcumapsTrap("RCUDictionary: out of memory for a table of \(wanted) buckets")
            }
            old.forEachSlot { bucket, slot, _ in
                let keyBits = DictionaryTable.keyWord(bucket, slot).pointee.load(ordering: .relaxed)
                let valueBits = DictionaryTable.valueWord(bucket, slot).pointee.load(ordering: .relaxed)
                // The words move to the new table, with what they own.
                guard new.insert(key: keyBits, value: valueBits, hash: hash(ofKeyWord: keyBits)) else {
                    _rcumapsTrap("RCUDictionary: out of memory for a bucket while resizing")
                }
            }
            table.store(UInt(bitPattern: new.base), ordering: .releasing)
            replaced = true
        }
        for stripe in (0...stripeMask).reversed() { locks.unlock(stripe) }
        if replaced { old.retire() }
    }
}

extension RCUDictionary: Sequence {
    /// Iterates a ``snapshot()`` taken when iteration starts: each step is self-contained
    /// (no section is held between steps), and the entries are those of the snapshot (whose
    /// single section, while it is taken, holds up grace periods: see ``snapshot()``).
    public func makeIterator() -> IndexingIterator<[(key: Key, value: Value)]> {
        snapshot().makeIterator()
    }
}

extension RCUDictionary: ExpressibleByDictionaryLiteral {
    /// A dictionary with the given entries (later duplicates win).
    ///
    /// The array is sized for the entries up front, but that size is no floor: removing
    /// them shrinks it as for entries inserted one by one. (It was the floor of
    /// ``init(minimumCapacity:)``, kept for good: found by review, 2026-12-06, thirtieth
    /// session.)
    public convenience init(dictionaryLiteral elements: (Key, Value)...) {
        self.init(minimumCapacity: elements.count)
        for (key, value) in elements { updateValue(value, forKey: key) }
        minimumBucketsWord.store(Self.minimumBuckets(for: 0, stripes: stripeMask + 1), ordering: .sequentiallyConsistent)
    }
}

/// The pool tags an ``RCUDictionary``'s memory is accounted under: its bucket arrays (and
/// their overflow buckets), its nodes, and its list of class references awaiting release.
/// Every dictionary shares the defaults; a stress run or a test that checks one dictionary's
/// memory while others run gives it tags of its own.
package struct RCUDictionaryMemoryTags: Sendable {
    package var table = DictionaryTable.tag
    package var nodes = PoolTag("rcud")
    package var objects = PoolTag("rcuo")

    package init() {}

    package init(table: PoolTag, nodes: PoolTag, objects: PoolTag) {
        self.table = table
        self.nodes = nodes
        self.objects = objects
    }
}

// MARK: - Nodes

/// The layout of a dictionary node: the key's hash (8 bytes), then the key and — for a
/// ``RCUDictionary/SlotLayout/node`` dictionary, whose values are not one word — the value,
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
    /// Whether nodes hold the value (else the dictionary keeps it in the slot).
    @usableFromInline let includesValue: Bool

    /// For `String` keys: where the node keeps the key's UTF-8 byte count (an `Int`, -1 when
    /// the key is longer than ``keyBytesCapacity``), followed by the bytes themselves; 0 for
    /// other keys.
    @usableFromInline let keyBytesOffset: Int
    /// The longest `String` key, in UTF-8 bytes, whose bytes a node keeps: what fills the
    /// node up to a multiple of 64 bytes (at least 16; 32 for a node without its value, 24
    /// for a node with an 8-byte value). Longer keys are compared with `==`.
    @usableFromInline let keyBytesCapacity: Int

    init(includesValue: Bool) {
        self.includesValue = includesValue
        let header = MemoryLayout<Int>.size
        keyOffset = (header + MemoryLayout<Key>.alignment - 1) & ~(MemoryLayout<Key>.alignment - 1)
        let afterKey = keyOffset + MemoryLayout<Key>.size
        valueOffset = (afterKey + MemoryLayout<Value>.alignment - 1) & ~(MemoryLayout<Value>.alignment - 1)
        let end = Swift.max(includesValue ? valueOffset + MemoryLayout<Value>.size : afterKey, header)
        if Key.self == String.self {
            keyBytesOffset = (end + 7) & ~7
            let lineEnd = (keyBytesOffset + 8 + 16 + 63) & ~63
            keyBytesCapacity = lineEnd - keyBytesOffset - 8
            size = lineEnd
        } else {
            keyBytesOffset = 0
            keyBytesCapacity = 0
            size = end
        }
        _rcumapsPrecondition(Swift.max(MemoryLayout<Key>.alignment, MemoryLayout<Value>.alignment) <= 16,
                             "RCUDictionary: keys and values aligned beyond 16 bytes are not supported")
    }

    /// Initializes a node for `key` (and `value`, if nodes hold values).
    @inlinable
    func initialize(_ block: UnsafeMutableRawPointer, key: Key, value: consuming Value?, hash: Int) -> UnsafeMutableRawPointer {
        block.initializeMemory(as: Int.self, to: hash)
        (block + keyOffset).initializeMemory(as: Key.self, to: key)
        if includesValue, let value { (block + valueOffset).initializeMemory(as: Value.self, to: value) }
        if Key.self == String.self {
            // The key's bytes (when they fit), so that lookups need not read the string's buffer.
            var string = unsafeBitCast(key, to: String.self)
            let capacity = keyBytesCapacity
            let stored = string.withUTF8 { bytes -> Int in
                guard bytes.count <= capacity else { return -1 }
                if let source = bytes.baseAddress {
                    (block + keyBytesOffset + 8).copyMemory(from: source, byteCount: bytes.count)
                }
                return bytes.count
            }
            (block + keyBytesOffset).initializeMemory(as: Int.self, to: stored)
        }
        rcumaps_tsan_publish(block)
        return block
    }

    /// Whether the UTF-8 bytes a `String`-keyed node keeps are `key`'s (`false` also when
    /// the node keeps none: the key was too long). Equal bytes mean equal strings; `false`
    /// does not mean different strings (see `RCUDictionary.nodeMatches`). Only for
    /// `Key == String`; the node is immutable and alive (caller's section or stripe).
    @inlinable @inline(__always)
    func keyBytesEqual(_ node: UnsafeRawPointer, _ key: Key) -> Bool {
        let stored = node.load(fromByteOffset: keyBytesOffset, as: Int.self)
        guard stored >= 0 else { return false }
        let equal = unsafeBitCast(key, to: String.self).utf8.withContiguousStorageIfAvailable { bytes in
            bytes.count == stored && (stored == 0 || Self.bytesEqual(bytes.baseAddress!, node + keyBytesOffset + 8, stored))
        }
        return equal ?? false
    }

    /// Whether the `count` bytes at `a` and at `b` are equal: up to 32 bytes inline, with
    /// loads that overlap rather than run past either end (a 20-byte key compares bytes
    /// 0–15 and 4–19), longer ones with `memcmp`. With the call to `memcmp` and the spills
    /// around it, a `String` key's lookup ran 297 instructions, 283 without (callgrind; see
    /// docs/performance.md, thirty-seventh session). `count` > 0; both ranges readable.
    @inlinable @inline(__always)
    static func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
        @inline(__always) func word(_ offset: Int) -> UInt64 {
            a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) ^ b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        }
        if count >= 8 {
            if count <= 16 { return word(0) | word(count &- 8) == 0 }
            if count <= 32 { return word(0) | word(8) | word(count &- 16) | word(count &- 8) == 0 }
            return memcmp(a, b, count) == 0
        }
        if count >= 4 {
            let first = a.loadUnaligned(as: UInt32.self) ^ b.loadUnaligned(as: UInt32.self)
            let last = a.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
                ^ b.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            return first | last == 0
        }
        var difference: UInt8 = 0
        for offset in 0..<count { difference |= a.load(fromByteOffset: offset, as: UInt8.self) ^ b.load(fromByteOffset: offset, as: UInt8.self) }
        return difference == 0
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
        if includesValue { (block + valueOffset).assumingMemoryBound(to: Value.self).deinitialize(count: 1) }
    }
}

/// How an ``RCUDictionary`` replaces the value of a present key.
///
/// Readers copy a value inside an epoch section while writers may replace it, so a value
/// must not change under a reader mid-copy. A value of one machine word can be kept in a
/// slot and replaced in place, atomically, where anything larger needs a new node (and the
/// old one retired).
@usableFromInline
enum DictionaryValueStorage: UInt8, Sendable {
    /// A new node replaces the old one, which is retired (values of any type).
    case node
    /// Eight bytes of plain data (`Int`, `Double`, two `Float`s, …), of any alignment: kept
    /// in the slot, replaced with an atomic exchange.
    case plainWord
    /// A strong reference to a class instance: kept in the slot, replaced with an atomic
    /// exchange; the reference replaced (or removed) is released after a grace period (a
    /// reader may be about to retain it).
    case objectWord

    init<Value>(for _: Value.Type) {
        // Any alignment: the slot's word is 8-aligned, and a value is copied in and out of it
        // whole (4-aligned pairs went in nodes, one allocation a write: found by review,
        // 2026-12-05, nineteenth session).
        guard MemoryLayout<Value>.size == 8, MemoryLayout<Value>.alignment <= 8 else { self = .node; return }
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
