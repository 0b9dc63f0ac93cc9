@_spi(Reflection) import Swift

/// The layout rules of the typed maps' `Key` and `Value` types, checked once when a map is
/// created.
///
/// A key is hashed and compared as raw bytes, so every byte of it must be data: a padding
/// byte holds whatever was in memory when the key was built, and two equal keys would hash
/// differently. Refused, with ``MapError/invalidArgument`` and a reason naming the type:
/// - a key whose size differs from its stride (trailing padding: `(UInt64, UInt8)`);
/// - a key with interior padding (`struct { var a: UInt8; var b: UInt32 }`), found by
///   walking the type's stored fields — structs and tuples, recursively — through the
///   standard library's reflection metadata;
/// - a SIMD vector, alone or as a field, whose storage has lanes beyond its scalars
///   (`SIMD3<UInt32>` is stored as four lanes: its fourth is not part of the value, and `==`
///   ignores it);
/// - a key or value of size 0.
///
/// An `Optional` (a field or the key itself) counts its wrapped type's data and the tag
/// bytes it adds, so padding inside an optional struct is found too (it was counted as
/// data: found by review, 2026-12-06). An optional with no tag byte whose payload has
/// several fields (`struct { var flag: Bool; var x: UInt8; … }?`), or is an enum of more
/// than one byte with payload cases, is refused too: its `nil` lives in the spare values of one field (or of
/// the enum's tag), and the runtime sets that alone, leaving the other bytes as they were
/// (found by review, 2026-12-06).
///
/// An enum with payload cases other than `Optional` (a key, a field, or an optional's
/// payload) is refused: a case sets its own payload's bytes and the tag, and leaves the
/// rest of the enum's bytes as they were — an empty case of `enum Maybe<T> { case some(T),
/// none }`, or `.a` of `enum { case a(UInt8), b(UInt64) }` (found by review, 2026-12-06,
/// twenty-sixth session). Enums without payloads (all tag) are accepted.
///
/// An `InlineArray` is checked as its elements: padding in or after an element, an enum or
/// an optional with a narrow `nil` among them, are refused as they are in a struct's fields
/// (it was taken as all data: found by review, 2026-12-06, twenty-seventh session). So is an
/// optional existential metatype (`(any P.Type)?`), whose `nil` sets only its first word.
///
/// What cannot be detected: the fields of a type whose metadata has no field records (some
/// imported C structs). Such keys are checked for trailing padding only. Add explicit
/// padding fields (`var reserved: UInt16 = 0`) to be safe.
///
/// Values are copied whole, so padding in them is harmless; but in-place access hands out
/// typed pointers into the map, which aligns values to 8 bytes: a value type that needs
/// more (SIMD vectors, `UInt128`) is refused.
@usableFromInline
enum TypedLayout {
    /// Alignment every map gives its values in place.
    @inlinable static var valueAlignment: Int { 8 }

    static func checkKey<Key>(_: Key.Type) throws(MapError) {
        let size = MemoryLayout<Key>.size
        guard size > 0 else {
            throw MapError.invalidArgument.with(reason: "key type \(Key.self) has size 0")
        }
        guard size == MemoryLayout<Key>.stride else {
            throw MapError.invalidArgument.with(reason: """
                key type \(Key.self) has \(MemoryLayout<Key>.stride - size) bytes of trailing padding \
                (size \(size), stride \(MemoryLayout<Key>.stride)): keys are hashed as bytes, and padding bytes \
                are garbage; add explicit fields to fill it
                """)
        }
        if let optional = optionalWithNarrowNil(in: Key.self) {
            // (Accepted until 2026-12-06: two `nil` keys hashed differently; found by review.)
            throw MapError.invalidArgument.with(reason: """
                key type \(Key.self) holds \(optional), whose nil is kept in the spare values of one field of its \
                payload: a nil sets that field alone and leaves the payload's other bytes as they were, and keys are \
                hashed as bytes; store the optional as explicit fields instead (a flag and the value)
                """)
        }
        if let payloadEnum = enumWithPayloadCases(in: Key.self) {
            // (Accepted until 2026-12-06: an enum of the shape of `Optional` but not `Optional`
            // itself, whose empty case left its payload's bytes as they were; found by review.)
            throw MapError.invalidArgument.with(reason: """
                key type \(Key.self) holds \(payloadEnum), an enum with payload cases: a case sets its own \
                payload's bytes and the tag, and leaves the rest as they were (an empty case, or a case with a \
                smaller payload), and keys are hashed as bytes; store such a key as explicit fields instead \
                (a tag and the payload)
                """)
        }
        if let data = dataBytes(of: Key.self), data < size {
            // (The message said only "reorder the fields, largest first", which can move the
            // padding to the end, where the check above refuses it, and cannot remove padding
            // inside a field's own type: found by review, 2026-12-05.)
            throw MapError.invalidArgument.with(reason: """
                key type \(Key.self) has \(size - data) bytes of interior padding (\(data) bytes of fields in \
                \(size)): keys are hashed as bytes, and padding bytes are garbage; fill the padding with explicit \
                fields (reordering the fields by alignment, largest first, removes the padding between them but \
                can leave bytes to fill at the end, and none inside a field whose own type has padding: fix that \
                type first)
                """)
        }
    }

