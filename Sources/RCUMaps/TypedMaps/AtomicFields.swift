import Synchronization

/// An atomic view of a value stored in a map, in place (the typed form of a helper-mode
/// pointer, as swift-atomics' `UnsafeAtomic(at:)` is for one word).
///
/// It is handed, borrowed, to the closures of ``InPlaceKeyValueMap/withAtomicFields(forKey:_:)``
/// and ``InPlaceKeyValueMap/upsertAtomicFields(forKey:default:_:)``: it cannot be copied or
/// kept, so the memory it points into never outlives the epoch section.
///
/// ```swift
/// struct Counters: BitwiseCopyable { var packets: UInt64 = 0; var bytes: UInt64 = 0 }
/// flows.withAtomicFields(forKey: flow) { counters in
///     counters[\.packets].wrappingAdd(1, ordering: .relaxed)
///     counters[\.bytes].wrappingAdd(1500, ordering: .relaxed)
/// }
/// counts.withAtomicFields(forKey: key) { $0[.whole].wrappingAdd(1, ordering: .relaxed) }  // the whole value
/// ```
///
/// Concurrency: atomic operations on a field are atomic with respect to every other
/// atomic operation on it, from any thread, and to the map's own one-word replacements
/// (see ``InPlaceKeyValueMap`` for which maps replace values in place). Plain reads and
/// writes (``value``) are not atomic.
public struct AtomicFields<Value: BitwiseCopyable>: ~Copyable {
    /// Invariant: points at a live `Value` in a map, 8-byte aligned, valid until the
    /// section the view was made in ends.
    @usableFromInline let base: UnsafeMutableRawPointer

    @inlinable
    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    /// The field at `field`, as an atomic.
    ///
    /// - Precondition: `field` names a stored property (or `\.self`), at an offset aligned
    ///   for its type; checked, with a message, in every build.
    @inlinable
    public subscript<Field: AtomicRepresentable>(_ field: KeyPath<Value, Field>) -> Atomic<Field> {
        unsafeAddress {
            let offset = AtomicFields.checkedOffset(of: field, as: Field.self)
            // The field's bytes are part of the stored value; only touched atomically by the
            // views that address them.
            return UnsafePointer((base + offset).assumingMemoryBound(to: Atomic<Field>.self))
        }
    }

    /// The whole value, read and written with plain (non-atomic) loads and stores.
    @inlinable
    public var value: Value {
        get { base.load(as: Value.self) }
        nonmutating set { base.storeBytes(of: newValue, as: Value.self) }
    }

    /// The offset of `field`, checked. With a key path literal and a concrete `Value`, the
    /// optimizer folds the offset to a constant and drops both checks and the key path
    /// itself: no key path object is made (and retained, a write to memory every thread
    /// shares) per access. So the checks must not mention `field` outside their cold,
    /// never-inlined failure paths.
    @inlinable @inline(__always)
    static func checkedOffset<Field: AtomicRepresentable>(of field: KeyPath<Value, Field>, as _: Field.Type) -> Int {
        guard let offset = MemoryLayout<Value>.offset(of: field) else { notStored(field) }
        if _slowPath(offset % MemoryLayout<Atomic<Field>>.alignment != 0
                         || MemoryLayout<Atomic<Field>>.alignment > TypedLayout.valueAlignment) {
            misaligned(field, offset)
        }
        return offset
    }

    @usableFromInline @inline(never)
    static func notStored<Field>(_ field: KeyPath<Value, Field>) -> Never {
        _rcumapsTrap("AtomicFields: \(field) is not a stored property of \(Value.self)")
    }

    @usableFromInline @inline(never)
    static func misaligned<Field>(_ field: KeyPath<Value, Field>, _ offset: Int) -> Never {
        _rcumapsTrap("AtomicFields: \(field) at offset \(offset) is not aligned for an atomic \(Field.self)")
    }
}

/// The one name of ``AtomicFields``' whole-value subscript: `fields[.whole]`.
public enum AtomicWholeValue: Sendable {
    /// The whole value.
    case whole
}

extension AtomicFields where Value: AtomicRepresentable {
    /// The whole value, as one atomic, when it is one (`UInt64`, `Int`, …): what
    /// `self[\.self]` is, without a key path.
    ///
    /// ```swift
    /// packets.withAtomicFields(at: 3) { $0[.whole].wrappingAdd(1, ordering: .relaxed) }
    /// ```
    ///
    /// Prefer it on hot paths. A key path literal passed to the key path subscript from
    /// another module is still made at run time in Swift 6.3 — `swift_getKeyPath`, then a
    /// retain and a release of the one object every thread shares — even though its offset
    /// folds to a constant: about 60 instructions an access, and a write to shared memory
    /// that kept per-CPU counters from scaling (`rcumaps bench --maps percpu`).
    @inlinable
    public subscript(_: AtomicWholeValue) -> Atomic<Value> {
        unsafeAddress {
            // The value's bytes are the atomic's; only touched atomically by the views that address them.
            UnsafePointer(base.assumingMemoryBound(to: Atomic<Value>.self))
        }
    }
}
