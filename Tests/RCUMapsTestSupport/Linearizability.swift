import Synchronization

// A linearizability checker for concurrent histories of single-key map operations.
//
// Threads run operations on a few shared keys and record, for each one, what it asked, what
// it got, and two stamps from one shared counter: one taken just before the call and one
// just after. The counter is a sequentially consistent read-modify-write (a locked
// instruction on x86), so when one operation's "after" stamp is below another's "before"
// stamp, the first really ended before the second began: every store it made was visible
// to all threads first. The history is linearizable when every key's operations can be put
// in one order that respects those real-time edges and that a sequential map would answer
// exactly as the threads saw it (Herlihy and Wing). Every operation here touches one key,
// so the keys are checked one by one (linearizability is local).
//
// The search (Wing and Gong, with Lowe's memo of visited configurations) walks the
// threads' histories of one key: a configuration is how far each thread's operations are
// placed, plus the model's value. The next operation placed may be any thread's next one
// whose call began before every other thread's next operation ended. Each thread calls one
// operation at a time, so the frontier is at most one operation per thread, and the memo
// keeps the search linear in practice.

/// A single-key map operation as the model sees it.
public enum KeyOperation: Sendable, Hashable, CustomStringConvertible {
    /// A lookup (user or helper mode).
    case lookup
    /// An update with Linux's flags: `.any`, `.noExist` (insert only) or `.exist` (replace only).
    case update(UInt64, KeyWriteCondition)
    /// An update that reports the value it replaced (`exchange`, `updateValue`).
    case exchange(UInt64, KeyWriteCondition)
    /// A delete.
    case delete
    /// An atomic lookup-and-delete (`lookupAndDelete`, `removeValue`).
    case lookupAndDelete
    /// Replaces the value only if it is `expected` (`replaceValue(forKey:ifCurrent:with:)`).
    case compareAndReplace(expected: UInt64, new: UInt64)
    /// Removes the key only if its value is `expected` (`removeValue(forKey:ifCurrent:)`).
    case compareAndDelete(expected: UInt64)
    /// Removes the key, present or not, and reports nothing (a subscript set to `nil`).
    case erase
    /// A read-modify-write that inserts `value` into an absent key and removes a present
    /// one, answering the value it replaced (`update(forKey:)` with that closure).
    case toggle(UInt64)

    public var description: String {
        switch self {
        case .lookup: "lookup"
        case .update(let value, let condition): "update(\(hex(value)), \(condition))"
        case .exchange(let value, let condition): "exchange(\(hex(value)), \(condition))"
        case .delete: "delete"
        case .lookupAndDelete: "lookupAndDelete"
        case .compareAndReplace(let expected, let new): "compareAndReplace(\(hex(expected)) → \(hex(new)))"
        case .compareAndDelete(let expected): "compareAndDelete(\(hex(expected)))"
        case .erase: "erase"
        case .toggle(let value): "toggle(\(hex(value)))"
        }
    }
}

/// When an update may write: Linux's `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`.
public enum KeyWriteCondition: Sendable, Hashable {
    case any, ifAbsent, ifPresent

    /// Whether a write under this condition happens to a key that is `present` or absent.
    public func allows(present: Bool) -> Bool {
        switch self {
        case .any: true
        case .ifAbsent: !present
        case .ifPresent: present
        }
    }
}

/// What an operation answered.
public enum KeyOutcome: Sendable, Hashable, CustomStringConvertible {
    /// A value, or none (ENOENT, or an exchange that added its key).
    case value(UInt64?)
    /// The write or delete happened.
    case done
    /// Refused by the key's presence (EEXIST, ENOENT) or by a compare that failed.
    case refused

    public var description: String {
        switch self {
        case .value(let value?): "value \(hex(value))"
        case .value(nil): "absent"
        case .done: "done"
        case .refused: "refused"
        }
    }
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

/// The sequential map the histories are checked against, for one key.
public enum KeyModel {
    /// What `operation` answers on a key holding `state` (nil: absent), and the key's next state.
    public static func apply(_ operation: KeyOperation, to state: UInt64?) -> (KeyOutcome, UInt64?) {
        func allowed(_ condition: KeyWriteCondition) -> Bool { condition.allows(present: state != nil) }
        switch operation {
        case .lookup:
            return (.value(state), state)
        case .update(let value, let condition):
            return allowed(condition) ? (.done, value) : (.refused, state)
        case .exchange(let value, let condition):
            return allowed(condition) ? (.value(state), value) : (.refused, state)
        case .delete:
            return state == nil ? (.refused, nil) : (.done, nil)
        case .lookupAndDelete:
            return (.value(state), nil)
        case .compareAndReplace(let expected, let new):
            return state == expected ? (.done, new) : (.refused, state)
        case .compareAndDelete(let expected):
            return state == expected ? (.done, nil) : (.refused, state)
        case .erase:
            return (.done, nil)
        case .toggle(let value):
            return (.value(state), state == nil ? value : nil)
        }
    }
}

/// One completed operation of a single-key history: its object is the key.
public typealias HistoryEvent = ObjectEvent<KeyOperation, KeyOutcome>

extension ObjectEvent where Operation == KeyOperation, Outcome == KeyOutcome {
    /// The key the operation touched.
    public var key: Int { object }

