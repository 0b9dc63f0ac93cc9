/// The operations ``QueueMap`` and ``StackMap`` share: push, pop and peek of `Value`s,
/// over a byte-level ``/RCUBaseMaps/RawQueueStackMap``.
///
/// Values are copied in on a push and copied out on a pop or peek: nothing returned
/// borrows the map's memory, so no epoch section is needed, and a `Value` may be any
/// `BitwiseCopyable` type (its padding bytes are copied along, harmlessly).
///
/// Errors are ``/RCUBaseMaps/MapError`` values carrying Linux's errno. An empty map is
/// answered with `nil`, not ENOENT. The errors left are the map's refusals:
/// ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for a push into a full map without
/// overwriting, and ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) for a user-mode push or
/// pop once ``raw`` is frozen (or, through ``QueueMap/init(wrapping:)``, for access flags).
///
/// Concurrency: any number of producers and consumers on any threads and tasks. Each
/// push, pop and peek is atomic (one short lock around the ring, as Linux's spin lock,
/// but one that never gives up: not from a signal handler that may interrupt an operation
/// on the same map, except for the answers made without it — an empty map's pop or peek,
/// a full map's push that does not overwrite): of concurrent pops, each element goes to exactly one; nothing pushed is lost
/// unless a push that overwrites (``push(_:overwritingOldest:)``) drops it, and that push
/// returns it.
public protocol PushPopMap<Value>: AnyObject, Sendable {
    /// The element type, copied in and out whole.
    associatedtype Value: BitwiseCopyable & Sendable

    /// The byte-level queue or stack underneath: its value size is `Value`'s size. Use it
    /// for helper-mode byte access, freezing and C interoperation; it holds the same elements.
    var raw: RawQueueStackMap { get }
}

extension PushPopMap {
    /// Elements in the map: a snapshot under concurrent pushes and pops. Any thread; no lock.
    @inlinable public var count: Int { raw.count }

    /// Most elements the map holds (`maxEntries`).
    @inlinable public var capacity: Int { raw.capacity }

    /// Whether the map holds no element (a snapshot).
    @inlinable public var isEmpty: Bool { raw.count == 0 }

    /// Pushes a copy of `value` (`BPF_ANY`).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) when the map is full (nothing
    ///   is stored); ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) when frozen.
    ///
    /// Concurrency: any thread; atomic with every other push, pop and peek.
    @inlinable
    public func push(_ value: Value) throws(MapError) {
        try withUnsafeBytes(of: value) { (bytes) throws(MapError) in try raw.push(bytes, flags: .any) }
    }

