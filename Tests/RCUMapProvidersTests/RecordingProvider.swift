import RCUMaps
import RCUMapsTestSupport
import Synchronization

/// A fresh custom type ID per call, so tests running in parallel never collide.
func uniqueCustomType() -> MapType {
    MapType(rawValue: UInt32(5000 + customTypeCounter.wrappingAdd(1, ordering: .relaxed).newValue))
}
private let customTypeCounter = Atomic<Int>(0)

/// A Swift provider that records every callback, for checking the calling rules.
///
/// User values are `UInt32`. With `updatesOriginalValue`, the stored value is 8 bytes:
/// `{value, value ^ 0xA5A5A5A5}`; otherwise it is the user value itself.
final class RecordingProvider: Sendable {
    enum Kind: String, Sendable { case create, mapDelete, associate, find, addition, preDeletion, postDeletion }

    struct Event: Sendable, Equatable {
        var kind: Kind
        var flags: MapOperationFlags
        var key: UInt32?
        var value: UInt32?
        /// For element callbacks: whether they ran inside an epoch (they always must).
        var inEpoch: Bool = true
    }

    final class Context: Sendable {
        let serial: Int
        init(serial: Int) { self.serial = serial }
    }

    let updatesOriginalValue: Bool
    let usesDeprecatedDeletion: Bool
    /// Additions of this user value fail with EINVAL.
    let rejectedValue: UInt32
    /// Explicit deletes of this key are refused by the deprecated pre-deletion callback.
    let protectedKey: UInt32
    let events = ThreadLock<[Event]>([])
    let contextsAlive = Atomic<Int>(0)
    let contextsMade = Atomic<Int>(0)
    /// When set, preprocessMapCreate fails with ENOMEM.
    let failCreate = Atomic<Bool>(false)
    /// When set, preprocessMapCreate answers this stored size instead of the right one.
    let wrongStoredSize = Atomic<Int>(0)
    /// When set, postprocessFindElement fails with EPERM.
    let failFind = Atomic<Bool>(false)
    /// postprocessFindElement fails for this key, with EPERM (or `refusalIsNoSpace`: ENOSPC).
    let refusedFindKey = Atomic<UInt32>(0xFFFF_FFFF)
    /// The refusal of `refusedFindKey` is ENOSPC instead of EPERM (the errno a bucket-locked
    /// batch also answers, for a bucket larger than its room).
    let refusalIsNoSpace = Atomic<Bool>(false)
    /// When set, the deprecated pre-deletion callback looks its own key up (user mode) in this map.
    let lookupFromPreDeletion = ThreadLock<(any RawMap)?>(nil)
    /// When set, the deprecated pre-deletion callback asks this map for the key after
    /// `0xFFFF_FFFF` (absent, the last place of a chain) and records the answer.
    let nextKeyFromPreDeletion = ThreadLock<(any RawMap)?>(nil)
    let nextKeysSeen = ThreadLock<[UInt32?]>([])

    init(updatesOriginalValue: Bool = true, usesDeprecatedDeletion: Bool = false,
         rejectedValue: UInt32 = 0xDEAD, protectedKey: UInt32 = 0xFFFF_FFFF) {
        self.updatesOriginalValue = updatesOriginalValue
        self.usesDeprecatedDeletion = usesDeprecatedDeletion
        self.rejectedValue = rejectedValue
        self.protectedKey = protectedKey
    }

    var recorded: [Event] { events.withLock { $0 } }
    func recorded(_ kind: Kind) -> [Event] { recorded.filter { $0.kind == kind } }
    func clear() { events.withLock { $0.removeAll() } }

    private func record(_ kind: Kind, flags: MapOperationFlags = [], key: UnsafeRawBufferPointer? = nil,
                        value: UnsafeRawBufferPointer? = nil) {
        let event = Event(kind: kind, flags: flags,
                          key: key.flatMap { $0.count >= 4 ? $0.loadUnaligned(as: UInt32.self) : nil },
                          value: value.flatMap { $0.count >= 4 ? $0.loadUnaligned(as: UInt32.self) : nil },
                          inEpoch: key == nil || Epoch.isActive)
        events.withLock { $0.append(event) }
    }

    var storedSize: Int { updatesOriginalValue ? 8 : 4 }

