import CRCUMapsShim

/// fork() support for RCUMaps' own layers. Not API: `package`.
///
/// RCUMaps makes a forked child's RCU state consistent by itself (see ``Epoch``, "Process
/// life", and docs/architecture.md). A layer that owns locks which a thread could hold at
/// the moment of a fork — and which the child would then inherit held, by a thread that
/// does not exist there — registers a participant: its `prepare` handler takes those locks
/// on the forking thread, and `parent` / `child` release them.
///
/// Handlers run after RCUMaps has quiesced liburcu (no registration or grace period of
/// RCUMaps in flight, liburcu's reclamation and resize workers paused). They must not enter
/// a section, wait for a grace period or a barrier, or register the calling thread; and the
/// locks they take must never be held by a thread that waits for a registration, a grace
/// period or a barrier (a thread that takes them inside a section, or after
/// `rcumaps_ensure_registered()`, never does), nor by a thread that takes another
/// participant's lock: a participant added while a fork prepares — a layer's lock made on
/// its first use, in a `static let` initialiser — is prepared after the others, out of
/// level order (the retire lists' registry and stripes are one participant). For the same
/// reason an initialiser that calls ``addParticipant(level:prepare:parent:child:)`` must not
/// block after it: the fork's late prepare touches the `static let`, and so waits for the
/// initialiser to return.
package enum EpochFork {
    /// Orders the participants of different layers: prepare handlers run from the highest
    /// level down, parent and child handlers from the lowest up.
    package enum Level: Int32 {
        /// The epoch layer: the innermost locks (retire lists).
        case epoch = 0
        /// Maps and providers (the custom-type factory, the provider registry's state): locks
        /// whose holders take no other participant's lock (see the type's rule).
        case maps = 1
    }

    /// Registers fork handlers (C functions: `@convention(c)` closures without captures).
    ///
    /// - Returns: `false` if the table of participants (16) is full.
    @discardableResult
    package static func addParticipant(level: Level,
                                       prepare: @convention(c) () -> Void,
                                       parent: @convention(c) () -> Void,
                                       child: @convention(c) () -> Void) -> Bool {
        rcumaps_fork_add_participant(level.rawValue, prepare, parent, child) == 0
    }

    /// How many participants of `level` are registered.
    package static func participantCount(level: Level) -> Int {
        Int(rcumaps_fork_participant_count(level.rawValue))
    }

    /// `false` in the child of a fork that could not be prepared (one called inside a
    /// section or on the reclamation thread): such a child may only read maps, then exec
    /// or `_exit`.
    package static var processIsUsable: Bool { rcumaps_process_is_usable() != 0 }
}

extension Epoch {
    /// How many threads have exited inside a section since the process started (each had
    /// its section ended for it, with a message on standard error). Not API: for tests.
    package static var _threadExitsInsideSection: Int {
        Int(rcumaps_thread_exits_inside_section_count())
    }

    /// A number identifying the calling thread's registration by RCUMaps, or 0 if RCUMaps
    /// has not registered it (yet). Not API: for tests.
    package static var _registrationID: UInt64 { UInt64(rcumaps_thread_registration_id()) }

    /// Whether the registration numbered `id` is still live: its thread has not exited.
    /// Call it outside a section. Not API: for tests.
    package static func _isRegistrationLive(_ id: UInt64) -> Bool {
        rcumaps_registration_is_live(CUnsignedLongLong(id)) != 0
    }
}
