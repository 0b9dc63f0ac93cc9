import RCUMaps
import Synchronization
import Testing

/// A field of a value in a map viewed as an atomic, in place (`withAtomicFields`): only types
/// whose atomic form is their own bytes. An `AtomicRepresentable` enum's atomic form is its
/// raw value: viewed in place, a store wrote the raw value's 8 bytes over a 1-byte enum and
/// its neighbours (found by review, 2026-12-03).
@Suite("AtomicFields")
struct AtomicFieldsTests {
    struct Mixed: BitwiseCopyable, Sendable, Equatable {
        var flag = false
        var small: UInt8 = 7
        var half: UInt16 = 0x1234
        var word: UInt32 = 9
        var wide: Int64 = -1
        var ratio: Double = 0.5
        var modes: Modes = [.a]
    }

    struct Modes: OptionSet, AtomicRepresentable, BitwiseCopyable, Sendable, Equatable {
        var rawValue: UInt64
        static let a = Modes(rawValue: 1)
        static let b = Modes(rawValue: 2)
    }

    enum Phase: UInt64, AtomicRepresentable, BitwiseCopyable, Sendable {
        case idle = 100, busy = 200
    }

    struct Job: BitwiseCopyable, Sendable {
        var phase: Phase
        var retries: UInt8
        var owner: UInt16
    }

    @Test func fieldsStoredAsTheirAtomicFormChangeOnlyTheirOwnBytes() throws {
        let map = try ArrayMap<Mixed>(count: 2)
        try map.updateValue(Mixed(), forKey: 1)
        let seen = map.withAtomicFields(forKey: 1) { fields in
            fields[\.flag].store(true, ordering: .relaxed)
            fields[\.small].wrappingAdd(1, ordering: .relaxed)
            fields[\.half].store(0xBEEF, ordering: .relaxed)
            fields[\.word].wrappingAdd(1, ordering: .relaxed)
            fields[\.wide].wrappingAdd(2, ordering: .relaxed)
            fields[\.ratio].store(1.25, ordering: .relaxed)
            fields[\.modes].store([.a, .b], ordering: .relaxed)
            return fields[\.half].load(ordering: .relaxed)
        }
        #expect(seen == 0xBEEF)
        #expect(map[1] == Mixed(flag: true, small: 8, half: 0xBEEF, word: 10, wide: 1, ratio: 1.25, modes: [.a, .b]))
        #expect(map[0] == Mixed(flag: false, small: 0, half: 0, word: 0, wide: 0, ratio: 0, modes: []))
    }

    struct Owned: BitwiseCopyable, @unchecked Sendable {
        var owner: UnsafeMutableRawPointer?
        var id: ObjectIdentifier?
        var count: UInt32 = 0
    }

    /// Pointer fields are their own atomic form (the day's first version of the check
    /// refused them; found by review of that fix).
    @Test func pointerFieldsAreViewedAsAtomics() throws {
        let map = try ArrayMap<Owned>(count: 1)
        let box = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { box.deallocate() }
        let identifier = ObjectIdentifier(Owned.self as Any.Type)
        map.withAtomicFields(forKey: 0) { fields in
            #expect(fields[\.owner].compareExchange(expected: nil, desired: box, ordering: .acquiringAndReleasing).exchanged)
            fields[\.id].store(identifier, ordering: .relaxed)
            fields[\.count].wrappingAdd(3, ordering: .relaxed)
        }
        let stored = try #require(map[0])
        #expect(stored.owner == box && stored.id == identifier && stored.count == 3)
    }

    @Test func anEnumFieldIsRefusedWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let jobs = try! ArrayMap<Job>(count: 1)
            try! jobs.updateValue(Job(phase: .idle, retries: 7, owner: 42), forKey: 0)
            _ = jobs.withAtomicFields(forKey: 0) { $0[\.phase].store(.busy, ordering: .relaxed) }
            // Not reached: the store above wrote 8 bytes over a 4-byte value before the fix.
            Issue.record("an enum field was viewed as an atomic: retries \(jobs[0]!.retries)")
        }.map { result in
            let message = String(decoding: result.standardErrorContent, as: UTF8.self)
            #expect(message.contains("cannot be viewed as an atomic in place"), "\(message)")
        }
    }
}
