@testable import RCUMaps
import RCUEpoch
import Testing

/// An RCUDictionary of constant size under churn keeps its memory: an overflow bucket a
/// delete empties is unlinked and freed. Before, overflow buckets stayed linked until the
/// table was rebuilt, which a dictionary of constant size never is: every chain that once
/// went past three entries kept its extra buckets (found by review, 2026-12-05; the
/// reviewer's model put the growth at over 10,000 buckets for this test's churn).
@Suite("RCUDictionary memory under churn")
struct RCUDictionaryChurnMemoryTests {
    @Test func overflowBucketsDoNotPileUpAtAConstantSize() {
        let dictionary = RCUDictionary<Int, Int>()
        let size = 24_576
        var live = Array(0..<size)
        for key in live { dictionary[key] = key }
        // Counted in the table itself: the pool tag's statistics are shared with every other
        // dictionary of the process, and tests run in parallel.
        let before = Epoch.withSection { _ in dictionary.currentTable.overflowBucketCount }
        let buckets = dictionary.currentTable.bucketCount
        var random = SystemRandomNumberGenerator()
        var next = size
        for _ in 0..<(20 * size) {
            let index = Int.random(in: 0..<live.count, using: &random)
            dictionary.removeValue(forKey: live[index])
            live[index] = next
            dictionary[next] = next
            next += 1
        }
        let after = Epoch.withSection { _ in dictionary.currentTable.overflowBucketCount }
        #expect(dictionary.count == size)
        #expect(dictionary.currentTable.bucketCount == buckets, "the table was rebuilt: the test proves nothing")
        #expect(after - before < 2_000, "\(after - before) more overflow buckets after the churn (before: \(before))")
    }
}
