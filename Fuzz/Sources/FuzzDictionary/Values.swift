import Synchronization

/// A value that counts its live instances, so that a value released twice (the count goes
/// negative) or never (it stays above what the dictionary holds) shows.
final class Tracked: Equatable, Sendable {
    static let live = Atomic<Int>(0)
    let id: Int
    init(_ id: Int) {
        self.id = id
        Tracked.live.wrappingAdd(1, ordering: .relaxed)
    }
    deinit { Tracked.live.wrappingSubtract(1, ordering: .relaxed) }
    static func == (a: Tracked, b: Tracked) -> Bool { a.id == b.id }
}

/// A value of three words (stored in a node of its own, as a `String` key's entry is).
struct Wide: Equatable, Sendable {
    var id: Int
    var twice: Int
    var tag: UInt64
    init(_ id: Int) {
        self.id = id
        twice = id &* 2
        tag = UInt64(truncatingIfNeeded: id) ^ 0xA5A5_5A5A_F00D_CAFE
    }
    var isIntact: Bool { twice == id &* 2 && tag == UInt64(truncatingIfNeeded: id) ^ 0xA5A5_5A5A_F00D_CAFE }
}

/// Three words holding an object: a value stored in a node that is not plain data, whose
/// release (of the object) must happen exactly once, as a `Tracked` value in a slot.
struct TrackedWide: Equatable, Sendable {
    var object: Tracked
    var twice: Int
    var tag: UInt64
    var id: Int { object.id }
    init(_ id: Int) {
        object = Tracked(id)
        twice = id &* 2
        tag = UInt64(truncatingIfNeeded: id) ^ 0x0123_4567_89AB_CDEF
    }
    var isIntact: Bool { twice == id &* 2 && tag == UInt64(truncatingIfNeeded: id) ^ 0x0123_4567_89AB_CDEF }
}

/// How a fuzzed value type is made from, and read back as, an integer id.
protocol FuzzValue: Equatable, Sendable {
    init(id: Int)
    var id: Int { get }
    /// Whether each value holds one `Tracked` object (the live objects are then counted).
    static var holdsObjects: Bool { get }
    /// The value's words agree with one another (a value copied whole).
    var isIntact: Bool { get }
}

extension FuzzValue {
    static var holdsObjects: Bool { false }
    var isIntact: Bool { true }
}

extension Int: FuzzValue {
    init(id: Int) { self = id }
    var id: Int { self }
}

extension Tracked: FuzzValue {
    convenience init(id: Int) { self.init(id) }
    static var holdsObjects: Bool { true }
}

extension TrackedWide: FuzzValue {
    init(id: Int) { self.init(id) }
    static var holdsObjects: Bool { true }
}

extension Wide: FuzzValue {
    init(id: Int) { self.init(id) }
}
