import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `HASH` map built as eBPF-for-Windows' `ebpf_hash_table.c`: lock-free readers,
/// one lock per bucket for writers, buckets replaced whole and retired through the epoch.
///
/// Layout:
/// - a fixed array of bucket pointers (a power of two, up to 2^22) with one 4-byte futex
///   mutex per bucket;
/// - a bucket is one epoch allocation: `count`, then `count` entries of
///   `[value pointer (atomic) | key padded to 8 bytes]`, sorted by key bytes, so a
///   bucket's keys sit together in memory and iteration has a total order;
/// - values live out of line (one epoch allocation each), so a helper-mode pointer stays
///   valid — and in-place writes stay visible — while other keys of its bucket change.
///
/// Writers:
/// - a new key publishes a copy of its bucket with the entry inserted (release store) and
///   retires the old bucket;
/// - replacing a value swaps the entry's value pointer atomically (the entry's key never
///   changes) and retires the displaced value — exactly once, since only the holder of
///   the bucket lock can displace it;
/// - delete publishes a copy without the entry; if that copy cannot be allocated it
///   clears the value pointer instead (a tombstone, skipped by readers and dropped by the
///   bucket's next copy), so delete never fails for lack of memory.
///
/// Concurrency: any number of readers and writers on any threads. Readers take no lock;
/// writers of different buckets never contend.
public final class BucketHashMap: ObservableBaseMap, FlaggedWrites, @unchecked Sendable {
    // @unchecked Sendable: buckets are reached through atomics and changed only under
    // their bucket's lock; everything else is immutable or atomic.

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    let keySize: Int
    let valueSize: Int
    /// Bytes of one bucket entry: value pointer (8) + key padded to 8.
    let entryStride: Int
    let bucketCount: Int
    let bucketMask: Int
    let maxEntries: Int
    let tag: PoolTag
    let hasher: KeyHasher
    let capacity: CapacityGate
    /// Invariant: `bucketCount` atomics, each 0 or the address of a published bucket.
    let buckets: UnsafeMutablePointer<Atomic<UInt>>
    /// Invariant: `bucketCount` mutexes at stable addresses, destroyed in deinit.
    let locks: UnsafeMutablePointer<Mutex<Void>>
    /// The provider layer's hooks, if this map is the base of a custom map.
    let observer: (any MapEntryObserver)?

    static let bucketHeaderSize = 8
    static let maxBucketCount = 1 << 22

    /// Creates an empty map with `min(nextPowerOfTwo(maxEntries), 2^22)` buckets.
    ///
    /// - Throws: ``MapError/invalidArgument`` or ``MapError/outOfSpace`` for a bad definition.
    public convenience init(_ definition: MapDefinition) throws(MapError) {
        try self.init(definition, observer: nil)
    }

    /// Creates an empty map whose removals are reported to `observer` (provider layer).
    package init(_ definition: MapDefinition, observer: (any MapEntryObserver)?) throws(MapError) {
        guard definition.type == .hash else {
            throw MapError.invalidArgument.with(reason: "BucketHashMap serves BPF_MAP_TYPE_HASH, not \(definition.type)")
        }
        try definition.validateHash()
        self.definition = definition
        keySize = definition.keySize
        valueSize = definition.valueSize
        entryStride = 8 + roundUp8(definition.keySize)
        maxEntries = definition.maxEntries
        capacity = CapacityGate(maxEntries: definition.maxEntries)
        bucketCount = min(Int(UInt(maxEntries).nextPowerOfTwoClamped), Self.maxBucketCount)
        bucketMask = bucketCount - 1
        tag = definition.effectivePoolTag
        hasher = KeyHasher()
        self.observer = observer
        buckets = .allocate(capacity: bucketCount)
        locks = .allocate(capacity: bucketCount)
        for index in 0..<bucketCount {
            (buckets + index).initialize(to: Atomic<UInt>(0))
            (locks + index).initialize(to: Mutex(()))
        }
    }

