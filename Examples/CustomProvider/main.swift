// Custom map types written in Swift: a typed provider registered in a registry of your own,
// and the object map, a typed map of class instances built on such a provider.
//
//     swift run CustomProviderExample
//
// A provider hooks into a built-in map (storage, iteration, locking and memory are the
// base map's) and sees values on their way in and out. Its maps are `CustomMap`s: the same
// Dictionary-like API as the built-in typed maps, except that lookups can throw (the
// provider may refuse them).

import ObjectMapProvider
import RCUMaps

/// A per-port rate limit.
struct RateLimit: BitwiseCopyable, Sendable {
    var packetsPerSecond: UInt32
    var burst: UInt32
}

/// A validating provider: every value stored is checked (a rate of 0 is refused) and
/// rewritten in the same form (the burst is capped at one second of traffic). Validating
/// providers keep in-place access; a `.transforming` provider (`store` / `load`) could keep
/// another form in the map, and would block it.
struct RateLimitPolicy: TypedMapProvider {
    typealias Key = UInt16                       // a port
    typealias Value = RateLimit
    static var mode: TypedProviderMode { .validating }

    func validate(_ limit: inout RateLimit, forKey port: UInt16, context: NoProviderContext) throws(MapError) {
        guard limit.packetsPerSecond > 0 else {
            throw MapError.invalidArgument.with(reason: "port \(port): a rate of 0 blocks everything; remove the limit instead")
        }
        limit.burst = min(limit.burst, limit.packetsPerSecond)
    }

    /// Exactly once for every value that leaves the map: deleted, replaced, rolled back
    /// (an update that failed after `validate` accepted it) or torn down with the map.
    func removed(_ limit: RateLimit, forKey port: UInt16, reason: RemovalReason, context: NoProviderContext) {
        print("  [provider] port \(port): limit \(limit.packetsPerSecond)/s left the map (\(reason))")
    }
}

// A registry of our own: the type IDs registered in it (4096–65535) cannot collide with
// any other library's, and its maps are created through the registration.
let registry = MapProviderRegistry()
let policy = try registry.register(RateLimitPolicy(), type: MapType(rawValue: 4200), base: .hashBucketLocked)

do {
    let limits = try policy.makeMap(maxEntries: 1024)              // a CustomMap<UInt16, RateLimit>
    try limits.updateValue(RateLimit(packetsPerSecond: 1_000, burst: 50_000), forKey: 443)
    print("port 443:", try limits[443].map { "\($0.packetsPerSecond)/s, burst \($0.burst)" } ?? "no limit")

    do {
        try limits.updateValue(RateLimit(packetsPerSecond: 0, burst: 0), forKey: 22)
    } catch {
        print("port 22 refused:", error)                           // EINVAL with the provider's reason
    }

    // In place, inside an epoch section (throws MapError.notSupported for a transforming
    // provider). In-place writes do not go through `validate`.
    try limits.withValue(forKey: 443) { $0.burst /= 2 }
    print("port 443 burst halved in place:", try limits[443]?.burst ?? 0)

    try limits.updateValue(RateLimit(packetsPerSecond: 2_000, burst: 2_000), forKey: 443)   // replaced
    try limits.updateValue(RateLimit(packetsPerSecond: 100, burst: 10), forKey: 80)
    try limits.removeValue(forKey: 80)                                                      // deleted
    try limits.updateValue(RateLimit(packetsPerSecond: 10, burst: 10), forKey: 25)
    print("dropping the map with \(limits.count) limits")
}                                                                  // torn down here
try policy.unregister()                                            // EBUSY while maps of the type exist

// The object map: `ObjectMap<Key, Object>` stores class instances (one strong reference
// per entry, through a provider of its own). Readers get the object retained, lock-free;
// an object that leaves the map is released after a grace period, once no reader can
// still be turning its address into a reference.
final class Connection: Sendable {
    let peer: String
    init(peer: String) { self.peer = peer }
    deinit { print("  [deinit] connection to \(peer) closed") }
}

do {
    let connections = try ObjectMap<UInt32, Connection>(maxEntries: 64)     // fd → connection
    try connections.updateValue(Connection(peer: "198.51.100.7:443"), forKey: 5)
    try connections.updateValue(Connection(peer: "203.0.113.9:22"), forKey: 6)
    if let connection = connections[5] { print("fd 5 is connected to", connection.peer) }
    try connections.removeValue(forKey: 6)
    print("fd 6 removed; its connection is released after a grace period")
    Epoch.barrier()                                    // wait for deferred releases to run
    print("\(connections.count) connection(s) left; dropping the map")
}
Epoch.barrier()
print("done")