    public init(thread: Int, key: Int, operation: KeyOperation, outcome: KeyOutcome, called: UInt64, returned: UInt64) {
        self.init(thread: thread, object: key, operation: operation, outcome: outcome, called: called, returned: returned)
    }
}

/// One completed operation of a history: of a key (``HistoryEvent``), or of an object with a
/// model of its own — QUEUE and STACK, an LPM_TRIE region, a per-CPU key, whose answers may
/// be of another type than ``KeyOutcome``. `object` is what the history is split by.
public struct ObjectEvent<Operation: Sendable & CustomStringConvertible, Outcome: Sendable & CustomStringConvertible>:
    Sendable, CustomStringConvertible
{
    public var thread: Int
    public var object: Int
    public var operation: Operation
    public var outcome: Outcome
    /// Stamps of the shared counter just before the call and just after it returned.
    public var called: UInt64
    public var returned: UInt64

    public init(thread: Int, object: Int, operation: Operation, outcome: Outcome, called: UInt64, returned: UInt64) {
        self.thread = thread
        self.object = object
        self.operation = operation
        self.outcome = outcome
        self.called = called
        self.returned = returned
    }

    public var description: String { "[\(called)…\(returned)] thread \(thread) object \(object): \(operation) → \(outcome)" }
}

/// The shared counter whose stamps order a history's operations in real time.
public final class HistoryClock: Sendable {
    private let counter = Atomic<UInt64>(0)
    public init() {}

    /// A stamp: a sequentially consistent increment, so every store the calling thread made
    /// before it is visible to any thread that takes a later stamp.
    @inline(__always)
    public func stamp() -> UInt64 {
        counter.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
    }
}

/// One thread's recorder: call ``record(key:_:_:)`` around each operation.
public struct HistoryRecorder {
    public let thread: Int
    public let clock: HistoryClock
    public private(set) var events: [HistoryEvent] = []

    public init(thread: Int, clock: HistoryClock) {
        self.thread = thread
        self.clock = clock
        events.reserveCapacity(4096)
    }

    /// Runs `body`, which performs `operation` on `key` and returns what it answered, between
    /// two stamps, and records it.
    public mutating func record(key: Int, _ operation: KeyOperation, _ body: () throws -> KeyOutcome) rethrows {
        let called = clock.stamp()
        let outcome = try body()
        let returned = clock.stamp()
        events.append(HistoryEvent(thread: thread, key: key, operation: operation, outcome: outcome,
                                   called: called, returned: returned))
    }

    /// Runs `body`, one operation that makes one step on each of `keys` (a per-CPU array's
    /// user-mode write of every CPU's word, which Linux makes one word after the other),
    /// between two stamps, and records one event a key, with `body`'s outcome for it.
    public mutating func record(keys: [Int], _ operation: KeyOperation, _ body: () -> [KeyOutcome]) {
        let called = clock.stamp()
        let outcomes = body()
        let returned = clock.stamp()
        precondition(outcomes.count == keys.count, "one outcome a key")
        for (key, outcome) in zip(keys, outcomes) {
            events.append(HistoryEvent(thread: thread, key: key, operation: operation, outcome: outcome,
                                       called: called, returned: returned))
        }
    }
}

/// Why a history is not linearizable: the key, and the operations around the point where
/// every order the search tried failed.
public struct LinearizabilityViolation: Sendable, CustomStringConvertible {
    public var key: Int
    /// The operations of the longest prefix the search could place, in the order they returned.
    public var placed: [HistoryEvent]
    /// Each thread's next operation at that point: none of them could be placed next.
    public var stuck: [HistoryEvent]
    /// The model's value of the key after `placed`.
    public var state: UInt64?

