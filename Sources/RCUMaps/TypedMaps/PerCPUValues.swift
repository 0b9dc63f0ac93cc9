/// The user-mode layout of per-CPU values, shared by the typed per-CPU maps: one `Value` per
/// possible CPU, CPU 0 first, `stride` (`round_up(valueSize, 8)`) bytes apart, as Linux's
/// syscall side lays them out.
///
/// Concurrency: a value type; its methods touch only the buffers they are given.
struct PerCPUValues<Value: BitwiseCopyable>: Sendable {
    /// Bytes from one CPU's value to the next.
    let stride: Int
    /// Values in the layout: the number of possible CPUs.
    let cpus: Int

    /// Bytes of the whole layout.
    var byteCount: Int { stride * cpus }

    /// Runs `body` with a zeroed, 8-byte-aligned buffer of ``byteCount`` bytes.
    func withBuffer<Result>(_ body: (UnsafeMutableRawBufferPointer) throws(MapError) -> Result) throws(MapError) -> Result {
        try withUnsafeTemporaryAllocation(byteCount: byteCount, alignment: 8) { (buffer) throws(MapError) -> Result in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            return try body(buffer)
        }
    }

    /// Every CPU's value that `copy` writes into a zeroed buffer of the layout; `nil` when
    /// `copy` throws ENOENT (an absent key or index). Any other error breaks the typed maps'
    /// invariants (sizes they checked at creation) and traps, naming `operation`.
    func read(_ operation: StaticString,
              _ copy: (UnsafeMutableRawBufferPointer) throws(MapError) -> Void) -> [Value]? {
        do {
            return try withBuffer { (buffer) throws(MapError) -> [Value]? in
                do throws(MapError) {
                    try copy(buffer)
                } catch where error == .keyNotFound {
                    return nil
                }
                return values(in: buffer)
            }
        } catch {
            typedMapInvariantBroken(error, operation)
        }
    }

    /// Every CPU's value in `buffer` (bytes some write stored, or zeros; see the maps'
    /// `values` for in-place writes read half done).
    func values(in buffer: UnsafeMutableRawBufferPointer) -> [Value] {
        (0..<cpus).map { buffer.load(fromByteOffset: $0 * stride, as: Value.self) }
    }

    /// Stores `values[cpu]` as CPU `cpu`'s value in `buffer`.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` unless there is one value per CPU.
    func store(_ values: [Value], in buffer: UnsafeMutableRawBufferPointer) throws(MapError) {
        guard values.count == cpus else {
            throw MapError.invalidArgument.with(reason: "\(values.count) values for \(cpus) possible CPUs")
        }
        for (cpu, value) in values.enumerated() { buffer.storeBytes(of: value, toByteOffset: cpu * stride, as: Value.self) }
    }

    /// Stores `value` as every CPU's value in `buffer`.
    func store(repeating value: Value, in buffer: UnsafeMutableRawBufferPointer) {
        for cpu in 0..<cpus { buffer.storeBytes(of: value, toByteOffset: cpu * stride, as: Value.self) }
    }
}
