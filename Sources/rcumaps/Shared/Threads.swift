import CRCUMapsShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An OS thread running one closure; call ``join()`` exactly once.
struct OSThread {
    private let handle: pthread_t

    /// The closure a new thread runs, handed to `pthread_create` as its argument.
    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts a thread running `body`; `nil` if the system refused (`pthread_create` failed).
    init?(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var handle = pthread_t()
        let status = pthread_create(&handle, nil, { context in
            guard let context else { return nil }
            Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            return nil
        }
        self.handle = handle
    }

    /// Waits for the thread to finish.
    func join() {
        _ = pthread_join(handle, nil)
    }

    /// Gives the thread up instead of joining it (its resources go when it finishes): for a
    /// thread that may never finish. Call it instead of ``join()``, exactly once.
    func detach() {
        _ = pthread_detach(handle)
    }
}

/// Number of CPUs online.
func cpuCount() -> Int {
    max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// CPUs this process may run on: its affinity mask (a container or `taskset` may allow
/// fewer than are online), or ``cpuCount()`` if the mask cannot be read.
func usableCPUCount() -> Int {
    let allowed = Int(rcumaps_allowed_cpu_count())
    return allowed > 0 ? allowed : cpuCount()
}
