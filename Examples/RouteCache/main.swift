// A read-mostly route table, read from many tasks while a control-plane task changes it.
//
//     swift run RouteCacheExample
//
// `RCUDictionary` takes any `Hashable & Sendable` key and any `Sendable` value (aligned to
// at most 16 bytes, as every Swift type is) — here
// structs holding `String`s, which the typed maps (fixed-size `BitwiseCopyable` values)
// cannot store. Reads never lock and never wait for writers: a lookup is one line,
// `routes[prefix]`, from any task or thread.

import RCUMaps
import Synchronization

/// An IPv4 prefix such as 10.1.0.0/16.
struct Prefix: Hashable, Sendable, CustomStringConvertible {
    var network: UInt32
    var length: Int

    /// The prefix of `length` bits that contains `address`.
    init(_ address: UInt32, _ length: Int) {
        self.network = length == 0 ? 0 : address & ~(UInt32.max >> length)
        self.length = length
    }

    var description: String {
        [24, 16, 8, 0].map { String(network >> $0 & 0xFF) }.joined(separator: ".") + "/\(length)"
    }
}

/// Where packets for a prefix go.
struct Route: Sendable {
    var nextHop: String
    var interface: String
}

/// The route to `destination`: the longest of the table's prefixes (/24, /16, /8, /0) that
/// contains it. Each step is one lock-free lookup that copies the route out.
func route(to destination: UInt32, in routes: RCUDictionary<Prefix, Route>) -> Route? {
    for length in [24, 16, 8, 0] {
        if let route = routes[Prefix(destination, length)] { return route }
    }
    return nil
}

let routes: RCUDictionary<Prefix, Route> = [
    Prefix(0, 0): Route(nextHop: "192.0.2.254", interface: "uplink"),
    Prefix(0x0A00_0000, 8): Route(nextHop: "192.0.2.1", interface: "eth0"),      // 10.0.0.0/8
    Prefix(0x0A01_0000, 16): Route(nextHop: "192.0.2.2", interface: "eth1"),     // 10.1.0.0/16
    Prefix(0x0A01_0200, 24): Route(nextHop: "192.0.2.3", interface: "eth2"),     // 10.1.2.0/24
]

// Eight reader tasks resolve destinations while a control-plane task moves 10.1.0.0/16 back
// and forth between two next hops. Readers see the old route or the new one, never a mix.
let readers = 8, batches = 50, lookupsPerBatch = 1_000
let readersRunning = Atomic<Int>(readers)
let routeChanges = Atomic<Int>(0)
let packetsPerInterface = await withTaskGroup(of: [String: Int].self) { group in
    for reader in 0..<readers {
        group.addTask {
            var counts: [String: Int] = [:]
            var seed = UInt32(reader + 1) &* 0x9E37_79B9
            for _ in 0..<batches {
                for _ in 0..<lookupsPerBatch {
                    seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5
                    let destination = 0x0A00_0000 | seed & 0x0003_FFFF      // in 10.0.0.0–10.3.255.255
                    if let found = route(to: destination, in: routes) { counts[found.interface, default: 0] += 1 }
                }
                await Task.yield()                                         // let other tasks run
            }
            readersRunning.subtract(1, ordering: .relaxed)
            return counts
        }
    }
    group.addTask {
        let prefix = Prefix(0x0A01_0000, 16)
        while readersRunning.load(ordering: .relaxed) > 0 {
            let change = routeChanges.add(1, ordering: .relaxed).newValue
            routes[prefix] = change % 2 == 1
                ? Route(nextHop: "192.0.2.9", interface: "eth3") : Route(nextHop: "192.0.2.2", interface: "eth1")
            await Task.yield()
        }
        routes[prefix] = Route(nextHop: "192.0.2.2", interface: "eth1")
        return [:]
    }
    var total: [String: Int] = [:]
    for await counts in group { total.merge(counts, uniquingKeysWith: +) }
    return total
}
print("lookups by interface:", packetsPerInterface.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
print("total:", packetsPerInterface.values.reduce(0, +), "of", readers * batches * lookupsPerBatch,
      "while 10.1.0.0/16 changed", routeChanges.load(ordering: .relaxed), "times")

/// Removes the route of `prefix`, then waits for a grace period: once `synchronize()`
/// returns, every section that could have found the old route has ended, and no lookup
/// finds it any more. A reader may still hold a *copy* it took before the removal (the
/// subscript returns one): work that must not outlive the route — forwarding through its
/// next hop before the hop is torn down — belongs inside `withValue(forKey:)`, whose
/// section the grace period waits for.
func withdraw(_ prefix: Prefix, from routes: RCUDictionary<Prefix, Route>) async -> Route? {
    guard let old = routes.removeValue(forKey: prefix) else { return nil }
    await Epoch.synchronize()        // the async form: suspends the task, blocks no thread
    return old
}

/// Withdraws 10.1.2.0/24 and shows where its addresses go now.
func withdrawOneRoute(from routes: RCUDictionary<Prefix, Route>) async {
    if let withdrawn = await withdraw(Prefix(0x0A01_0200, 24), from: routes) {
        print("withdrew 10.1.2.0/24 (via \(withdrawn.nextHop) on \(withdrawn.interface)); no lookup finds it any more")
    }
    print("10.1.2.7 now goes via", route(to: 0x0A01_0207, in: routes)?.interface ?? "nowhere")
}

await withdrawOneRoute(from: routes)

/// Prints the table, copied out (each entry is a value some write stored whole).
func printTable(_ routes: RCUDictionary<Prefix, Route>) {
    for (prefix, route) in routes.snapshot().sorted(by: { ($0.key.length, $0.key.network) < ($1.key.length, $1.key.network) }) {
        print("  \(prefix)".padding(20), "via \(route.nextHop) on \(route.interface)")
    }
}

printTable(routes)

/// Before a clean shutdown: once this returns, every route replaced or removed above has
/// been released. The async form blocks no pool thread, and any number of tasks may await
/// it at once: they share one barrier thread (tasks that arrive during a barrier wait for
/// the next one). (In an async function: top-level code picks the blocking form.)
func releaseRetiredRoutes() async {
    await Epoch.barrier()
}

await releaseRetiredRoutes()
print("replaced and removed routes released")

extension String {
    func padding(_ length: Int) -> String { self + String(repeating: " ", count: max(0, length - count)) }
}
