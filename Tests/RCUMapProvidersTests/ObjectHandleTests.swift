@testable import ObjectMapProvider
import RCUMaps
import RCUMapsTestSupport
import Testing

/// The sample provider's handles after the 32-bit counter wraps (found by review,
/// 2026-12-03): the counter's next value was taken even when that handle was still open,
/// and the new object's entry replaced the open one's (that object never freed, its
/// owner's `close` releasing the new object instead).
@Suite("Object map handles")
struct ObjectHandleTests {
    @Test func aWrappedCounterSkipsZeroAndOpenHandles() throws {
        let tag = uniqueTag()
        let objects = try ObjectMapProvider(type: uniqueCustomType(), objectTag: tag)
        let first = try objects.makeObject()
        let second = try objects.makeObject()
        #expect(first == 1 && second == 2)
        // The counter comes round to the handles still open (and 0, never a handle).
        objects.setNextHandle(UInt32.max)
        let last = try objects.makeObject()
        let next = try objects.makeObject()
        #expect(last == UInt32.max)
        #expect(next == 3)
        #expect(objects.referenceCount(of: first) == 1)
        #expect(objects.referenceCount(of: second) == 1)
        for handle in [first, second, last, next] { #expect(objects.close(handle)) }
        #expect(!objects.close(first))
    }

    /// A closed handle whose object a map still holds is not given out again: the map's
    /// lookups answer that handle, which would then name another object (found by review,
    /// 2026-12-06, twenty-fourth session). It is free for reuse once the map lets the
    /// object go, and a closed object cannot be stored again meanwhile.
    @Test func aClosedHandleAMapStillHoldsIsNotReused() throws {
        let objects = try ObjectMapProvider(type: uniqueCustomType(), objectTag: uniqueTag())
        let map = try objects.makeMap(maxEntries: 4)
        let old = try objects.makeObject()
        try map.put(UInt32(0), old)
        #expect(objects.close(old))
        #expect(!objects.close(old))
        #expect(objects.referenceCount(of: old) == nil)
        #expect(throws: MapError.invalidArgument) { try map.put(UInt32(1), old) }
        objects.setNextHandle(old)
        let new = try objects.makeObject()
        #expect(new != old)
        #expect(try map.get(UInt32(0), as: UInt32.self) == old)
        try map.remove(UInt32(0))
        Epoch.barrier()
        objects.setNextHandle(old)
        let reused = try objects.makeObject()
        #expect(reused == old)
        for handle in [new, reused] { #expect(objects.close(handle)) }
    }
}
