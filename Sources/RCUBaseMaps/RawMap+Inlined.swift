#if canImport(Glibc)
import Glibc
#endif
import RCUEpoch

/// Lookups that inline the built-in maps' code into generic callers.
///
/// Swift 6.3 does not devirtualize a typed-throws protocol requirement — and all of
/// ``RawMap``'s are typed-throws — when generic code in another module calls it, even once
/// that code is specialised for a concrete map: the call goes through the witness table
/// (a metadata access and an indirect call; measured 11.6 ns per bucket-hash lookup instead
/// of 8.0). These two functions compare the map's type with each built-in map type and call
/// that type's `@inlinable` lookup directly. In a specialisation for a built-in map the
/// comparisons fold away and the lookup is inlined; for any other map, or through
/// `any RawMap`, they cost three metatype comparisons before the requirement is called.
///
/// Code that names the concrete type (`RawBucketHashMap`, …) needs none of this.
extension RawMap {
    /// ``lookupInPlace(key:in:)``, inlined for the built-in maps. Same contract: call it
    /// inside `section`; the returned bytes are borrowed until the section ends.
    @inlinable @inline(__always)
    public func inlinedLookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        // Invariant of each `unsafeDowncast`: `Self` is exactly the type it converts to.
        if Self.self == RawBucketHashMap.self {
            return try unsafeDowncast(self, to: RawBucketHashMap.self).lookupInPlace(key: key, in: section)
        }
        if Self.self == RawLockFreeHashMap.self {
            return try unsafeDowncast(self, to: RawLockFreeHashMap.self).lookupInPlace(key: key, in: section)
        }
        if Self.self == RawArrayMap.self {
            return try unsafeDowncast(self, to: RawArrayMap.self).lookupInPlace(key: key, in: section)
        }
        return try lookupInPlace(key: key, in: section)
    }

    /// ``inlinedLookupInPlace(key:in:)`` that answers an absent key with `nil` instead of
    /// throwing ENOENT. On the two hashes a miss then builds and throws no error; other maps
    /// (array, per-CPU, LPM trie, custom) run their own ``lookupInPlace(key:in:)`` and the
    /// ENOENT it throws is caught here. Same contract: borrowed until `section` ends; any
    /// thread inside that section.
    @inlinable @inline(__always)
    public func inlinedLookupInPlaceIfPresent(key: UnsafeRawBufferPointer, in section: borrowing EpochSection)
        throws(MapError) -> UnsafeMutableRawBufferPointer?
    {
        // Invariant of each `unsafeDowncast`: `Self` is exactly the type it converts to.
        if Self.self == RawBucketHashMap.self {
            return try unsafeDowncast(self, to: RawBucketHashMap.self).lookupInPlaceIfPresent(key: key, in: section)
        }
        if Self.self == RawLockFreeHashMap.self {
            return try unsafeDowncast(self, to: RawLockFreeHashMap.self).lookupInPlaceIfPresent(key: key, in: section)
        }
        do {
            return try inlinedLookupInPlace(key: key, in: section)
        } catch where error.code == ENOENT {
            return nil
        }
    }

    /// ``inlinedLookupInPlace(key:in:)`` for a pass over the map: not a use of the entry (an
    /// LRU map's recency is left as it is: ``RawBucketHashMap/lookupInPlaceWithoutUse(key:in:)``).
    @inlinable @inline(__always)
    package func inlinedPassLookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection)
        throws(MapError) -> UnsafeMutableRawBufferPointer
    {
        if Self.self == RawBucketHashMap.self {
            return try unsafeDowncast(self, to: RawBucketHashMap.self).lookupInPlaceWithoutUse(key: key, in: section)
        }
        return try inlinedLookupInPlace(key: key, in: section)
    }

    /// ``lookup(key:into:)``, inlined for the built-in maps. Same contract: any thread,
    /// copies the value into `value`.
    @inlinable @inline(__always)
    public func inlinedLookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        // Invariant of each `unsafeDowncast`: `Self` is exactly the type it converts to.
        if Self.self == RawBucketHashMap.self {
            return try unsafeDowncast(self, to: RawBucketHashMap.self).lookup(key: key, into: value)
        }
        if Self.self == RawLockFreeHashMap.self {
            return try unsafeDowncast(self, to: RawLockFreeHashMap.self).lookup(key: key, into: value)
        }
        if Self.self == RawArrayMap.self {
            return try unsafeDowncast(self, to: RawArrayMap.self).lookup(key: key, into: value)
        }
        try lookup(key: key, into: value)
    }

    /// ``lookup(key:into:)`` that answers an absent key with `false` instead of throwing
    /// ENOENT, inlined for the built-in maps (a miss then builds no error).
    @inlinable @inline(__always)
    public func inlinedLookupIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer)
        throws(MapError) -> Bool
    {
        // Invariant of each `unsafeDowncast`: `Self` is exactly the type it converts to.
        if Self.self == RawBucketHashMap.self {
            return try unsafeDowncast(self, to: RawBucketHashMap.self).lookupIfPresent(key: key, into: value)
        }
        if Self.self == RawLockFreeHashMap.self {
            return try unsafeDowncast(self, to: RawLockFreeHashMap.self).lookupIfPresent(key: key, into: value)
        }
        if Self.self == RawArrayMap.self {
            return try unsafeDowncast(self, to: RawArrayMap.self).lookupIfPresent(key: key, into: value)
        }
        do {
            try lookup(key: key, into: value)
            return true
        } catch where error.code == ENOENT {
            return false
        }
    }

    /// ``inlinedLookupIfPresent(key:into:)`` for a pass over the map: not a use of the entry
    /// (an LRU map's recency is left as it is: ``RawBucketHashMap/lookupIfPresentWithoutUse(key:into:)``).
    @inlinable @inline(__always)
    package func inlinedPassLookupIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer)
        throws(MapError) -> Bool
    {
        if Self.self == RawBucketHashMap.self {
            return try unsafeDowncast(self, to: RawBucketHashMap.self).lookupIfPresentWithoutUse(key: key, into: value)
        }
        return try inlinedLookupIfPresent(key: key, into: value)
    }
}
