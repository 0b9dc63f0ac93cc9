// A flow table: packet counters per 5-tuple, updated in place by several threads.
//
//     swift run FlowTableExample
//
// The typed map stores `Counters` inline in the map; each packet is one call that inserts
// the flow if it is missing and then adds to its counters where they are stored, with
// atomic adds, so no increment is lost however many threads count into the same flow.

import Dispatch
import RCUMaps
import Synchronization

/// A flow's key. Keys are hashed and compared as raw bytes, so a key type must have no
/// padding: the fields below add up to exactly 16 bytes (`reserved` fills the byte that
/// would otherwise be padding before `vlan`). A key type with padding is refused when the
/// map is created (`MapError.invalidArgument`, with a reason naming the type).
struct FlowKey: BitwiseCopyable, Hashable, Sendable {
    var source: UInt32            // IPv4 addresses, host byte order
    var destination: UInt32
    var sourcePort: UInt16
    var destinationPort: UInt16
    var proto: UInt8              // 6 = TCP, 17 = UDP
    var reserved: UInt8 = 0       // explicit: without it, a padding byte would sit here
    var vlan: UInt16 = 0
}

/// A flow's value: two counters, each updated atomically in place.
struct Counters: BitwiseCopyable, Sendable {
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
}

extension AtomicFields where Value == Counters {
    /// Counts one packet of `length` bytes into the counters where the map stores them.
    /// Relaxed atomic adds: no increment is lost, and only the totals matter.
    func countPacket(length: UInt64) {
        self[\.packets].wrappingAdd(1, ordering: .relaxed)
        self[\.bytes].wrappingAdd(length, ordering: .relaxed)
    }
}

/// Counts `packetsPerWorker` packets on each of `workers` threads, spread over a few flows.
/// Returns how many packets were dropped because the table was full.
func countPackets(into flows: BucketHashMap<FlowKey, Counters>, workers: Int, packetsPerWorker: Int) -> Int {
    let dropped = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        for packet in 0..<packetsPerWorker {
            // A made-up packet of one of 8 flows (4 clients, 2 server ports), 64–1500 bytes.
            // Every worker sees every flow, so threads count into the same entries at once.
            let client = UInt32(packet % 4), port = UInt16(8000 + packet / 4 % 2)
            let flow = FlowKey(source: 0x0A00_0001 + client, destination: 0xC000_0201,
                               sourcePort: 40_000, destinationPort: port, proto: 6)
            let length = UInt64(64 + (packet &* 37 &+ worker &* 101) % 1437)
            do {
                // The typical operation: insert the flow if it is missing, then count in place.
                try flows.upsertAtomicFields(forKey: flow, default: Counters()) { $0.countPacket(length: length) }
            } catch .outOfSpace, .noMemory {
                // E2BIG: the table is full (or, rarely, ENOMEM for an overflow bucket). A
                // real flow table would expire idle flows; here the packet is just not counted.
                dropped.add(1, ordering: .relaxed)
            } catch {
                // Nothing else can fail here (the map is not frozen, the key type fits).
                fatalError("counting a packet failed: \(error)")
            }
        }
    }
    return dropped.load(ordering: .relaxed)
}

/// `a.b.c.d` for an address in host byte order.
func dotted(_ address: UInt32) -> String {
    [24, 16, 8, 0].map { String(address >> $0 & 0xFF) }.joined(separator: ".")
}

// A bounded table: at most 1024 flows, preallocated.
let flows = try BucketHashMap<FlowKey, Counters>(maxEntries: 1024)

let workers = 4, packetsPerWorker = 25_000
let dropped = countPackets(into: flows, workers: workers, packetsPerWorker: packetsPerWorker)

// Print the table. Iteration is get-next-key: it never repeats a flow, and is safe while
// other threads keep writing (each field is read whole; while adds land in place, a row's
// packets and bytes may be from two moments. Here the workers have finished.)
print("flow".padding(toLength: 40), "packets".leftPadded(10), "bytes".leftPadded(10))
var totalPackets: UInt64 = 0
for (flow, counters) in flows.sorted(by: { ($0.key.source, $0.key.destinationPort) < ($1.key.source, $1.key.destinationPort) }) {
    let name = "\(dotted(flow.source)):\(flow.sourcePort) -> \(dotted(flow.destination)):\(flow.destinationPort)"
    print(name.padding(toLength: 40), String(counters.packets).leftPadded(10), String(counters.bytes).leftPadded(10))
    totalPackets += counters.packets
}
print("\(flows.count) flows, \(totalPackets) packets counted of \(workers * packetsPerWorker) sent, \(dropped) dropped")

// One flow, read back with a copy (nil if the flow is absent).
let first = FlowKey(source: 0x0A00_0001, destination: 0xC000_0201, sourcePort: 40_000, destinationPort: 8000, proto: 6)
if let counters = flows[first] { print("first flow: \(counters.packets) packets, \(counters.bytes) bytes") }

// Expire one flow: removeValue returns its last counters (exactly one thread would get them).
if let last = try flows.removeValue(forKey: first) { print("expired first flow after \(last.packets) packets") }

// Expire many: a pass, and a removal of each flow that should go (say its service went
// away). The pass is safe while other threads count; a packet counted into a flow between
// the pass's read and the removal is in the counters removeValue returns, one counted
// after it by a thread that had looked the flow up before lands in the removed copy, and
// one counted later re-creates the flow (TypedMaps.md, "Iteration").
var expired = 0, expiredPackets: UInt64 = 0
for (flow, _) in flows where flow.destinationPort == 8001 {
    if let last = try flows.removeValue(forKey: flow) {
        expired += 1
        expiredPackets += last.packets
    }
}
print("expired \(expired) flows to port 8001 (\(expiredPackets) packets); \(flows.count) flows left")

// The table's memory as the epoch layer accounts it (every map under the same pool tag):
// live, awaiting a grace period, and kept for reuse.
let memory = EpochMemory.statistics(for: flows.raw.definition.effectivePoolTag)
print("pool tag \(memory.tag): \(memory.liveBytes) bytes live, \(memory.pendingBytes) awaiting reclamation, \(memory.recycledBytes) kept for reuse")

extension String {
    func padding(toLength length: Int) -> String { self + String(repeating: " ", count: max(0, length - count)) }
    func leftPadded(_ length: Int) -> String { String(repeating: " ", count: max(0, length - count)) + self }
}
