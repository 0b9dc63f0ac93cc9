import RCUMaps

/// "Exactly one wins" on the shared keys of the key-value maps (hash maps and the object
/// map), which every worker races every other on.
///
/// - *Contested* keys (``StressHarness/isContested(_:)``) are created only by `BPF_NOEXIST`
///   inserts and removed only by deletes and lookup-and-deletes. Each worker counts, per
///   key, the inserts it won minus the removals it won (its *balance*); at every quiescent
///   check the balances summed over the workers must be 1 for a key the map holds and 0
///   for one it does not. Two inserts that both won one absent episode (the second
///   replaced the first, or stored a second entry of the key) leave 2 for a present key;
///   two removals that both won one present episode leave -1.
/// - Tokens are unique (each worker's version only grows; the prefill writes each key
///   once), so a stored value can be returned by at most one lookup-and-delete. Workers
///   hand over the tokens their lookup-and-deletes returned (byte maps; object-map
///   handles are not unique); at every quiescent check no token may have been returned
///   twice, and none may still be in the map.
///
/// Not caught: a value returned once before a checkpoint and again after it (the tokens
/// are kept from one quiescent check to the next), unless the map still holds it at that
/// checkpoint.
final class StressContest: Sendable {
    let keys: Int
    /// The workers' deposits since the start (balances) and since the last check (tokens).
    private let deposits: ThreadLock<(balances: [Int], removed: [UInt64])>

    init(keys: Int) {
        self.keys = keys
        deposits = ThreadLock(([Int](repeating: 0, count: keys), []))
    }

    /// Adds a worker's balances and tokens (at a checkpoint pause and at the end) and
    /// clears them.
    func deposit(balances: inout [Int32], removed: inout [UInt64]) {
        deposits.withLock { state in
            for key in 0..<keys where balances[key] != 0 {
                state.balances[key] += Int(balances[key])
                balances[key] = 0
            }
            state.removed.append(contentsOf: removed)
        }
        removed.removeAll(keepingCapacity: true)
    }

    /// Checks the deposits against the quiescent map: `present[key]` whether the map holds
    /// `key`, `held[key]` its token (``StressToken/absent`` if none or unreadable). Forgets
    /// the tokens; a wrong balance is reported once (then taken as it is).
    func settle(_ label: String, present: [Bool], held: [UInt64], isContested: (Int) -> Bool,
                recorder: StressRecorder) {
        deposits.withLock { state in
            state.removed.sort()
            var duplicates = 0
            var first: UInt64?
            for position in state.removed.indices.dropFirst() where state.removed[position] == state.removed[position - 1] {
                duplicates += 1
                if first == nil { first = state.removed[position] }
            }
            if let first {
                recorder.record(.duplicate, "\(label): \(duplicates) value(s) returned by two lookup-and-deletes since the last "
                    + "check, first \(StressToken.describe(first))")
            }
            for key in 0..<keys where held[key] != StressToken.absent && Self.contains(state.removed, held[key]) {
                recorder.record(.duplicate, "\(label): key \(key) holds \(StressToken.describe(held[key])), "
                    + "which a lookup-and-delete returned (removed) before")
            }
            state.removed.removeAll(keepingCapacity: true)
            for key in 0..<keys where isContested(key) {
                let expected = present[key] ? 1 : 0
                if state.balances[key] != expected {
                    recorder.record(.twoWinners, "\(label): contested key \(key) is \(present[key] ? "present" : "absent"), "
                        + "but the NOEXIST inserts won minus the removals won come to \(state.balances[key]) "
                        + "(two winners of one race)")
                    state.balances[key] = expected
                }
            }
        }
    }

    /// Whether the sorted `tokens` hold `token`.
    static func contains(_ tokens: [UInt64], _ token: UInt64) -> Bool {
        var low = 0, high = tokens.count
        while low < high {
            let middle = (low + high) / 2
            if tokens[middle] < token { low = middle + 1 } else { high = middle }
        }
        return low < tokens.count && tokens[low] == token
    }
}