    static func checkValue<Value>(_: Value.Type) throws(MapError) {
        guard MemoryLayout<Value>.size > 0 else {
            throw MapError.invalidArgument.with(reason: "value type \(Value.self) has size 0")
        }
        guard MemoryLayout<Value>.alignment <= valueAlignment else {
            throw MapError.invalidArgument.with(reason: """
                value type \(Value.self) needs \(MemoryLayout<Value>.alignment)-byte alignment; maps align values \
                in place to \(valueAlignment) bytes
                """)
        }
    }

    /// Bytes of `type` that belong to some field (all of them, for a type without padding),
    /// or nil when the metadata cannot tell.
    static func dataBytes(of type: Any.Type) -> Int? {
        // A SIMD vector's storage is a builtin vector of its storage's lane count, which the
        // field walk counts whole: its scalars are its data (found by review, 2026-12-05).
        if let vector = type as? any SIMD.Type {
            func scalarBytes<Vector: SIMD>(_: Vector.Type) -> Int { Vector().scalarCount * MemoryLayout<Vector.Scalar>.size }
            return _openExistential(vector, do: scalarBytes)
        }
        // An optional: its payload's data, and the tag bytes it adds (none where the payload
        // has spare bits for its `nil`).
        if let optional = type as? any OptionalLayout.Type {
            let wrapped = optional.wrappedType
            return dataBytes(of: wrapped).map { $0 + size(of: type) - size(of: wrapped) }
        }
        // An `InlineArray`: its elements' data (the gaps between an element's size and its
        // stride are padding). Its one stored field is a builtin array, which the field walk
        // reports as one field of unknown kind, counted whole (found by review, 2026-12-06).
        if let array = type as? any InlineArrayLayout.Type {
            return dataBytes(of: array.elementType).map { $0 * array.elementCount }
        }
        var total = 0
        var known = true
        let walked = _forEachField(of: type, options: []) { _, _, fieldType, kind in
            switch kind {
            case .struct, .tuple:
                if let inner = dataBytes(of: fieldType) { total += inner } else { known = false }
            default:
                if fieldType is any OptionalLayout.Type {
                    if let inner = dataBytes(of: fieldType) { total += inner } else { known = false }
                } else {
                    total += size(of: fieldType)
                }
            }
            return known
        }
        guard walked, known else { return nil }
        // A type with no fields at all (a builtin, or metadata without records): its size.
        return total == 0 ? size(of: type) : total
    }

    /// The first optional in `type` (itself, or a field, recursively) whose `nil` may leave
    /// bytes unset: one with no tag byte of its own, whose `nil` lives in the spare values of
    /// one field of a payload with several (`struct { var flag: Bool; var x: UInt8; var y:
    /// UInt16 }?`, stored as `flag` 2), or of an enum's tag in a payload of more than one
    /// byte (`enum { case a(UInt8), b(UInt8) }?`, stored as the tag 0xFF: found by review,
    /// 2026-12-06). The runtime writes such a `nil` as that one field; the payload's other
    /// bytes keep whatever was in memory. Nil if there is none, or none the metadata shows.
    static func optionalWithNarrowNil(in type: Any.Type) -> Any.Type? {
        if type is any SIMD.Type { return nil }
        if let optional = type as? any OptionalLayout.Type {
            let wrapped = optional.wrappedType
            if size(of: type) == size(of: wrapped) {
                let leaves = dataLeaves(of: wrapped)
                if leaves.count > 1 { return type }
                // One leaf: an enum's (or an inner optional's) spare values are in its tag,
                // which covers the whole value when the value is one byte or the enum has
                // no payloads (then it is all tag: an enum of over 256 cases, two bytes,
                // was refused: found by review, 2026-12-06).
                if let leaf = leaves.first, size(of: leaf) > 1, isEnum(leaf), enumHasPayloadCases(leaf) { return type }
                // One leaf of more than a word (an existential metatype, `any P.Type`: a
                // metadata word and a witness table's): the `nil` is kept in its first word
                // alone (found by review, 2026-12-06, twenty-seventh session).
                if let leaf = leaves.first, size(of: leaf) > MemoryLayout<UInt>.size, !isEnum(leaf) { return type }
            }
            return optionalWithNarrowNil(in: wrapped)
        }
        if let array = type as? any InlineArrayLayout.Type {
            // No element, no byte of one (found by review of this change).
            return array.elementCount > 0 ? optionalWithNarrowNil(in: array.elementType) : nil
        }
        var found: Any.Type?
        _ = _forEachField(of: type, options: []) { _, _, fieldType, _ in
            found = optionalWithNarrowNil(in: fieldType)
            return found == nil
        }
        return found
    }

