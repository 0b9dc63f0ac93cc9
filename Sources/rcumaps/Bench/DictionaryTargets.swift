import RCUMaps
import Synchronization

/// The keys and values of one dictionary row (`mutex-dict`, `rcu-dict-*`, `mutex-dict-*`),
/// by bench index: an `RCUDictionary` row and its `Mutex` baseline share one schema type.
protocol DictionarySchema: Sendable {
    associatedtype Key: Hashable & Sendable
    associatedtype Value: Sendable
    /// Prefilled keys: indices `0..<entries` (lookup misses and churn reach `2 * entries`).
    var entries: Int { get }
    /// The key of index `index` (`0..<2 * entries`) that operations use.
    func key(_ index: Int) -> Key
    /// The key of index `index` as the prefill stores it: equal to ``key(_:)``.
    func prefillKey(_ index: Int) -> Key
    /// The value stored for `seed` (``BenchKeys/initialValue(_:)`` of the index when
    /// prefilling or inserting; random bits when updating).
    func value(_ seed: UInt64) -> Value
    /// What a lookup adds to its thread's checksum.
    func fold(_ value: Value) -> UInt64
    /// The schema the worker thread of random stream `stream` uses (``BenchTarget/forWorker(stream:)``).
    func forWorker(stream: Int) -> Self
    /// Runs `body` with the key of index `index` borrowed, as a caller passes a key it owns
    /// (one parsed from its request): every operation of both dictionaries takes its key so.
    func withKey<Result>(_ index: Int, _ body: (Key) -> Result) -> Result
}

extension DictionarySchema {
    @inline(__always)
    func prefillKey(_ index: Int) -> Key { key(index) }
    func forWorker(stream: Int) -> Self { self }
    /// Integer keys: a copy is the key's bits.
    @inline(__always)
    func withKey<Result>(_ index: Int, _ body: (Key) -> Result) -> Result { body(key(index)) }
}

/// `mutex-dict`: the hash maps' 8-byte keys (``BenchKeys/hashKey(_:)``) and `UInt64` values.
struct WordSchema: DictionarySchema {
    let entries: Int

    @inline(__always)
    func key(_ index: Int) -> UInt64 { BenchKeys.hashKey(index) }
    @inline(__always)
    func value(_ seed: UInt64) -> UInt64 { seed }
    @inline(__always)
    func fold(_ value: UInt64) -> UInt64 { value }
}

/// The class values of `rcu-dict-object` and `mutex-dict-object`.
final class BenchObject: Sendable {
    let id: UInt64

    init(id: UInt64) { self.id = id }
}

/// `rcu-dict-object`, `mutex-dict-object`: `Int` keys (the bits of ``BenchKeys/hashKey(_:)``),
/// ``BenchObject`` values. A lookup returns the object, retained, and reads its `id`.
struct ObjectSchema: DictionarySchema {
    let entries: Int
    /// One object per prefilled key, made up front: an update stores one of them, so
    /// neither side allocates an object per operation.
    let objects: [BenchObject]

    init(entries: Int) {
        self.entries = entries
        objects = (0..<entries).map { BenchObject(id: BenchKeys.initialValue($0)) }
    }

    @inline(__always)
    func key(_ index: Int) -> Int { Int(truncatingIfNeeded: BenchKeys.hashKey(index)) }
    @inline(__always)
    func value(_ seed: UInt64) -> BenchObject { objects[Int(seed % UInt64(objects.count))] }
    @inline(__always)
    func fold(_ value: BenchObject) -> UInt64 { value.id }
}

/// `rcu-dict-string`, `mutex-dict-string`: `String` keys of 16 to 24 ASCII characters
/// (``key(forIndex:)``), `Int` values.
///
/// The keys operations use are built up front (building one per operation would cost more
/// than the lookup); the prefill stores separately built copies, so every comparison of a
/// probe with a stored key compares bytes, as for keys that come from outside. Each worker
/// thread gets its own copies (``forWorker(stream:)``), as a server's threads probe with keys
/// parsed from their own requests, and operations borrow them (``withKey(_:_:)``), as a
/// server passes the key it owns: copied out of a shared array, each probe was a retain and
/// a release of its buffer, two atomic read-modify-writes a lookup that neither dictionary
/// makes (see docs/performance.md, 2026-12-04, ninth session).
struct StringSchema: DictionarySchema {
    let entries: Int
    /// The keys of indices `0..<2 * entries`.
    let keys: ProbeKeys

