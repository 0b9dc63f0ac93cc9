import RCUMaps

/// Typed conveniences over the byte-level `RawMap` API, for tests.
extension RawMap {
    /// Looks `key` up and returns the value as `V`.
    public func get<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, as _: V.Type = V.self) throws -> V {
        try copyOut(key, as: V.self) { try lookup(key: $0, into: $1) }
    }

    /// Runs `operation` with `key`'s bytes and a zeroed buffer for a `V`, and returns the `V`.
    private func copyOut<K: BitwiseCopyable, V: BitwiseCopyable>(
        _ key: K, as _: V.Type,
        _ operation: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> Void
    ) throws -> V {
        try withUnsafeBytes(of: key) { keyBytes in
            try withUnsafeTemporaryAllocation(of: V.self, capacity: 1) { value in
                let raw = UnsafeMutableRawBufferPointer(value)
                raw.initializeMemory(as: UInt8.self, repeating: 0)
                try operation(keyBytes, raw)
                return raw.load(as: V.self)
            }
        }
    }

    /// Stores `value` under `key`.
    public func put<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, _ value: V, flags: MapUpdateFlags = .any) throws {
        try withUnsafeBytes(of: key) { keyBytes in
            try withUnsafeBytes(of: value) { valueBytes in
                try update(key: keyBytes, value: valueBytes, flags: flags)
            }
        }
    }

    /// Removes `key`.
    public func remove<K: BitwiseCopyable>(_ key: K) throws {
        try withUnsafeBytes(of: key) { try delete(key: $0) }
    }

    /// Removes `key`, returning the value it had.
    public func take<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, as _: V.Type = V.self) throws -> V {
        try copyOut(key, as: V.self) { try lookupAndDelete(key: $0, into: $1) }
    }

    /// The key after `key` (or the first key) in a pass, or nil at the end
    /// (`nextKeyInPass`: never restarts the pass). `linuxRule` uses `nextKey` instead.
    public func next<K: BitwiseCopyable>(after key: K?, as _: K.Type = K.self, linuxRule: Bool = false) throws -> K? {
        try withUnsafeTemporaryAllocation(of: K.self, capacity: 1) { out in
            let raw = UnsafeMutableRawBufferPointer(out)
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            do {
                if var key {
                    try withUnsafeBytes(of: &key) {
                        linuxRule ? try nextKey(after: $0, into: raw) : try nextKeyInPass(after: $0, into: raw)
                    }
                } else {
                    linuxRule ? try nextKey(after: nil, into: raw) : try nextKeyInPass(after: nil, into: raw)
                }
            } catch MapError.keyNotFound {
                return nil
            }
            return raw.load(as: K.self)
        }
    }

    /// Every key, by one get-next-key pass.
    public func allKeys<K: BitwiseCopyable>(as _: K.Type = K.self) throws -> [K] {
        var keys: [K] = []
        var cursor: K? = nil
        while let key = try next(after: cursor, as: K.self) {
            keys.append(key)
            cursor = key
        }
        return keys
    }

    /// Looks up `key` (bytes) and returns the value bytes.
    public func get(bytes key: [UInt8]) throws -> [UInt8] {
        var value = [UInt8](repeating: 0, count: definition.valueSize)
        try key.withUnsafeBytes { keyBytes in
            try value.withUnsafeMutableBytes { try lookup(key: keyBytes, into: $0) }
        }
        return value
    }

    /// Stores `value` under `key` (bytes).
    public func put(bytes key: [UInt8], _ value: [UInt8], flags: MapUpdateFlags = .any) throws {
        try key.withUnsafeBytes { keyBytes in
            try value.withUnsafeBytes { try update(key: keyBytes, value: $0, flags: flags) }
        }
    }
}

/// A fresh pool tag per call, so tests running in parallel account separately.
public func uniqueTag() -> PoolTag {
    let value = tagCounter.wrappingAdd(1, ordering: .relaxed).newValue
    return PoolTag(rawValue: 0x7E57_0000 | UInt32(truncatingIfNeeded: value))
}

import Synchronization
private let tagCounter = Atomic<Int>(0)

/// Waits for every deferred free to run, then returns the tag's statistics.
public func settledStatistics(for tag: PoolTag) -> EpochTagStatistics {
    // A reclaim callback may free memory whose own reclamation then needs another pass.
    Epoch.barrier()
    Epoch.barrier()
    return EpochMemory.statistics(for: tag)
}
