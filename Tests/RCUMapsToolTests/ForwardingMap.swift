import RCUMaps
import Synchronization

/// A map that passes every call to `base`: subclasses override the calls they break, to
/// show that the stress checker notices.
class ForwardingMap: RawMap, @unchecked Sendable {
    let base: any RawMap
    let calls = Atomic<Int>(0)

    init(base: any RawMap) { self.base = base }

    /// True once every 16 calls: often enough to be caught quickly, rarely enough that
    /// most operations behave.
    func strikes() -> Bool { calls.wrappingAdd(1, ordering: .relaxed).newValue & 15 == 0 }

    var definition: MapDefinition { base.definition }
    var count: Int { base.count }

    func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.lookup(key: key, into: value)
    }
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        try base.update(key: key, value: value, flags: flags)
    }
    func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer {
        try base.lookupInPlace(key: key, in: section)
    }
    func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                  into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try base.exchange(key: key, value: value, flags: flags, into: displaced)
    }
    func delete(key: UnsafeRawBufferPointer) throws(MapError) { try base.delete(key: key) }
    func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.lookupAndDelete(key: key, into: value)
    }
    func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.nextKey(after: key, into: nextKey)
    }
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                in section: borrowing EpochSection) throws(MapError) {
        try base.update(key: key, value: value, flags: flags, in: section)
    }
    func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try base.delete(key: key, in: section)
    }
    func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        try base.lookup(key: key, into: value, flags: flags)
    }
    func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) { try base.delete(key: key, flags: flags) }
    func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                         flags: MapElementFlags) throws(MapError) {
        try base.lookupAndDelete(key: key, into: value, flags: flags)
    }
    func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.nextKeyInPass(after: key, into: nextKey)
    }
    var access: MapAccess { base.access }
    var isFrozen: Bool { base.isFrozen }
    func freeze() throws(MapError) { try base.freeze() }
    func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer, values: UnsafeMutableRawBufferPointer,
                     count: Int, elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.lookupBatch(from: cursor, keys: keys, values: values, count: count, elementFlags: elementFlags, flags: flags)
    }
    func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                              values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                              flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.lookupAndDeleteBatch(from: cursor, keys: keys, values: values, count: count,
                                      elementFlags: elementFlags, flags: flags)
    }
    func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                     elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.updateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags, flags: flags)
    }
    func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.deleteBatch(keys: keys, count: count, elementFlags: elementFlags, flags: flags)
    }
}