    /// Pushes a copy of `value`; when the map is full and `overwritingOldest` is true, first
    /// drops its *oldest* element — a queue's front, a stack's bottom — as Linux's
    /// `BPF_EXIST` push does.
    ///
    /// - Returns: The element dropped to make room, or `nil` when there was room.
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) when the map is full and
    ///   `overwritingOldest` is false; ``/RCUBaseMaps/MapError/permissionDenied`` when frozen.
    ///
    /// Concurrency: any thread; the drop and the push are one atomic step.
    @inlinable @discardableResult
    public func push(_ value: Value, overwritingOldest: Bool) throws(MapError) -> Value? {
        try withUnsafeBytes(of: value) { (bytes) throws(MapError) -> Value? in
            try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (old) throws(MapError) -> Value? in
                let oldBytes = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(old)[..<MemoryLayout<Value>.size])
                let dropped = try raw.exchange(key: UnsafeRawBufferPointer(start: nil, count: 0), value: bytes,
                                               flags: overwritingOldest ? .exist : .any, into: oldBytes)
                // The dropped bytes are those of a `Value` some push copied in.
                return dropped ? UnsafeMutableRawPointer(old.baseAddress!).load(as: Value.self) : nil
            }
        }
    }

    /// Removes and returns the next element — a queue's oldest, a stack's newest — or `nil`
    /// when the map is empty.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) when frozen.
    ///
    /// Concurrency: any thread; of concurrent pops, each element goes to exactly one.
    @inlinable
    public func pop() throws(MapError) -> Value? {
        try copyOut { (bytes) throws(MapError) in try raw.pop(into: bytes) }
    }

    /// The element ``pop()`` would return, left in the map, or `nil` when empty. Works on a
    /// frozen map.
    ///
    /// Concurrency: any thread; a snapshot: another thread may pop it next.
    @inlinable
    public func peek() throws(MapError) -> Value? {
        try copyOut { (bytes) throws(MapError) in try raw.peek(into: bytes) }
    }

    // MARK: Helper mode

    /// ``push(_:overwritingOldest:)`` in helper mode (`bpf_map_push_elem`): as an eBPF
    /// program pushes, unaffected by a freeze. The dropped element is not reported.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) when full and not overwriting;
    ///   ``/RCUBaseMaps/MapError/accessDenied`` (EACCES) for a `BPF_F_RDONLY_PROG` map.
    ///
    /// Concurrency: any thread, inside `section`; the value is copied.
    @inlinable
    public func push(_ value: Value, overwritingOldest: Bool = false, in section: borrowing EpochSection) throws(MapError) {
        try withUnsafeBytes(of: value) { (bytes) throws(MapError) in
            try raw.push(bytes, flags: overwritingOldest ? .exist : .any, in: section)
        }
    }

    /// ``pop()`` in helper mode (`bpf_map_pop_elem`), unaffected by a freeze.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/accessDenied`` (EACCES) for a `BPF_F_RDONLY_PROG` map.
    @inlinable
    public func pop(in section: borrowing EpochSection) throws(MapError) -> Value? {
        try copyOut { (bytes) throws(MapError) in try raw.pop(into: bytes, in: section) }
    }

    /// ``peek()`` in helper mode (`bpf_map_peek_elem`).
    @inlinable
    public func peek(in section: borrowing EpochSection) throws(MapError) -> Value? {
        try copyOut { (bytes) throws(MapError) in try raw.peek(into: bytes, in: section) }
    }

    /// Runs a byte-level pop or peek into a `Value`'s bytes: `nil` for ENOENT.
    @inlinable
    func copyOut(_ operation: (UnsafeMutableRawBufferPointer) throws(MapError) -> Void) throws(MapError) -> Value? {
        try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (value) throws(MapError) -> Value? in
            let bytes = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(value)[..<MemoryLayout<Value>.size])
            do throws(MapError) {
                try operation(bytes)
            } catch where error == .keyNotFound {
                return nil
            }
            // The map holds bytes that a `Value` was written as.
            return UnsafeMutableRawPointer(value.baseAddress!).load(as: Value.self)
        }
    }
}

extension MapDefinition {
    /// The definition of a typed queue or stack of `Value`.
    static func pushPop<Value>(_ type: MapType, value: Value.Type, capacity: Int, name: String, numaNode: Int?,
                               poolTag: PoolTag?) -> MapDefinition {
        MapDefinition(type: type, keySize: 0, valueSize: MemoryLayout<Value>.size, maxEntries: capacity,
                      name: name, numaNode: numaNode, poolTag: poolTag)
    }

    /// Checks that an existing queue or stack of `type` stores `Value`s.
    static func checkPushPop<Value>(_ raw: RawQueueStackMap, type: MapType, value: Value.Type) throws(MapError) {
        guard raw.definition.type == type, raw.definition.valueSize == MemoryLayout<Value>.size else {
            throw MapError.invalidArgument.with(reason: """
                the map is a \(raw.definition.type) of \(raw.definition.valueSize)-byte values, not a \(type) of \
                \(Value.self) (\(MemoryLayout<Value>.size) bytes)
                """)
        }
    }
}