    /// Strings kept in a buffer that operations borrow from (an array's subscript returns a
    /// copy, retained; a buffer pointer's is an addressor).
    final class ProbeKeys: Sendable {
        // Invariant: `buffer` is initialised for its whole count until deinit; never mutated.
        nonisolated(unsafe) let buffer: UnsafeMutableBufferPointer<String>

        init(_ keys: [String]) {
            buffer = .allocate(capacity: keys.count)
            _ = buffer.initialize(from: keys)
        }

        deinit {
            buffer.deinitialize()
            buffer.deallocate()
        }

        var count: Int { buffer.count }
    }

    init(entries: Int) {
        self.entries = entries
        keys = ProbeKeys((0..<2 * entries).map(Self.key(forIndex:)))
    }

    init(entries: Int, keys: ProbeKeys) {
        self.entries = entries
        self.keys = keys
    }

    /// A schema whose probe keys are new strings (their own buffers) equal to these.
    func forWorker(stream: Int) -> StringSchema {
        StringSchema(entries: entries, keys: ProbeKeys(keys.buffer.map { String(decoding: Array($0.utf8), as: UTF8.self) }))
    }

    @inline(__always)
    func withKey<Result>(_ index: Int, _ body: (String) -> Result) -> Result { body(keys.buffer[index]) }

    /// A prefix of 0 to 8 characters (chosen by the index) and the 16 hex digits of
    /// ``BenchKeys/hashKey(_:)``: distinct, not sequential, too long for a small string
    /// (15 bytes), e.g. `session:0d2dd0b7bca50b29`.
    static func key(forIndex index: Int) -> String {
        let prefixes = ["", "k", "id", "key", "user", "flow:", "tenant", "account", "session:"]
        let hex = String(BenchKeys.hashKey(index), radix: 16)
        return prefixes[index % prefixes.count] + String(repeating: "0", count: 16 - hex.count) + hex
    }

    @inline(__always)
    func key(_ index: Int) -> String { keys.buffer[index] }
    func prefillKey(_ index: Int) -> String { Self.key(forIndex: index) }
    @inline(__always)
    func value(_ seed: UInt64) -> Int { Int(truncatingIfNeeded: seed) }
    @inline(__always)
    func fold(_ value: Int) -> UInt64 { UInt64(truncatingIfNeeded: value) }
}

/// An `RCUDictionary` (`rcu-dict-object`, `rcu-dict-object-field`, `rcu-dict-string`):
/// subscript lookups (or `withValue(forKey:)`, borrowed), subscript updates (as the Mutex
/// dictionary's), `insertIfAbsent` inserts and `removeValue` deletes.
struct RCUDictionaryTarget<Schema: DictionarySchema>: BenchTarget {
    let dictionary: RCUDictionary<Schema.Key, Schema.Value>
    let schema: Schema
    /// Whether lookups fold the value borrowed (`withValue(forKey:)`) instead of a copy (the subscript).
    let borrowsValues: Bool

    var entries: Int { schema.entries }

    private init(dictionary: RCUDictionary<Schema.Key, Schema.Value>, schema: Schema, borrowsValues: Bool) {
        self.dictionary = dictionary
        self.schema = schema
        self.borrowsValues = borrowsValues
    }

    /// The same dictionary, with the worker's schema (its own probe keys).
    func forWorker(stream: Int) -> Self {
        Self(dictionary: dictionary, schema: schema.forWorker(stream: stream), borrowsValues: borrowsValues)
    }

    /// A dictionary sized for the schema's entries, prefilled with them and checked by count.
    init(_ schema: Schema, borrowsValues: Bool = false) throws(MapError) {
        self.schema = schema
        self.borrowsValues = borrowsValues
        // Room for twice the entries, as the maps and the other baselines (and the Mutex
        // dictionary beside it since row 261) are sized: sized for the entries alone it ran
        // at twice its counterpart's load (found by review of the bench, 2026-12-07).
        dictionary = RCUDictionary(minimumCapacity: 2 * schema.entries)
        for index in 0..<schema.entries {
            dictionary.updateValue(schema.value(BenchKeys.initialValue(index)), forKey: schema.prefillKey(index))
        }
        guard dictionary.count == schema.entries else {
            throw MapError.invalidArgument.with(
                reason: "prefilled \(schema.entries) keys but the dictionary counts \(dictionary.count)")
        }
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        schema.withKey(index) { key in
            if borrowsValues {
                return dictionary.withValue(forKey: key) { (value: borrowing Schema.Value) in schema.fold(value) }
            }
            return dictionary[key].map { schema.fold($0) }
        }
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        // The subscript's setter, as the Mutex dictionary's update (neither returns the old value).
        let value = schema.value(value)
        schema.withKey(index) { key in dictionary[key] = value }
        return true
    }

    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        let value = schema.value(BenchKeys.initialValue(index))
        return schema.withKey(index) { key in dictionary.insertIfAbsent(value, forKey: key) ? .changed : .refused }
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        schema.withKey(index) { key in dictionary.removeValue(forKey: key) != nil ? .changed : .refused }
    }
}

