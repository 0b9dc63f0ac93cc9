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
/// counts.withAtomicFields(forKey: key) { $0[\.self].wrappingAdd(1, ordering: .relaxed) }  // the whole value
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
    ///   for its type, of a type whose atomic form is its own bytes: an integer, `Bool`, a
    ///   floating-point type, an `OptionSet` of the same size as its atomic form, or a
    ///   pointer (`Unsafe…Pointer`, `OpaquePointer`, `Unmanaged`, `ObjectIdentifier`, and
    ///   their optionals) (checked,
    ///   with a message, in every build). An enum is refused even when it is
    ///   `AtomicRepresentable`: its atomic form is its raw value, while the value in the map
    ///   holds the enum's own bits (often fewer bytes), so an atomic store would write past
    ///   the field or leave bits that are not an enum case.
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
    /// optimizer folds the offset to a constant, drops both checks, and with them the key
    /// path itself: no key path object is made (and retained: a write to memory every thread
    /// shares) per access. That only happens if nothing else uses `field`, so the failure
    /// messages name the types, not the key path (Swift 6.3 keeps a key path alive for a use
    /// in a branch it later removes).
    @inlinable @inline(__always)
    static func checkedOffset<Field: AtomicRepresentable>(of field: KeyPath<Value, Field>, as _: Field.Type) -> Int {
        guard let offset = MemoryLayout<Value>.offset(of: field) else { notStored(Field.self) }
        // Folded away for a concrete `Field` (metatype checks and sizes are constants).
        if _slowPath(!storesItsAtomicForm(Field.self)) { notItsOwnAtomicForm(Field.self) }
        if _slowPath(offset % MemoryLayout<Atomic<Field>>.alignment != 0
                         || MemoryLayout<Atomic<Field>>.alignment > TypedLayout.valueAlignment) {
            misaligned(Field.self, at: offset)
        }
        return offset
    }

    /// Whether a `Field` in memory is bit for bit its atomic representation: the types whose
    /// `AtomicRepresentable` conformance stores the value itself, at its own size. (Types
    /// conforming through `RawRepresentable` store their raw value instead; only an option
    /// set's raw value is also its storage.)
    @inlinable @inline(__always)
    static func storesItsAtomicForm<Field: AtomicRepresentable>(_: Field.Type) -> Bool {
        guard MemoryLayout<Field>.size == MemoryLayout<Field.AtomicRepresentation>.size else { return false }
        return Field.self is any FixedWidthInteger.Type || Field.self == Bool.self
            || Field.self is any BinaryFloatingPoint.Type || Field.self is any OptionSet.Type
            || Field.self is any _AtomicFieldStoresItsBytes.Type
    }

    @usableFromInline @inline(never)
    static func notItsOwnAtomicForm<Field>(_: Field.Type) -> Never {
        _rcumapsTrap("AtomicFields: a \(Field.self) in \(Value.self) cannot be viewed as an atomic in place: its "
                         + "atomic form is not its stored bytes (only integers, Bool, floating-point types, "
                         + "pointers and option sets of their atomic form's size are; an enum's atomic form is "
                         + "its raw value)")
    }

    @usableFromInline @inline(never)
    static func notStored<Field>(_: Field.Type) -> Never {
        _rcumapsTrap("AtomicFields: a key path to a \(Field.self) in \(Value.self) is not a stored property "
                         + "(or \\.self)")
    }

    @usableFromInline @inline(never)
    static func misaligned<Field>(_: Field.Type, at offset: Int) -> Never {
        _rcumapsTrap("AtomicFields: the \(Field.self) at offset \(offset) of \(Value.self) is not aligned for an atomic")
    }
}

/// The pointer-like `AtomicRepresentable` types whose atomic form is their own bits
/// (``AtomicFields``' check; integers, `Bool`, floating point and option sets are told apart
/// by their standard protocols).
@usableFromInline protocol _AtomicFieldStoresItsBytes {}
extension UnsafeRawPointer: _AtomicFieldStoresItsBytes {}
extension UnsafeMutableRawPointer: _AtomicFieldStoresItsBytes {}
extension UnsafePointer: _AtomicFieldStoresItsBytes {}
extension UnsafeMutablePointer: _AtomicFieldStoresItsBytes {}
extension OpaquePointer: _AtomicFieldStoresItsBytes {}
extension Unmanaged: _AtomicFieldStoresItsBytes {}
extension ObjectIdentifier: _AtomicFieldStoresItsBytes {}
/// `nil` is the zero word both in memory and in the atomic form of these optionals.
extension Optional: _AtomicFieldStoresItsBytes where Wrapped: _AtomicFieldStoresItsBytes & AtomicOptionalRepresentable {}