/// A `QUEUE` map of `Value`s: first in, first out, bounded, as Linux's
/// `BPF_MAP_TYPE_QUEUE`. Storage is ``/RCUBaseMaps/RawQueueStackMap``.
///
/// ```swift
/// let events = try QueueMap<Event>(capacity: 1024)
/// try events.push(event)                                  // producers, any thread
/// try events.push(event, overwritingOldest: true)         // or drop the oldest when full
/// while let next = try events.pop() { handle(next) }      // consumers, any thread
/// ```
///
/// Concurrency: any number of producers and consumers on any threads; see ``PushPopMap``.
public final class QueueMap<Value: BitwiseCopyable & Sendable>: PushPopMap {
    /// The byte-level queue underneath.
    public let raw: RawQueueStackMap

    /// An empty queue for at most `capacity` elements (its ring is allocated now).
    ///
    /// - Parameters:
    ///   - capacity: the most elements the queue holds, 1 through `UInt32.max`.
    ///   - name: at most 15 characters of `[A-Za-z0-9_.]`, as Linux's map names.
    ///   - numaNode: the NUMA node for the ring, or `nil`.
    ///   - poolTag: the pool tag the ring's memory is accounted under (a ring placed on a
    ///     node of a machine with several, or past one epoch block, is on anonymous pages,
    ///     which no tag counts).
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a zero-size `Value` or a bad
    ///   capacity, name or node; ``/RCUBaseMaps/MapError/outOfSpace`` for a `Value` over
    ///   4 MiB; ``/RCUBaseMaps/MapError/noMemory``.
    public init(capacity: Int, name: String = "", numaNode: Int? = nil, poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawQueueStackMap(.pushPop(.queue, value: Value.self, capacity: capacity, name: name,
                                            numaNode: numaNode, poolTag: poolTag))
    }

    /// A typed view of an existing byte-level queue (both views see the same elements).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` if `raw` is a stack or its value size
    ///   is not `Value`'s.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawQueueStackMap) throws(MapError) {
        try MapDefinition.checkPushPop(raw, type: .queue, value: Value.self)
        self.raw = raw
    }
}

/// A `STACK` map of `Value`s: last in, first out, bounded, as Linux's
/// `BPF_MAP_TYPE_STACK`. Storage is ``/RCUBaseMaps/RawQueueStackMap``.
///
/// ```swift
/// let free = try StackMap<UInt32>(capacity: 64)
/// for slot in 0..<64 { try free.push(UInt32(slot)) }
/// if let slot = try free.pop() { use(slot) }              // the most recently pushed
/// ```
///
/// A push that overwrites (``PushPopMap/push(_:overwritingOldest:)``) drops the *bottom*
/// element — the oldest — as Linux does, not the top.
///
/// Concurrency: any number of producers and consumers on any threads; see ``PushPopMap``.
public final class StackMap<Value: BitwiseCopyable & Sendable>: PushPopMap {
    /// The byte-level stack underneath.
    public let raw: RawQueueStackMap

    /// An empty stack for at most `capacity` elements (its ring is allocated now).
    ///
    /// - Parameters:
    ///   - capacity: the most elements the stack holds, 1 through `UInt32.max`.
    ///   - name: at most 15 characters of `[A-Za-z0-9_.]`, as Linux's map names.
    ///   - numaNode: the NUMA node for the ring, or `nil`.
    ///   - poolTag: the pool tag the ring's memory is accounted under (a ring placed on a
    ///     node of a machine with several, or past one epoch block, is on anonymous pages,
    ///     which no tag counts).
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a zero-size `Value` or a bad
    ///   capacity, name or node; ``/RCUBaseMaps/MapError/outOfSpace`` for a `Value` over
    ///   4 MiB; ``/RCUBaseMaps/MapError/noMemory``.
    public init(capacity: Int, name: String = "", numaNode: Int? = nil, poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawQueueStackMap(.pushPop(.stack, value: Value.self, capacity: capacity, name: name,
                                            numaNode: numaNode, poolTag: poolTag))
    }

    /// A typed view of an existing byte-level stack (both views see the same elements).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` if `raw` is a queue or its value size
    ///   is not `Value`'s.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawQueueStackMap) throws(MapError) {
        try MapDefinition.checkPushPop(raw, type: .stack, value: Value.self)
        self.raw = raw
    }
}
