import RCUBaseMaps
import RCUEpoch

/// A provider's per-map state: whatever `preprocessMapCreate` returns, handed back to every
/// later callback for that map and finally to `postprocessMapDelete`.
public typealias MapProviderContext = AnyObject & Sendable

/// The built-in map a custom type is stored in.
public enum ProviderBaseMap: String, Hashable, Sendable, CaseIterable {
    /// `HASH` on liburcu rculfhash (``/RCUBaseMaps/RawLockFreeHashMap``).
    case hashLockFree
    /// `HASH` with per-bucket locks (``/RCUBaseMaps/RawBucketHashMap``), the eBPF-for-Windows design.
    case hashBucketLocked
    /// `ARRAY` (``/RCUBaseMaps/RawArrayMap``): every index always holds a value (initially all zero bytes),
    /// so deletion callbacks see displaced values — possibly those zeros — and cleanup
    /// reports every slot.
    case array

    var definitionType: MapType { self == .array ? .array : .hash }
    var hashImplementation: HashImplementation { self == .hashLockFree ? .lockFree : .bucketLocked }
}

/// Properties of a provider (eBPF-for-Windows `ebpf_base_map_provider_properties_t`).
public struct MapProviderProperties: Hashable, Sendable {
    /// The stored value differs from the value users pass and see: additions translate
    /// user → stored, finds translate stored → user. Requires the find, addition and a
    /// deletion callback, and blocks helper-mode CRUD (in-place access would expose the
    /// stored form) with ``/RCUBaseMaps/MapError/notSupported``.
    public var updatesOriginalValue: Bool

    /// The addition callback may check and rewrite the user's value without changing its
    /// form (clamp a field, fill a default): it gets ``MapElementCall/outValue`` holding a
    /// copy of the value, and the map stores what it leaves there. Stored values stay the
    /// values users see, so helper-mode access stays allowed. Needs the addition callback;
    /// not with ``updatesOriginalValue``. An RCUMaps extension.
    public var validatesValues: Bool

    /// Properties: by default the provider neither transforms nor validates values.
    public init(updatesOriginalValue: Bool = false, validatesValues: Bool = false) {
        self.updatesOriginalValue = updatesOriginalValue
        self.validatesValues = validatesValues
    }
}

/// A program type: a 16-byte GUID naming a consumer of maps.
public struct ProgramType: Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes, in the order they are written in the GUID's text form.
    public let bytes: [UInt8]

    /// A program type from exactly 16 bytes (`nil` otherwise).
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// A program type from its text form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (`nil` if malformed).
    public init?(_ text: String) {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        var bytes: [UInt8] = []
        let digits = Array(groups.joined().utf8)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = Self.hexValue(digits[index]), let low = Self.hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A readable form, for logs and error messages.
    public var description: String {
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
    }
}

/// What `preprocessMapCreate` is asked.
public struct MapCreateRequest: Hashable, Sendable {
    /// The custom type being created.
    public var type: MapType
    /// The key size users asked for.
    public var keySize: Int
    /// The value size users asked for.
    public var valueSize: Int
    /// The map's capacity.
    public var maxEntries: Int
}

/// What `preprocessMapCreate` answers.
public struct MapCreateResult: Sendable {
    /// The value size the base map stores. Must equal the requested value size unless the
    /// provider ``MapProviderProperties/updatesOriginalValue``.
    public var actualValueSize: Int
    /// The provider's per-map context.
    public var context: (any MapProviderContext)?

    /// An answer: the stored value size and, optionally, a per-map context (retained by the
    /// map until `postprocessMapDelete`).
    public init(actualValueSize: Int, context: (any MapProviderContext)? = nil) {
        self.actualValueSize = actualValueSize
        self.context = context
    }
}

/// The arguments of `postprocessFindElement` and `preprocessElementAddition`.
///
/// Every buffer is borrowed for the duration of the call only.
public struct MapElementCall {
    /// The map's provider context. Borrowed (`unowned(unsafe)`): the map keeps it alive for
    /// the call, and not retaining it keeps threads from contending on its reference count.
    public unowned(unsafe) let context: (any MapProviderContext)?
    /// The element's key (the map's key size), borrowed for the call.
    public let key: UnsafeRawBufferPointer
    /// Find: the stored value. Addition: the value the user passed.
    public let inValue: UnsafeRawBufferPointer
    /// With `updatesOriginalValue`: find writes the user-visible value here, addition the
    /// stored value. With `validatesValues`: addition gets a copy of the user's value here,
    /// which it may rewrite. `nil` otherwise.
    public let outValue: UnsafeMutableRawBufferPointer?
    /// Why the callback runs: `.helper` in helper mode, none in user mode.
    public let flags: MapOperationFlags

    @usableFromInline
    init(context: (any MapProviderContext)?, key: UnsafeRawBufferPointer, inValue: UnsafeRawBufferPointer,
         outValue: UnsafeMutableRawBufferPointer?, flags: MapOperationFlags) {
        self.context = context
        self.key = key
        self.inValue = inValue
        self.outValue = outValue
        self.flags = flags
    }
}

/// The arguments of the element-deletion callbacks.
///
/// Every buffer is borrowed for the duration of the call only.
public struct MapElementDeletion {
    /// The map's provider context, borrowed for the call (see ``MapElementCall/context``).
    public unowned(unsafe) let context: (any MapProviderContext)?
    /// The key of the element leaving the map, borrowed for the call.
    public let key: UnsafeRawBufferPointer
    /// The stored value leaving the map.
    public let value: UnsafeRawBufferPointer
    /// `.update` (displaced by a replace, or the rollback of a failed update), `.mapCleanup`
    /// (teardown), `.helper` (helper mode), or none (an explicit user-mode delete).
    public let flags: MapOperationFlags
}