/// The baseline: a Swift dictionary behind a `Synchronization.Mutex` (`mutex-dict` with
/// ``WordSchema``, the same keys as the hash maps; `mutex-dict-object`,
/// `mutex-dict-object-field`, `mutex-dict-string`).
struct MutexDictTarget<Schema: DictionarySchema>: BenchTarget {
    /// The Mutex the workers share (a class holds it: `Mutex` cannot be copied).
    final class Storage: Sendable {
        let mutex: Mutex<[Schema.Key: Schema.Value]>

        init(_ dictionary: [Schema.Key: Schema.Value]) { mutex = Mutex(dictionary) }
    }

    let shared: Storage
    let schema: Schema
    /// Whether lookups fold the value inside `withLock` instead of returning a copy of it.
    let borrowsValues: Bool

    var entries: Int { schema.entries }

    /// Creates the dictionary prefilled with the schema's entries, with room reserved for
    /// twice as many, as the maps and the other baselines are sized (it reserved room for
    /// the entries alone, a fuller table than theirs: found by review, 2026-12-06,
    /// twenty-sixth session).
    init(_ schema: Schema, borrowsValues: Bool = false) {
        self.borrowsValues = borrowsValues
        var dictionary: [Schema.Key: Schema.Value] = [:]
        dictionary.reserveCapacity(2 * schema.entries)
        for index in 0..<schema.entries {
            dictionary[schema.prefillKey(index)] = schema.value(BenchKeys.initialValue(index))
        }
        shared = Storage(dictionary)
        self.schema = schema
    }

    private init(shared: Storage, schema: Schema, borrowsValues: Bool) {
        self.shared = shared
        self.schema = schema
        self.borrowsValues = borrowsValues
    }

    /// The same dictionary, with the worker's schema (its own probe keys).
    func forWorker(stream: Int) -> Self {
        Self(shared: shared, schema: schema.forWorker(stream: stream), borrowsValues: borrowsValues)
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        schema.withKey(index) { key in
            if borrowsValues { return shared.mutex.withLock { $0[key].map { schema.fold($0) } } }
            return shared.mutex.withLock { $0[key] }.map { schema.fold($0) }
        }
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        let value = schema.value(value)
        schema.withKey(index) { key in shared.mutex.withLock { $0[key] = value } }
        return true
    }

    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        let value = schema.value(BenchKeys.initialValue(index))
        return schema.withKey(index) { key in
            shared.mutex.withLock { dictionary in insertIfAbsent(&dictionary, key, value) ? .changed : .refused }
        }
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        schema.withKey(index) { key in shared.mutex.withLock { $0.removeValue(forKey: key) != nil ? .changed : .refused } }
    }
}

/// Stores `value` under `key` if the key is absent; whether it did. One hash and one probe,
/// as the maps' `insertIfAbsent` and the C peers make: `Dictionary`'s defaulted subscript,
/// modified, finds the key's bucket once and inserts the default only when the key is
/// absent. (The baselines looked the key up, then stored it: two hashes and probes an
/// insert, which made the churn ratios against them look better than they are; found by
/// review, 2026-12-06, twenty-fourth session.)
@inline(__always)
func insertIfAbsent<Key: Hashable, Value>(_ dictionary: inout [Key: Value], _ key: Key,
                                          _ value: @autoclosure () -> Value) -> Bool {
    var inserted = false
    touch(&dictionary[key, default: { inserted = true; return value() }()])
    return inserted
}

/// An access that changes nothing, so that a `_modify` accessor runs.
@inline(__always)
func touch<T>(_ value: inout T) {}