    /// The types of the stored fields of `type` with a size, through structs and tuples
    /// (`type` itself for a type without field records: a builtin, an enum).
    static func dataLeaves(of type: Any.Type) -> [Any.Type] {
        if let array = type as? any InlineArrayLayout.Type {
            // An element's leaves, for each element (at most two: callers only ask whether there
            // is more than one).
            let element = dataLeaves(of: array.elementType)
            return Array(repeatElement(element, count: Swift.min(array.elementCount, 2)).joined())
        }
        var leaves: [Any.Type] = []
        let walked = _forEachField(of: type, options: []) { _, _, fieldType, kind in
            switch kind {
            case .struct, .tuple: leaves += dataLeaves(of: fieldType)
            default: if size(of: fieldType) > 0 { leaves.append(fieldType) }
            }
            return true
        }
        return walked && !leaves.isEmpty ? leaves : [type]
    }

    /// The first enum other than `Optional` with payload cases in `type` (itself, or a field
    /// through structs, tuples and optionals' payloads), or nil. Such an enum's value sets
    /// only the bytes of its case's payload and its tag: an empty case (`case none` of an
    /// `enum Maybe<T> { case some(T), none }`, kept in the spare values of one field of `T`)
    /// or a smaller payload leaves the others as they were in memory.
    static func enumWithPayloadCases(in type: Any.Type) -> Any.Type? {
        if type is any SIMD.Type { return nil }
        if let optional = type as? any OptionalLayout.Type { return enumWithPayloadCases(in: optional.wrappedType) }
        if let array = type as? any InlineArrayLayout.Type {
            return array.elementCount > 0 ? enumWithPayloadCases(in: array.elementType) : nil
        }
        if swiftMetadataKind(type) == 0x201 { return enumHasPayloadCases(type) ? type : nil }
        var found: Any.Type?
        _ = _forEachField(of: type, options: []) { _, _, fieldType, _ in
            found = enumWithPayloadCases(in: fieldType)
            return found == nil
        }
        return found
    }

    /// Whether enum `type` has cases with payloads, from its type descriptor: the low 24 bits
    /// of `NumPayloadCasesAndPayloadSizeOffset`, at byte 20 of an enum descriptor (after the
    /// context descriptor's flags and parent, and the type's name, accessor and fields),
    /// which the metadata points to at byte 8 — the runtime's stable layout on Linux.
    static func enumHasPayloadCases(_ type: Any.Type) -> Bool {
        let metadata = unsafeBitCast(type, to: UnsafeRawPointer.self)
        guard let descriptor = metadata.load(fromByteOffset: 8, as: UnsafeRawPointer?.self) else { return true }
        return descriptor.load(fromByteOffset: 20, as: UInt32.self) & 0x00FF_FFFF != 0
    }

    /// Whether `type` is an enum (an `Optional` included), by its metadata's kind.
    static func isEnum(_ type: Any.Type) -> Bool {
        // MetadataKind (swift/ABI/MetadataKind.def): Enum 0x201, Optional 0x202.
        let kind = swiftMetadataKind(type)
        return kind == 0x201 || kind == 0x202
    }

    static func size(of type: Any.Type) -> Int {
        func size<T>(_: T.Type) -> Int { MemoryLayout<T>.size }
        return _openExistential(type, do: size)
    }
}

/// The runtime's kind of a type's metadata (an exported entry point of the Swift runtime,
/// whose values are part of its stable ABI; it returns a 32-bit `MetadataKind`).
@_silgen_name("swift_getMetadataKind")
private func swiftMetadataKind(_ type: Any.Type) -> UInt32

/// What ``TypedLayout/dataBytes(of:)`` needs of an `Optional`: the type it wraps.
protocol OptionalLayout {
    static var wrappedType: Any.Type { get }
}

extension Optional: OptionalLayout {
    static var wrappedType: Any.Type { Wrapped.self }
}

/// What ``TypedLayout`` needs of an `InlineArray`: its element type and count (its storage
/// is a builtin array that the reflection metadata does not describe).
protocol InlineArrayLayout {
    static var elementType: Any.Type { get }
    static var elementCount: Int { get }
}

extension InlineArray: InlineArrayLayout {
    static var elementType: Any.Type { Element.self }
    static var elementCount: Int { count }
}
