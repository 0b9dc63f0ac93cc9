import Foundation
import RCUMaps
import Testing

/// Every entry of a map, as bytes (key → value), read through get-next-key and lookup
/// (keys whose lookup says ENOENT are left out). `valueBytes`: a user-mode lookup's buffer
/// size where it is not `valueSize` (per-CPU maps: `userValueSize`).
public func snapshot(of map: any RawMap, valueBytes: Int? = nil) throws -> [[UInt8]: [UInt8]] {
    let keySize = map.definition.keySize
    let valueSize = valueBytes ?? map.definition.valueSize
    var entries: [[UInt8]: [UInt8]] = [:]
    var cursor: [UInt8]?
    var next = [UInt8](repeating: 0, count: keySize)
    var value = [UInt8](repeating: 0, count: valueSize)
    while true {
        do {
            if let current = cursor {
                try current.withUnsafeBytes { k in try next.withUnsafeMutableBytes { try map.nextKeyInPass(after: k, into: $0) } }
            } else {
                try next.withUnsafeMutableBytes { try map.nextKeyInPass(after: nil, into: $0) }
            }
        } catch MapError.keyNotFound {
            return entries
        }
        do {
            try next.withUnsafeBytes { k in try value.withUnsafeMutableBytes { try map.lookup(key: k, into: $0) } }
            entries[next] = value
        } catch MapError.keyNotFound {
            // Gone meanwhile, or (custom arrays) a slot whose provider has no value for it.
        }
        cursor = next
    }
}

/// One step of a fault-point sweep: what the operation did with its `n`-th allocation failing.
public struct FaultPoint<Result> {
    /// The index of the failed allocation among those the operation made.
    public var index: Int
    /// What the operation returned or threw.
    public var outcome: Swift.Result<Result, any Error>
}

/// Runs `operation` with its first, second, third … allocation (epoch layer, any tag, this
/// thread) failing, one at a time, until it makes fewer allocations than the failing index.
/// With `andEveryLater`, the allocator stays out of memory after the first failure.
/// `check` sees each injected fault's outcome (and runs `restore` state checks itself);
/// `prepare` runs before each attempt. Returns the number of fault points swept.
///
/// With `RCUMAPS_FAULT_REPORT=FILE` in the environment, each sweep appends a line to FILE:
/// the test's name, `label` and the number of fault points (docs/reliability.md counts them).
@discardableResult
public func sweepFaultPoints<Result>(
    _ label: String = "",
    limit: Int = 64,
    andEveryLater: Bool = false,
    prepare: () throws -> Void = {},
    _ operation: () throws -> Result,
    check: (FaultPoint<Result>) throws -> Void
) throws -> Int {
    for index in 0..<limit {
        try prepare()
        let (outcome, injected) = _FaultInjection.failingOneAllocation(after: index, andEveryLater: andEveryLater) {
            () -> Swift.Result<Result, any Error> in
            do { return .success(try operation()) } catch { return .failure(error) }
        }
        guard injected else {
            reportFaultPoints(label, index)
            return index
        }
        try check(FaultPoint(index: index, outcome: outcome))
    }
    reportFaultPoints(label, limit)
    return limit
}

private func reportFaultPoints(_ label: String, _ points: Int) {
    guard let path = ProcessInfo.processInfo.environment["RCUMAPS_FAULT_REPORT"] else { return }
    let line = "\(Test.current?.name ?? "?")\t\(label)\t\(points)\n"
    guard let file = fopen(path, "a") else { return }
    fputs(line, file)
    fclose(file)
}

/// The figures of `tag` that must come back after a failed operation, once settled.
public func accountedFigures(_ tag: PoolTag) -> (liveBytes: Int, pendingBytes: Int, liveAllocations: Int) {
    let settled = settledStatistics(for: tag)
    return (settled.liveBytes, settled.pendingBytes, settled.liveAllocations)
}