    deinit {
        for index in 0..<bucketCount {
            let bucket = buckets[index].load(ordering: .acquiring)
            if bucket != 0 {
                let raw = UnsafeMutableRawPointer(bitPattern: bucket)!
                for position in 0..<Self.entryCount(raw) {
                    guard let value = valuePointer(raw, position) else { continue }
                    if let observer {
                        let key = UnsafeRawBufferPointer(start: keyPointer(raw, position), count: keySize)
                        let stored = UnsafeRawBufferPointer(start: value, count: valueSize)
                        _ = observer.entryWillBeRemoved(key: key, value: stored, flags: .mapCleanup)
                        observer.entryWasRemoved(key: key, value: stored, flags: .mapCleanup)
                    }
                    EpochMemory.free(value)
                }
                EpochMemory.free(raw)
            }
        }
        buckets.deinitialize(count: bucketCount)
        buckets.deallocate()
        locks.deinitialize(count: bucketCount)
        locks.deallocate()
    }

    /// Entries in the map: a snapshot under concurrent updates (arrays: `maxEntries`). Any thread.
    public var count: Int { capacity.entries }

    // MARK: Bucket layout

    @inline(__always)
    static func entryCount(_ bucket: UnsafeRawPointer) -> Int { bucket.load(as: Int.self) }

    @inline(__always)
    func entry(_ bucket: UnsafeRawPointer, _ position: Int) -> UnsafeRawPointer {
        bucket + Self.bucketHeaderSize + position * entryStride
    }

    /// The atomic value pointer of an entry.
    @inline(__always)
    func valueSlot(_ bucket: UnsafeRawPointer, _ position: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        UnsafeMutablePointer(mutating: entry(bucket, position).assumingMemoryBound(to: Atomic<UInt>.self))
    }

