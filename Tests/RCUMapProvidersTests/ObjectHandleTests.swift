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
}
