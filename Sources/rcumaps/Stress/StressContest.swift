import RCUMaps

/// "Exactly one wins" on the shared keys of the key-value maps (hash maps and the object
/// map), which every worker races every other on.
///
/// - *Balanced* keys (``StressHarness/isBalanced(_:)``, the shared churn keys) are created
///   by `BPF_NOEXIST` inserts, and by user-mode `.any` writes through `exchange` that
///   replaced nothing, and removed only by deletes and lookup-and-deletes. Each worker
///   counts, per key, the creations it made minus the removals it won (its *balance*; the
///   prefill deposits one for each key it stored); at every quiescent check the balances
///   summed over the workers must be 1 for a key the map holds and 0 for one it does not.
///   Two inserts that both won one absent episode (the second replaced the first, or
///   stored a second entry of the key) leave 2 for a present key; two removals that both
///   won one present episode leave -1.
/// - Tokens are unique (each worker's version only grows; the prefill writes each key
///   once), so a stored value can be returned by at most one lookup-and-delete. Workers
///   hand over the tokens their lookup-and-deletes returned (byte maps; object-map
///   handles are not unique); at every quiescent check no token may have been returned
///   twice, and none may still be in the map.
/// - Across checks: for each key and writer, the newest version a lookup-and-delete
///   returned before the last check is kept. A token returned since with a version no
///   newer is a value that came back: the writer stored that key's versions in order, one
///   value a key at a time, so once its newer value had been in the map (it was removed
///   from there), the older one was gone for good — replaced or removed — and no token is
///   ever written twice. The same holds for the values the quiescent map holds: one no
///   newer than a removed value of its writer and key came back too.
final class StressContest: Sendable {
    let keys: Int
    /// Writers a token can name: the prefill (0) and the workers (1...`threads`).
    let writers: Int
    /// The workers' deposits since the start (balances) and since the last check (tokens),
    /// and per key and writer (``slot(of:)``) the newest version removed before the last
    /// check, plus one (0: none).
    private let deposits: ThreadLock<(balances: [Int], removed: [UInt64], newestRemoved: [UInt64])>

    /// `threads`: the run's workers. (The record per key and writer was sized for 256
    /// writers whatever the run had: 1 GiB at `--keys 524288`; found by review, 2026-12-05.)
    init(keys: Int, threads: Int) {
        self.keys = keys
        writers = threads + 1
        deposits = ThreadLock(([Int](repeating: 0, count: keys), [], [UInt64](repeating: 0, count: keys * writers)))
    }

    /// The record of `token`'s key and writer, or nil for a writer no worker is.
    private func slot(of token: UInt64) -> Int? {
        let key = StressToken.key(token), writer = StressToken.writer(token)
        guard key < keys, writer < writers else { return nil }
        return key * writers + writer
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
    func settle(_ label: String, present: [Bool], held: [UInt64], isBalanced: (Int) -> Bool,
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
            // Values that came back across a check (the newest versions removed before it
            // first, then this interval's).
            var cameBack = 0
            var firstBack: UInt64?
            for token in state.removed {
                guard let slot = slot(of: token) else { continue }
                if StressToken.version(token) < state.newestRemoved[slot] {
                    cameBack += 1
                    if firstBack == nil { firstBack = token }
                }
            }
            if let firstBack, let slot = slot(of: firstBack) {
                recorder.record(.duplicate, "\(label): \(cameBack) value(s) returned by a lookup-and-delete after the "
                    + "same writer's value of version \(state.newestRemoved[slot] - 1) or newer had been removed before a "
                    + "check, first \(StressToken.describe(firstBack)) (a removed or replaced value came back)")
            }
            for token in state.removed {
                guard let slot = slot(of: token) else { continue }
                state.newestRemoved[slot] = max(state.newestRemoved[slot], StressToken.version(token) + 1)
            }
            // Values the map holds that came back, by the same argument: a held value no newer
            // than one its writer stored under that key and a lookup-and-delete returned, this
            // interval or before. Only returned values were compared, so a removed value back in
            // the map, and never returned again, went unnoticed (found by review, 2026-12-06).
            // A held value this interval's lookup-and-deletes returned was reported above.
            var heldBack = 0
            var firstHeldBack: (key: Int, token: UInt64, newest: UInt64)?
            for key in 0..<keys where held[key] != StressToken.absent && !Self.contains(state.removed, held[key]) {
                guard let slot = slot(of: held[key]), StressToken.version(held[key]) < state.newestRemoved[slot] else { continue }
                heldBack += 1
                if firstHeldBack == nil { firstHeldBack = (key: key, token: held[key], newest: state.newestRemoved[slot] - 1) }
            }
            if let firstHeldBack {
                recorder.record(.duplicate, "\(label): \(heldBack) key(s) hold a value no newer than one of the same writer "
                    + "a lookup-and-delete returned (removed) before, first key \(firstHeldBack.key): "
                    + "\(StressToken.describe(firstHeldBack.token)) after version \(firstHeldBack.newest) was removed "
                    + "(a removed or replaced value came back)")
            }
            state.removed.removeAll(keepingCapacity: true)
            for key in 0..<keys where isBalanced(key) {
                let expected = present[key] ? 1 : 0
                if state.balances[key] != expected {
                    recorder.record(.twoWinners, "\(label): shared key \(key) is \(present[key] ? "present" : "absent"), "
                        + "but the inserts that created it minus the removals won come to \(state.balances[key]) "
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