    var dispatch: MapProviderDispatchTable {
        var table = MapProviderDispatchTable(
            preprocessMapCreate: { [self] (request) throws(MapError) -> MapCreateResult in
                record(.create)
                if failCreate.load(ordering: .relaxed) { throw MapError.noMemory }
                guard request.valueSize == 4 else { throw MapError.invalidArgument }
                contextsAlive.wrappingAdd(1, ordering: .relaxed)
                let serial = contextsMade.wrappingAdd(1, ordering: .relaxed).newValue
                let wrong = wrongStoredSize.load(ordering: .relaxed)
                return MapCreateResult(actualValueSize: wrong != 0 ? wrong : storedSize, context: Context(serial: serial))
            },
            postprocessMapDelete: { [self] context in
                precondition(context is Context, "postprocessMapDelete got a foreign context")
                record(.mapDelete)
                contextsAlive.wrappingSubtract(1, ordering: .relaxed)
            },
            preprocessAssociateProgramType: { [self] (_, programType) throws(MapError) in
                record(.associate)
                if programType.bytes[0] == 0xFF { throw MapError.permissionDenied }
            },
            postprocessFindElement: { [self] (call) throws(MapError) in
                record(.find, flags: call.flags, key: call.key, value: call.inValue)
                if failFind.load(ordering: .relaxed) { throw MapError.permissionDenied }
                if call.key.loadUnaligned(as: UInt32.self) == refusedFindKey.load(ordering: .relaxed) {
                    throw refusalIsNoSpace.load(ordering: .relaxed) ? MapError.noSpace : MapError.permissionDenied
                }
                guard let out = call.outValue else { return }
                let value = call.inValue.loadUnaligned(as: UInt32.self)
                let check = call.inValue.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
                guard check == value ^ 0xA5A5_A5A5 else { throw MapError.invalidArgument }
                out.storeBytes(of: value, as: UInt32.self)
            },
            preprocessElementAddition: { [self] (call) throws(MapError) in
                record(.addition, flags: call.flags, key: call.key, value: call.inValue)
                let value = call.inValue.loadUnaligned(as: UInt32.self)
                if value == rejectedValue { throw MapError.invalidArgument }
                guard let out = call.outValue else { return }
                out.storeBytes(of: value, as: UInt32.self)
                out.storeBytes(of: value ^ 0xA5A5_A5A5, toByteOffset: 4, as: UInt32.self)
            })
        if usesDeprecatedDeletion {
            table.preprocessElementDeletion = { [self] (call) throws(MapError) in
                record(.preDeletion, flags: call.flags, key: call.key, value: call.value)
                if call.key.loadUnaligned(as: UInt32.self) == protectedKey { throw MapError.permissionDenied }
                if let map = lookupFromPreDeletion.withLock({ $0 }) {
                    _ = try? map.get(call.key.loadUnaligned(as: UInt32.self), as: UInt32.self)
                }
                if let map = nextKeyFromPreDeletion.withLock({ $0 }) {
                    var next = UInt32(0)
                    let found = withUnsafeBytes(of: UInt32.max) { cursor in
                        withUnsafeMutableBytes(of: &next) { (try? map.nextKey(after: cursor, into: $0)) != nil }
                    }
                    nextKeysSeen.withLock { $0.append(found ? next : nil) }
                }
            }
        } else {
            table.postprocessElementDeletion = { [self] call in
                record(.postDeletion, flags: call.flags, key: call.key, value: call.value)
            }
        }
        return table
    }

    /// Registers this provider for a fresh type on `base`.
    func register(base: ProviderBaseMap) throws -> MapProviderRegistration {
        try MapProviderRegistry.shared.register(
            type: uniqueCustomType(), base: base,
            properties: MapProviderProperties(updatesOriginalValue: updatesOriginalValue), dispatch: dispatch)
    }
}

extension MapProviderRegistration {
    /// A map of this registration's type with UInt32 keys and values.
    func makeMap(maxEntries: Int = 64, tag: PoolTag = uniqueTag()) throws -> any RawMap {
        try MapRegistry.create(MapDefinition(type: type, keySize: 4, valueSize: 4, maxEntries: maxEntries, poolTag: tag))
    }
}
