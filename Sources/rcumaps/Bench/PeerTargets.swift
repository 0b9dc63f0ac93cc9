// The peer hash maps C and C++ programmers pick (ConcurrencyKit ck_ht, libcuckoo, oneTBB
// concurrent_hash_map), measured by `rcumaps bench` at any thread count beside RCUMaps' maps.
//
// RCUMaps never links them: they are the Benchmarks package's CPeerMaps target, built there as
// a shared library (`cd Benchmarks && ./install-peers.sh && swift build -c release --product
// RCUMapsPeers`), which `--peers-library PATH` names and this file loads with dlopen. Each
// operation is one call through a C function pointer (the C baselines of this package are
// direct calls; the difference is a few instructions an operation, against the peers).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why the peer library could not be used.
struct PeerLibraryError: Error, CustomStringConvertible {
    let description: String
}

/// The functions of one peer in the RCUMapsPeers library: `<prefix>_create`, `_lookup`,
/// `_upsert`, `_insert`, `_remove`, `_count` and `_destroy`, with the contracts of
/// `Benchmarks/Sources/CPeerMaps/include/CPeerMaps.h` (every one safe from any number of
/// threads at once, but `destroy`).
struct PeerFunctions: @unchecked Sendable {
    // @unchecked Sendable: C function pointers, which capture nothing.
    typealias Create = @convention(c) (Int) -> OpaquePointer?
    typealias Lookup = @convention(c) (OpaquePointer?, UInt64, UnsafeMutablePointer<UInt64>?) -> Int32
    typealias Write = @convention(c) (OpaquePointer?, UInt64, UInt64) -> Int32
    typealias Remove = @convention(c) (OpaquePointer?, UInt64) -> Int32
    typealias Count = @convention(c) (OpaquePointer?) -> Int
    typealias Destroy = @convention(c) (OpaquePointer?) -> Void

    let create: Create
    let lookup: Lookup
    let upsert: Write
    let insert: Write
    let remove: Remove
    let count: Count
    let destroy: Destroy
}

extension PeerFunctions {
    /// Resolves `<prefix>_create` ... `<prefix>_destroy` in `handle` (a `dlopen` handle).
    init(handle: UnsafeMutableRawPointer, prefix: String, libraryName: String) throws(PeerLibraryError) {
        func symbol<F>(_ name: String, as _: F.Type) throws(PeerLibraryError) -> F {
            guard let address = dlsym(handle, "\(prefix)_\(name)") else {
                throw PeerLibraryError(description: "\(libraryName) has no \(prefix)_\(name)")
            }
            return unsafeBitCast(address, to: F.self)
        }
        create = try symbol("create", as: Create.self)
        lookup = try symbol("lookup", as: Lookup.self)
        upsert = try symbol("upsert", as: Write.self)
        insert = try symbol("insert", as: Write.self)
        remove = try symbol("remove", as: Remove.self)
        count = try symbol("count", as: Count.self)
        destroy = try symbol("destroy", as: Destroy.self)
    }

    /// The functions of `kind` (a peer kind: ``MapKind/peerSymbolPrefix``) in the library at
    /// `path`. The library stays loaded for the life of the process.
    static func load(_ kind: MapKind, from path: String?) throws(PeerLibraryError) -> PeerFunctions {
        guard let prefix = kind.peerSymbolPrefix else {
            throw PeerLibraryError(description: "\(kind.rawValue) is not a peer map")
        }
        guard let path else {
            throw PeerLibraryError(description: "\(kind.rawValue) is a peer map: it needs --peers-library PATH, the "
                + "Benchmarks package's shared library (cd Benchmarks && ./install-peers.sh && swift build -c release "
                + "--product RCUMapsPeers; then --peers-library Benchmarks/.build/release/libRCUMapsPeers.so)")
        }
        guard !path.isEmpty else { throw PeerLibraryError(description: "--peers-library needs a path, not an empty one") }
        // A file in the current directory is that file: `dlopen` looks a name without a
        // slash up in the library path only, not in the current directory. Any other name
        // is left to the loader's search.
        let file = !path.contains("/") && access(path, F_OK) == 0 ? "./" + path : path
        guard let handle = dlopen(file, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            throw PeerLibraryError(description: "cannot load the peer maps from \(path): \(reason)")
        }
        return try PeerFunctions(handle: handle, prefix: prefix, libraryName: path)
    }
}

/// A peer map (``PeerFunctions``) with 8-byte keys ``BenchKeys/hashKey(_:)`` and values, as
/// the C rculfhash baseline: room for twice `entries`, so it never resizes while measured.
final class PeerTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: the peers are safe for concurrent use (CPeerMaps.h); `table` and
    // the function pointers never change, and `destroy` runs only in deinit.
    let functions: PeerFunctions
    let table: OpaquePointer
    let entries: Int

    /// Creates the table and inserts keys `0..<entries`; throws if the peer fails either.
    init(_ functions: PeerFunctions, name: String, entries: Int) throws(PeerLibraryError) {
        guard let table = functions.create(entries * 2) else {
            throw PeerLibraryError(description: "\(name): cannot create a table for \(entries * 2) entries")
        }
        self.functions = functions
        self.table = table
        self.entries = entries
        for index in 0..<entries where functions.insert(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)) != 1 {
            throw PeerLibraryError(description: "\(name): prefill insert of key \(index) failed")
        }
        let counted = functions.count(table)
        guard counted == entries else {
            throw PeerLibraryError(description: "\(name): prefilled \(entries) keys but the table counts \(counted)")
        }
    }

    deinit { functions.destroy(table) }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var value: UInt64 = 0
        return functions.lookup(table, BenchKeys.hashKey(index), &value) == 1 ? value : nil
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        functions.upsert(table, BenchKeys.hashKey(index), value) == 0
    }

    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        WriteOutcome(status: functions.insert(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)))
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        WriteOutcome(status: functions.remove(table, BenchKeys.hashKey(index)))
    }
}