    public var description: String {
        var lines = ["key \(key) is not linearizable: after \(placed.count) operations placed (the last ones below), "
            + "with the key \(state.map { "holding \(hex($0))" } ?? "absent"), no thread's next operation fits:"]
        lines += placed.suffix(8).map { "  placed  \($0)" }
        lines += stuck.map { "  next    \($0)" }
        return lines.joined(separator: "\n")
    }
}

/// Checks a history of single-key operations, key by key.
///
/// - Parameters:
///   - events: every thread's events (any order; each thread's are ordered by their stamps).
///   - initial: each key's value before the history (nil: absent).
///   - keysMayVanish: whether a present key may become absent between any two operations,
///     with no operation of the history removing it: an LRU map's eviction, made by another
///     key's insert. The check is weaker then (an absent key explains any miss, any
///     successful insert), but a value still cannot come back once replaced or removed, and
///     a write still cannot be lost to a concurrent one.
/// - Returns: the first key found not linearizable, or nil.
public func checkLinearizable(_ events: [HistoryEvent], initial: (Int) -> UInt64?,
                              keysMayVanish: Bool = false) -> LinearizabilityViolation? {
    let byKey = Dictionary(grouping: events, by: \.key)
    for key in byKey.keys.sorted() {
        if let violation = checkKey(key, byKey[key]!, initial: initial(key), keysMayVanish: keysMayVanish) {
            return violation
        }
    }
    return nil
}

private func checkKey(_ key: Int, _ events: [HistoryEvent], initial: UInt64?,
                      keysMayVanish: Bool) -> LinearizabilityViolation? {
    let threads = Array(Set(events.map(\.thread))).sorted()
    let histories = threads.map { thread in events.filter { $0.thread == thread }.sorted { $0.called < $1.called } }
    let search = searchLinearization(
        histories, initial: initial, called: \.called, returned: \.returned,
        apply: { event, state -> UInt64?? in
            // (The state is itself optional: a mismatch is `.none`, an absent key `.some(nil)`.)
            let (outcome, next) = KeyModel.apply(event.operation, to: state)
            return outcome == event.outcome ? .some(next) : .none
        },
        spontaneous: { state in keysMayVanish && state != nil ? [nil] : [] })
    guard let stuckAt = search else { return nil }
    let placed = histories.indices.flatMap { histories[$0][..<stuckAt.cursors[$0]] }.sorted { $0.returned < $1.returned }
    let stuck = histories.indices.compactMap {
        stuckAt.cursors[$0] < histories[$0].count ? histories[$0][stuckAt.cursors[$0]] : nil
    }
    return LinearizabilityViolation(key: key, placed: placed, stuck: stuck, state: stuckAt.state)
}

/// Where a search for a linearization got furthest before failing: how many operations of
/// each thread it had placed, and the model's state then.
public struct LinearizationDeadEnd<State> {
    public var cursors: [Int]
    public var state: State
}

/// How far each thread's operations are placed, and the model's state then.
struct LinearizationConfiguration<State: Hashable>: Hashable {
    var cursors: [Int]
    var state: State
}

/// The search for a linearization of one object's history, for any sequential model.
///
/// - Parameters:
///   - histories: each thread's operations on the object, in the order it called them.
///   - initial: the object's state before the history.
///   - called, returned: an operation's stamps (from one ``HistoryClock``).
///   - apply: the state after `event` if the model answers it as the thread saw, else nil.
///   - spontaneous: states the object may move to between operations with none of the
///     history's operations (an eviction); `[]` for none.
/// - Returns: nil if some order fits, else where the longest attempt stopped.
public func searchLinearization<Event, State: Hashable>(
    _ histories: [[Event]], initial: State,
    called: (Event) -> UInt64, returned: (Event) -> UInt64,
    apply: (Event, State) -> State?, spontaneous: (State) -> [State] = { _ in [] }
) -> LinearizationDeadEnd<State>? {
    typealias Configuration = LinearizationConfiguration<State>
    let total = histories.reduce(0) { $0 + $1.count }
    let threads = histories.count
    // Depth-first: each frame is a configuration and the next move to try from it — one
    // thread's next operation, then each spontaneous state (the frames above the root are
    // the operations placed, and those moves).
    typealias Frame = (configuration: Configuration, nextMove: Int)
    let root = Configuration(cursors: Array(repeating: 0, count: threads), state: initial)
    var stack: [Frame] = [(root, 0)]
    var visited: Set<Configuration> = [root]
    var deepest = (depth: 0, configuration: root)
    while let top = stack.indices.last {
        let configuration = stack[top].configuration
        let placed = configuration.cursors.reduce(0, +)
        if placed == total { return nil }
        if placed > deepest.depth { deepest = (placed, configuration) }
        // The earliest return among the threads' next operations: an operation can be
        // placed next only if it was called before that.
        var earliestReturn = UInt64.max
        for (thread, history) in histories.enumerated() where configuration.cursors[thread] < history.count {
            earliestReturn = min(earliestReturn, returned(history[configuration.cursors[thread]]))
        }
        let alternatives = spontaneous(configuration.state)
        var pushed = false
        while !pushed, stack[top].nextMove < threads + alternatives.count {
            let move = stack[top].nextMove
            stack[top].nextMove += 1
            var child = configuration
            if move < threads {
                let cursor = configuration.cursors[move]
                guard cursor < histories[move].count else { continue }
                let event = histories[move][cursor]
                guard called(event) < earliestReturn, let next = apply(event, configuration.state) else { continue }
                child.cursors[move] += 1
                child.state = next
            } else {
                child.state = alternatives[move - threads]
            }
            guard visited.insert(child).inserted else { continue }
            stack.append((child, 0))
            pushed = true
        }
        if !pushed { stack.removeLast() }
    }
    return LinearizationDeadEnd(cursors: deepest.configuration.cursors, state: deepest.configuration.state)
}