    @inline(__always)
    func valuePointer(_ bucket: UnsafeRawPointer, _ position: Int) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: valueSlot(bucket, position).pointee.load(ordering: .acquiring))
    }

    @inline(__always)
    func keyPointer(_ bucket: UnsafeRawPointer, _ position: Int) -> UnsafeRawPointer {
        entry(bucket, position) + 8
    }

    @inline(__always)
    func bucketIndex(_ key: UnsafeRawBufferPointer) -> Int {
        Int(truncatingIfNeeded: hasher.hash(key.baseAddress!, count: keySize)) & bucketMask
    }

    @inline(__always)
    func loadBucket(_ index: Int) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: buckets[index].load(ordering: .acquiring))
    }

    /// Position of `key` in `bucket`, or where it would be inserted (sorted by bytes).
    @inline(__always)
    func search(_ bucket: UnsafeRawPointer?, _ key: UnsafeRawPointer) -> (position: Int, found: Bool) {
        guard let bucket else { return (0, false) }
        let count = Self.entryCount(bucket)
        for position in 0..<count {
            let order = memcmp(keyPointer(bucket, position), key, keySize)
            if order == 0 { return (position, true) }
            if order > 0 { return (position, false) }
        }
        return (count, false)
    }

    /// The value for `key` in the published bucket, or nil. Caller holds an epoch.
    @inline(__always)
    func findValue(_ key: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        guard let bucket = loadBucket(bucketIndex(key)) else { return nil }
        let count = Self.entryCount(bucket)
        var position = 0
        while position < count {
            if keysEqual(keyPointer(bucket, position), key.baseAddress!, count: keySize) {
                return valuePointer(bucket, position)
            }
            position &+= 1
        }
        return nil
    }

    // MARK: Lookup

    /// User-mode lookup. Contract: ``RawMap/lookup(key:into:)``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        Epoch.enter()
        defer { Epoch.exit() }
        guard let stored = findValue(key) else { throw MapError.keyNotFound }
        value.baseAddress!.copyMemory(from: stored, byteCount: valueSize)
    }

    /// Helper-mode lookup, borrowed until `section` ends. Contract: ``RawMap/lookupInPlace(key:in:)``.
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        try checkKey(key, keySize)
        guard let stored = findValue(key) else { throw MapError.keyNotFound }
        return UnsafeMutableRawBufferPointer(start: stored, count: valueSize)
    }

    // MARK: Writers

    /// What a writer leaves to retire once it has released the bucket lock.
    /// Addresses travel out of the lock as integers (`Mutex.withLock` results are `sending`).
    struct Retired: Sendable {
        var bucket: UInt = 0
        var value: UInt = 0

        init(bucket: UnsafeMutableRawPointer? = nil, value: UnsafeMutableRawPointer? = nil) {
            self.bucket = UInt(bitPattern: bucket)
            self.value = UInt(bitPattern: value)
        }

        func retire() {
            if let bucket = bucket.rawPointer { EpochMemory.free(bucket) }
            if let value = value.rawPointer { EpochMemory.free(value) }
        }
    }

    /// Builds a bucket from the live entries of `old`, minus `removing`, plus
    /// (`insertKey`, `insertValue`) in key order. Caller holds the bucket's lock.
    /// Returns nil when the allocation fails, or when no entry would remain (0 is then the
    /// bucket to publish).
    func copyBucket(_ old: UnsafeRawPointer?, removing: Int? = nil,
                    insertKey: UnsafeRawPointer? = nil, insertValue: UnsafeMutableRawPointer? = nil)
        -> (bucket: UnsafeMutableRawPointer?, allocationFailed: Bool)
    {
        let oldCount = old.map(Self.entryCount) ?? 0
        var live = 0
        for position in 0..<oldCount where position != removing && valuePointer(old!, position) != nil { live += 1 }
        let newCount = live + (insertKey == nil ? 0 : 1)
        if newCount == 0 { return (nil, false) }
        guard let bucket = EpochMemory.allocate(byteCount: Self.bucketHeaderSize + newCount * entryStride, tag: tag) else {
            return (nil, true)
        }
        bucket.storeBytes(of: newCount, as: Int.self)
        var target = 0
        var inserted = insertKey == nil
        func append(key: UnsafeRawPointer, value: UnsafeMutableRawPointer) {
            let destination = bucket + Self.bucketHeaderSize + target * entryStride
            destination.bindMemory(to: Atomic<UInt>.self, capacity: 1)
                .initialize(to: Atomic(UInt(bitPattern: value)))
            (destination + 8).copyMemory(from: key, byteCount: keySize)
            let padding = entryStride - 8 - keySize
            if padding > 0 { (destination + 8 + keySize).initializeMemory(as: UInt8.self, repeating: 0, count: padding) }
            target += 1
        }
        for position in 0..<oldCount where position != removing {
            guard let value = valuePointer(old!, position) else { continue }
            let key = keyPointer(old!, position)
            if !inserted, memcmp(insertKey!, key, keySize) < 0 {
                append(key: insertKey!, value: insertValue!)
                inserted = true
            }
            append(key: key, value: value)
        }
        if !inserted { append(key: insertKey!, value: insertValue!) }
        assert(target == newCount)
        return (bucket, false)
    }

    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                operation: MapOperationFlags) throws(MapError) {
        try checkFlags(flags)
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        let index = bucketIndex(key)
        guard let newValue = EpochMemory.allocate(byteCount: valueSize, tag: tag) else { throw MapError.noMemory }
        newValue.copyMemory(from: value.baseAddress!, byteCount: valueSize)
        let outcome: Result<Retired, MapError> = locks[index].withLock { _ in
            let old = buckets[index].load(ordering: .acquiring).rawPointer
            let (position, found) = search(old, key.baseAddress!)
            if found, let displaced = valuePointer(old!, position) {
                if flags == .noExist { return .failure(.alreadyExists) }
                // Deprecated-style providers hear of the displacement under the lock.
                _ = observer?.entryWillBeRemoved(key: key, value: UnsafeRawBufferPointer(start: displaced, count: valueSize),
                                                 flags: operation.union(.update))
                valueSlot(old!, position).pointee.store(UInt(bitPattern: newValue), ordering: .releasing)
                return .success(Retired(value: displaced))
            }
            if flags == .exist { return .failure(.keyNotFound) }
            // The key is absent and stays so while we hold its bucket's lock.
            guard case .reserved = capacity.reserve(keyExists: { false }) else { return .failure(.outOfSpace) }
            if found {
                // A tombstone of this key: bring it back to life in place.
                valueSlot(old!, position).pointee.store(UInt(bitPattern: newValue), ordering: .releasing)
                capacity.resolve(published: true)
                return .success(Retired())
            }
            let (bucket, failed) = copyBucket(old, insertKey: key.baseAddress!, insertValue: newValue)
            guard !failed, let bucket else {
                capacity.resolve(published: false)
                return .failure(.noMemory)
            }
            buckets[index].store(UInt(bitPattern: bucket), ordering: .releasing)
            capacity.resolve(published: true)
            return .success(Retired(bucket: old))
        }
        switch outcome {
        case .success(let retired):
            if let observer, let displaced = retired.value.rawPointer {
                observer.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(start: displaced, count: valueSize),
                                         flags: operation.union(.update))
            }
            retired.retire()
        case .failure(let error):
            EpochMemory.freeUnpublished(newValue)
            throw error
        }
    }

    func delete(key: UnsafeRawBufferPointer, operation: MapOperationFlags) throws(MapError) {
        try checkKey(key, keySize)
        let removed = try remove(key, operation: operation)
        observer?.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(start: removed, count: valueSize),
                                  flags: operation)
        EpochMemory.free(removed)
    }

    /// Atomic removal with an inspection of the removed value first. Contract: ``ObservableBaseMap``.
    package func remove(key: UnsafeRawBufferPointer,
                        inspecting inspect: (UnsafeRawBufferPointer) throws(MapError) -> Void) throws(MapError) {
        try checkKey(key, keySize)
        let removed = try remove(key, operation: [], inspect: inspect)
        observer?.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(start: removed, count: valueSize), flags: [])
        EpochMemory.free(removed)
    }

    /// Atomic lookup-and-delete. Contract: ``RawMap/lookupAndDelete(key:into:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        let removed = try remove(key, operation: [])
        // Only we removed it, and only we retire it: it is intact and ours to read.
        value.baseAddress!.copyMemory(from: removed, byteCount: valueSize)
        observer?.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(start: removed, count: valueSize), flags: [])
        EpochMemory.free(removed)
    }

    /// Unlinks `key`; returns its value, which the caller must report and retire.
    func remove(_ key: UnsafeRawBufferPointer, operation: MapOperationFlags,
                inspect: (UnsafeRawBufferPointer) throws(MapError) -> Void = { _ in }) throws(MapError) -> UnsafeMutableRawPointer {
        let index = bucketIndex(key)
        let outcome: Result<UInt, MapError> = locks[index].withLock { _ in
            let old = buckets[index].load(ordering: .acquiring).rawPointer
            let (position, found) = search(old, key.baseAddress!)
            guard found, let removed = valuePointer(old!, position) else { return .failure(.keyNotFound) }
            do throws(MapError) {
                try inspect(UnsafeRawBufferPointer(start: removed, count: valueSize))
            } catch {
                return .failure(error)
            }
            if let refusal = observer?.entryWillBeRemoved(key: key, value: UnsafeRawBufferPointer(start: removed, count: valueSize),
                                                          flags: operation) {
                return .failure(refusal)
            }
            capacity.beginRemoval()
            let (bucket, failed) = copyBucket(old, removing: position)
            if failed {
                // No memory for a smaller bucket: leave a tombstone instead.
                valueSlot(old!, position).pointee.store(0, ordering: .releasing)
            } else {
                buckets[index].store(UInt(bitPattern: bucket), ordering: .releasing)
                EpochMemory.free(old!)
            }
            capacity.endRemoval(removed: true)
            return .success(UInt(bitPattern: removed))
        }
        return try outcome.get().rawPointer!
    }

    // MARK: Iteration

    /// Get-next-key iteration. Contract: ``RawMap/nextKey(after:into:)``.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        if let key { try checkKey(key, keySize) }
        guard nextKey.count == keySize, nextKey.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(nextKey.count) bytes, map keys are \(keySize)")
        }
        Epoch.enter()
        defer { Epoch.exit() }
        // Order: (bucket index, key bytes). Resume strictly after the cursor's place,
        // whether or not the cursor key is still in the map.
        var index = 0
        if let key {
            index = bucketIndex(key)
            if let bucket = loadBucket(index) {
                for position in 0..<Self.entryCount(bucket)
                where valuePointer(bucket, position) != nil
                    && memcmp(keyPointer(bucket, position), key.baseAddress!, keySize) > 0 {
                    nextKey.baseAddress!.copyMemory(from: keyPointer(bucket, position), byteCount: keySize)
                    return
                }
            }
            index += 1
        }
        while index < bucketCount {
            if let bucket = loadBucket(index) {
                for position in 0..<Self.entryCount(bucket) where valuePointer(bucket, position) != nil {
                    nextKey.baseAddress!.copyMemory(from: keyPointer(bucket, position), byteCount: keySize)
                    return
                }
            }
            index += 1
        }
        throw MapError.keyNotFound
    }
}

extension UInt {
    @inline(__always)
    var rawPointer: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: self) }
}
