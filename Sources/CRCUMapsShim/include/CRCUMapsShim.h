/*
 * CRCUMapsShim — the C shims RCUMaps needs on top of liburcu and libnuma.
 *
 * Only what Swift cannot import or call cheaply lives here:
 *   - lazy per-thread registration with liburcu (the memb flavour requires a
 *     thread to be registered before its first read lock; Swift code runs on
 *     threads it does not create, so we register on first use and unregister
 *     from a pthread key destructor at thread exit);
 *   - the read-side fast path as static inline functions, so it inlines into Swift;
 *   - rculfhash helpers: node layout, the key match function, and wrappers
 *     whose iterator handling Swift would otherwise have to re-implement;
 *   - ThreadSanitizer annotations for the happens-before edges that liburcu
 *     creates with membarrier and uninstrumented atomics (no-ops otherwise).
 *
 * This header never defines _LGPL_SOURCE: the read lock is a call into
 * liburcu-memb.so. CRCUMapsInlineReadSide is the inlined variant (trait
 * InlineReadSide, on by default).
 */
#ifndef CRCUMAPS_SHIM_H
#define CRCUMAPS_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <malloc.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Per-thread state
 * ------------------------------------------------------------------------- */

/* Per-thread state. `registered` is non-zero once this thread is known to be
 * a registered liburcu reader: 1 registered by us, 2 a liburcu call_rcu worker,
 * 3 registered by the application (adopted).
 * `nesting` is the read-section depth as RCUMaps counts it. */
typedef struct rcumaps_thread_state {
    /* `nesting` and `slow_read` side by side, also readable as one word (`read_gate`, little
     * endian: `nesting` its low half), so that CRCUMapsInlineReadSide's outermost lock and
     * unlock test both with one instruction: the gate is 0 exactly when the thread is in no
     * section and may take the fast path. */
    union {
        struct {
            unsigned int nesting;
            /* Zero when CRCUMapsInlineReadSide's outermost lock and unlock may take their
             * fast path: the thread is registered, liburcu uses sys_membarrier (its
             * read-side barriers are compiler barriers) and the shim is not built for
             * ThreadSanitizer. Starts at 1 in every thread (shim.c); cleared by that
             * target's slow path, set again here with `registered` cleared. */
            unsigned int slow_read;
        };
        unsigned long long read_gate;
    };
    unsigned int registered;
    /* 0 until rcumaps_thread_stripe() first runs on the thread, then its stripe + 1. */
    unsigned int stripe;
    /* Sections this thread entered with Swift's unscoped `Epoch.enter()` and has not left
     * with `Epoch.exit()`: all that `Epoch.exit()` may end (rcumaps_unscoped_exit). */
    unsigned int unscoped;
    /* The bucket table (its serial number, never reused) whose overflow growth this
     * thread's last allocation took past its bound while reclamation was behind, until the
     * thread waits for that table's reclamation (rcumaps_take_growth_tripped); else 0. With
     * the reclaim generation that was pending then: once it has completed, the record is
     * stale. (Keyed by the bucket array's address, a record outlived its table and matched
     * a later table at the same address: found by review, 2026-12-06.) */
    unsigned long long growth_table;
    unsigned long long growth_generation;
} rcumaps_thread_state_t;

/* initial-exec: a direct %fs-relative access instead of a __tls_get_addr call on
 * every read lock. Valid because the shim is linked into the program (or a library
 * loaded at start-up), as SwiftPM builds it. */
extern __thread rcumaps_thread_state_t rcumaps_tls __attribute__((tls_model("initial-exec")));

/* Registers the calling thread with liburcu-memb and arranges for it to be
 * unregistered when the thread exits. Idempotent. Slow path of the read lock. */
void rcumaps_register_current_thread(void);

/* Marks the calling thread as an already-registered reader without calling
 * liburcu: used on liburcu's own call_rcu worker threads (which register
 * themselves) by the reclaim callback; rcumaps_thread_is_liburcu_worker is then
 * true. We never unregister such a thread. */
void rcumaps_mark_thread_registered(void);

/* The same for a thread the application registered with liburcu-memb itself
 * (Epoch.adoptRegisteredThread): never registered nor unregistered by us, and not
 * taken for the reclamation thread. */
void rcumaps_adopt_registered_thread(void);

/* Undoes rcumaps_adopt_registered_thread before the application unregisters the thread
 * from liburcu itself: RCUMaps forgets it (once the application has unregistered it, its
 * next section registers it anew, as RCUMaps' own; a section before that stops the program
 * with a message). Stops the program inside a section or a liburcu read lock. No effect on
 * a thread not adopted. */
void rcumaps_release_adopted_thread(void);

/* ---------------------------------------------------------------------------
 * Process life: thread exit, fork
 *
 * A thread we registered is unregistered by a pthread key destructor when it
 * exits; one that exits inside a section has the section ended for it first
 * (reported on stderr, the first 8 times, and counted).
 *
 * fork(): a pthread_atfork triple, installed with the first registration (or
 * adoption, or participant), makes the child of a fork usable (see shim.c,
 * "fork", and docs/architecture.md, "Process life"). A fork from inside a
 * section, or from the reclamation thread, cannot be prepared: its child may
 * only read maps, then exec or _exit; grace periods, barriers, registrations and
 * lock-free hash map creation or destruction stop it with a message.
 * ------------------------------------------------------------------------- */

/* Registers fork handlers of an RCUMaps layer that owns locks a forked child
 * could otherwise inherit held by a thread that does not exist there.
 * `prepare` runs on the forking thread after RCUMaps has quiesced liburcu (no
 * registration or grace period of ours in flight, liburcu's call_rcu and
 * rculfhash workers paused); it takes the layer's locks. `parent` and `child`
 * release them (in the child, the forking thread's continuation; pthread
 * mutexes of the default type are simply unlocked, as POSIX's rationale for
 * pthread_atfork does). Levels order layers: 0 = the epoch layer (innermost
 * locks), 1 = maps and providers, up to 3; prepare handlers run from the
 * highest level down (each level in reverse order of registration), parent and
 * child handlers from level 0 up (in order of registration).
 * Handlers must not enter a section, wait for a grace period or a barrier, or
 * register the thread; the locks they take must never be held by a thread that
 * waits for one of those (enter a section, or call rcumaps_ensure_registered,
 * before taking them), nor by one that takes another participant's lock: a
 * participant added while a fork prepares (a layer's lock made on its first use)
 * is prepared after the others, out of level order. At most 16 participants.
 * Never blocks. Returns 0, or -1 if the level or a handler is invalid or the
 * table is full. */
int rcumaps_fork_add_participant(int level, void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void));

/* How many participants of `level` are registered. */
int rcumaps_fork_participant_count(int level);

/* 1 unless this process is the child of a fork that could not be prepared. */
int rcumaps_process_is_usable(void);

/* Nonzero in a forked child whose RCU state is unusable (the reason; see shim.c). Written
 * only by the fork child handler, before the child has other threads. */
extern int rcumaps_child_unusable;
/* Stops such a child with the message of a retirement. */
void rcumaps_stop_unusable_retirement(void);
/* Every retirement into a retire list checks this (a load and a branch): only its batches
 * reach call_rcu, which checks too, so up to a batch of retirements a stripe went unnoticed
 * and leaked in such a child (found by review, 2026-12-05). */
static inline void rcumaps_check_retirement_allowed(void)
{
    if (__builtin_expect(rcumaps_child_unusable != 0, 0)) rcumaps_stop_unusable_retirement();
}

/* How many threads exited inside a section (all threads, since start). */
unsigned long rcumaps_thread_exits_inside_section_count(void);

/* For tests: a number identifying the calling thread's registration by RCUMaps
 * or adoption (0 if there is none), and whether a registration is still live
 * (its thread has not exited). Call outside sections. */
unsigned long long rcumaps_thread_registration_id(void);
int rcumaps_registration_is_live(unsigned long long id);

/* ThreadSanitizer: a reader leaving its section "releases" the grace-period
 * sync object; a reclaim callback "acquires" it before freeing. Empty unless
 * this file is compiled with -fsanitize=thread. */
void rcumaps_tsan_reader_exit(void);
void rcumaps_tsan_after_grace_period(void);
/* Non-zero when the shim was compiled with ThreadSanitizer. */
extern const int rcumaps_tsan_enabled;
/* Non-zero when the shim was compiled with AddressSanitizer. */
extern const int rcumaps_asan_enabled;

/* ---------------------------------------------------------------------------
 * Read side (safe, non-LGPL: calls into liburcu-memb.so)
 * ------------------------------------------------------------------------- */

/* Enters a read-side critical section. Wraps `urcu_memb_read_lock` (generic
 * `rcu_read_lock`), registering the thread first if needed. Nestable. */
static inline __attribute__((always_inline)) void rcumaps_read_lock(void)
{
    /* Only the outermost section calls liburcu: it covers the nested ones. The depth is
     * raised after the lock, as in CRCUMapsInlineReadSide (a signal handler's section in
     * between takes a lock of its own). */
    if (rcumaps_tls.nesting == 0) {
        if (__builtin_expect(!rcumaps_tls.registered, 0))
            rcumaps_register_current_thread();
        urcu_memb_read_lock();
    }
    rcumaps_tls.nesting++;
}

/* Stops the program: a section was left more times than it was entered (an
 * `Epoch.exit()` inside `Epoch.withSection` with no `enter()` of its own). Going on would
 * leave every later section of the thread without a read lock. */
void rcumaps_section_underflow(void) __attribute__((noreturn, cold));

/* Leaves a read-side critical section; the outermost exit wraps `urcu_memb_read_unlock`.
 * Leaving one more time than entered stops the program (checked on the nested branch
 * only: the outermost exit, the common one, pays nothing for it). */
static inline __attribute__((always_inline)) void rcumaps_read_unlock(void)
{
    /* (The nested branch reads the depth again, with an atomic load the compiler does not
     * fold into the decrement: the outermost exit stays one `dec` in memory and a branch.) */
    if (--rcumaps_tls.nesting == 0) {
        /* TSan: release before unlocking, so that every access of the section is ordered
         * before the reclamation that the end of the section may allow. */
        if (__builtin_expect(rcumaps_tsan_enabled, 0))
            rcumaps_tsan_reader_exit();
        urcu_memb_read_unlock();
    } else if (__builtin_expect(__atomic_load_n(&rcumaps_tls.nesting, __ATOMIC_RELAXED) == (unsigned int)-1, 0)) {
        rcumaps_section_underflow();
    }
}

/* Swift's `Epoch.enter()` and `Epoch.exit()`: count the unscoped sections of the calling
 * thread; the exit answers 0, changing nothing, when none is open (an exit inside a
 * `withSection` body, which did not enter that section, would end it under the body's
 * borrowed pointers). */
static inline void rcumaps_unscoped_enter(void) { rcumaps_tls.unscoped++; }
static inline int rcumaps_unscoped_exit(void)
{
    if (__builtin_expect(rcumaps_tls.unscoped == 0, 0)) return 0;
    rcumaps_tls.unscoped--;
    return 1;
}

/* Current read-section depth of the calling thread (0 = outside). */
static inline unsigned int rcumaps_read_nesting(void)
{
    return rcumaps_tls.nesting;
}

/* Non-zero inside an epoch section or a liburcu read lock the thread took itself (which
 * the depth above does not count): where waiting for a grace period, or for a fork that
 * waits for one, would wait for this thread. */
int rcumaps_inside_any_read_lock(void);

/* Non-zero on liburcu's own (call_rcu worker) threads, where our reclaim callbacks run:
 * marked by the first of them, or recognised by their call_rcu data before that. */
int rcumaps_recognise_liburcu_worker(void);

/* Tests: non-zero makes every start of the grace-period driver's thread fail (EAGAIN), as
 * in a process at its thread limit; its items then wait for a later retry (at most one
 * every 10 ms) or run in Epoch.barrier(). */
void rcumaps_gp_test_fail_driver_starts(int fail);
/* Tests: how many starts of the driver's thread were tried so far (failed ones included). */
unsigned long long rcumaps_gp_test_driver_start_attempts(void);

/* Whether the grace-period driver's thread could not be started (a thread limit): its
 * queued items wait for a later enqueue or a barrier. A caller that holds a claim on a
 * queued item instead of enqueuing another (an idle flush pending, a generation in flight)
 * calls rcumaps_gp_driver_retry_start when this is set, so that a later write does start
 * it: found by review, 2026-12-06, twenty-eighth session (the claim kept every later write
 * from enqueuing, and the items waited for a barrier that may never come). Starts are
 * tried at most once every 10 ms after a failure (an enqueue's and a retry's alike). */
extern int rcumaps_gp_start_failed;
static inline int rcumaps_gp_driver_start_failed(void)
{
    return __atomic_load_n(&rcumaps_gp_start_failed, __ATOMIC_RELAXED);
}
/* Starts the driver for the items queued, if it is not running (and not being drained)
 * and its last failed start is 10 ms old or more; returns at once, without a lock, within
 * those 10 ms. */
void rcumaps_gp_driver_retry_start(void);

/* Tests: a pause of `micros` µs in a fork child's handler right after liburcu's child hook
 * has started the new call_rcu worker (0: none), so that the worker's first callbacks run
 * before the handler goes on. */
void rcumaps_test_pause_after_call_rcu_child(unsigned int micros);

/* Tests: queues a liburcu callback that, when it runs, queues a second one and sets
 * `*stage` to 1; the second, when it runs, queues an item on the grace-period driver (as a
 * finalizer that retires into an idle-flushing list does) and sets `*stage` to the id of
 * the process it ran in — negated unless a fork child's handler was pausing then
 * (rcumaps_test_pause_after_call_rcu_child). Forked while the second is pending, the
 * child's new call_rcu worker runs it. */
void rcumaps_test_queue_requeuing_callback(int *stage);

/* Tests: `*value`, loaded with sequential consistency. */
static inline int rcumaps_test_load_int(const int *value) { return __atomic_load_n(value, __ATOMIC_SEQ_CST); }
static inline int rcumaps_thread_is_liburcu_worker(void)
{
    return rcumaps_tls.registered == 2 || (rcumaps_tls.registered == 0 && rcumaps_recognise_liburcu_worker());
}

/* Makes sure the calling thread is registered (needed before call_rcu,
 * synchronize, rculfhash updates). */
/* Whether RCUMaps has registered (or adopted) the calling thread with liburcu. */
static inline int rcumaps_is_registered(void) { return rcumaps_tls.registered != 0; }

static inline void rcumaps_ensure_registered(void)
{
    if (__builtin_expect(!rcumaps_tls.registered, 0))
        rcumaps_register_current_thread();
}

/* Out-of-line enter/exit, for C function-pointer tables (providers' client table).
 * rcumaps_epoch_exit refuses an exit with no matching rcumaps_epoch_enter on the calling
 * thread — also inside a section the host entered (a provider callback's): it changes
 * nothing, reports it on stderr (the first 8 times in the process) and counts it
 * (rcumaps_unbalanced_exit_count). */
void rcumaps_epoch_enter(void);
void rcumaps_epoch_exit(void);
unsigned long rcumaps_unbalanced_exit_count(void);

/* Wraps `urcu_memb_synchronize_rcu` (generic `synchronize_rcu`). */
void rcumaps_synchronize(void);
/* Callbacks and driver items that reclamation threads queued while running callbacks,
 * since the process started (Epoch.barrier() goes round again while it grows). */
unsigned long rcumaps_reclamation_requeue_count(void);

/* Whether the liburcu the process runs on may stop its default call_rcu worker at exit
 * (0.14 and later: a library destructor, `urcu_memb_exit`, that runs a grace period and
 * joins the worker when nothing is queued on it): then `exit` waits for every section and
 * for the worker's batch in progress. 0.13 has no such destructor: `exit` waits for nothing
 * of liburcu's. */
int rcumaps_liburcu_joins_worker_at_exit(void);
/* Wraps `urcu_memb_barrier` (generic `rcu_barrier`): one round. */
void rcumaps_barrier(void);
/* Wraps `urcu_memb_call_rcu` (generic `call_rcu`). */
void rcumaps_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head));
/* Retirements made so far by threads with no linked record (an adopted thread after
 * RCUMaps' exit handler), which enqueue inside the fork gate or park; for tests. */
unsigned long rcumaps_unlinked_retirement_count(void);
/* Like rcumaps_call_rcu, but the callback runs on RCUMaps' grace-period driver thread,
 * which starts the next grace period soon after a batch instead of napping 10 ms as
 * liburcu's call_rcu worker does (see shim.c, "Grace-period driver"). For short callbacks
 * whose latency matters; rcumaps_barrier also waits for them. Takes a short mutex. */
void rcumaps_gp_driver_enqueue(struct rcu_head *head, void (*func)(struct rcu_head *head));
/* Non-zero on the grace-period driver thread. */
int rcumaps_thread_is_gp_driver(void);

/* ---------------------------------------------------------------------------
 * Provider callbacks that run under a map's lock
 *
 * A provider callback that runs while its map holds a lock (a bucket lock, an array
 * slot's writer bit) must not write to that map: the write would wait for the lock its
 * own thread holds. The provider layer records, per thread, which maps are inside such a
 * callback, and their write operations refuse to start there (EDEADLK). Eight nested
 * callbacks are recorded; deeper ones are counted but not checked.
 * ------------------------------------------------------------------------- */

#define RCUMAPS_CALLBACK_FRAMES 8

typedef struct rcumaps_callback_frames {
    const void *maps[RCUMAPS_CALLBACK_FRAMES];
    unsigned int depth;
    /* Program-type association callbacks (`RawCustomMap.associate`) the thread is inside,
     * of any map: no lock is held there, but a thread inside one must not wait for
     * another thread's association (that thread may be waiting for this one's). */
    unsigned int associating;
    /* Deletion callbacks of a map's teardown (MAP_CLEANUP) the thread is inside: the map
     * is being destroyed, so the client table's calls that take its handle refuse. */
    unsigned int tearing_down;
} rcumaps_callback_frames_t;

extern __thread rcumaps_callback_frames_t rcumaps_callback_frames __attribute__((tls_model("initial-exec")));

/* The RCUDictionary whose subscript `_modify` access the calling thread is inside (the
 * innermost; possibly stale after an access resumed on another thread), or NULL. A new
 * access made while it is set checks whether the thread holds one of that dictionary's
 * stripes (an overlapping access would wait for it forever) and stops the program with a
 * message if so, as Swift's exclusivity checks stop an overlapping access to a class's
 * property. */
extern __thread const void *rcumaps_modify_holder __attribute__((tls_model("initial-exec")));
static inline const void *rcumaps_modify_holder_get(void) { return rcumaps_modify_holder; }
static inline void rcumaps_modify_holder_set(const void *holder) { rcumaps_modify_holder = holder; }

/* The calling thread starts running a callback while `map` holds a lock. */
static inline void rcumaps_callback_enter(const void *map)
{
    unsigned int depth = rcumaps_callback_frames.depth;
    if (depth < RCUMAPS_CALLBACK_FRAMES) rcumaps_callback_frames.maps[depth] = map;
    rcumaps_callback_frames.depth = depth + 1;
}

/* The callback begun by the matching rcumaps_callback_enter has returned. */
static inline void rcumaps_callback_leave(void)
{
    rcumaps_callback_frames.depth--;
}

/* How many callbacks run under a map's lock the calling thread is inside, of any map. */
static inline unsigned int rcumaps_locked_callback_depth(void) { return rcumaps_callback_frames.depth; }

/* The calling thread starts (enter) or has returned from (leave) a provider's program-type
 * association callback; the depth is how many it is inside, of any map. */
static inline void rcumaps_association_enter(void) { rcumaps_callback_frames.associating++; }
static inline void rcumaps_association_leave(void) { rcumaps_callback_frames.associating--; }
static inline unsigned int rcumaps_association_depth(void) { return rcumaps_callback_frames.associating; }

/* The calling thread starts (enter) or has returned from (leave) a deletion callback of a
 * map's teardown; the depth is how many it is inside. */
static inline void rcumaps_teardown_enter(void) { rcumaps_callback_frames.tearing_down++; }
static inline void rcumaps_teardown_leave(void) { rcumaps_callback_frames.tearing_down--; }
static inline unsigned int rcumaps_teardown_depth(void) { return rcumaps_callback_frames.tearing_down; }

/* Non-zero when the calling thread is inside a callback run under `map`'s lock. */
static inline int rcumaps_callback_holds(const void *map)
{
    unsigned int depth = rcumaps_callback_frames.depth;
    if (__builtin_expect(depth == 0, 1)) return 0;
    if (depth > RCUMAPS_CALLBACK_FRAMES) depth = RCUMAPS_CALLBACK_FRAMES;
    for (unsigned int i = 0; i < depth; i++)
        if (rcumaps_callback_frames.maps[i] == map) return 1;
    return 0;
}

/* ---------------------------------------------------------------------------
 * rculfhash entries
 *
 * An entry is one allocation: the lfht node, then the key (padded to 8 bytes),
 * then the value. The rcu_head used to reclaim it lives in the epoch-memory
 * header in front of the entry (see RCUEpoch/EpochMemory.swift).
 * ------------------------------------------------------------------------- */

typedef struct rcumaps_lfht_entry {
    struct cds_lfht_node node;
    unsigned char data[]; /* key (keyStride bytes), then value */
} rcumaps_lfht_entry_t;

/* The key a lookup matches against: borrowed bytes and their size. */
typedef struct rcumaps_lfht_key {
    const void *bytes;
    size_t size;
} rcumaps_lfht_key_t;

/* Creates a table with the memb flavour. Wraps `cds_lfht_new_flavor`. NULL with errno
 * ENOMEM (no memory, or no address space for the table's reservation), or EDEADLK: a fork
 * is starting and the caller is inside a section or on a reclamation thread, where waiting
 * for the fork could deadlock (other callers wait for it). liburcu still aborts, rather
 * than fail, when its first table cannot start rculfhash's worker thread or when one of
 * its own allocations of the table fails. */
struct cds_lfht *rcumaps_lfht_new(unsigned long init_size, unsigned long max_size);
/* Wraps `cds_lfht_destroy`. Not in a read section, not on a call_rcu thread. */
int rcumaps_lfht_destroy(struct cds_lfht *ht);

/* rculfhash match callbacks: `rcumaps_lfht_match` takes a `const rcumaps_lfht_key_t *`,
 * `rcumaps_lfht_match8` the 8 key bytes themselves (no size to load and test on each
 * node a walk compares). Each acquires the entry for TSan before reading its key. */
int rcumaps_lfht_match(struct cds_lfht_node *node, const void *key);
int rcumaps_lfht_match8(struct cds_lfht_node *node, const void *key);

/* Returns the entry whose key matches, or NULL. Read section required.
 * Wraps `cds_lfht_lookup` + `cds_lfht_iter_get_node`.
 *
 * Static inline, so that Swift compiles it into the caller: at a million entries a lookup
 * waits on two or three cache misses, and the fewer instructions each lookup takes, the
 * further the processor runs ahead into the next one and overlaps its misses with
 * this one's (measured, 2026-12-06: 16 extra instructions made the C rculfhash baseline's
 * one-thread lookups at 1 M entries take a third longer). No TSan acquire here: the node
 * returned is one a match callback above accepted, which acquired it. */
static inline rcumaps_lfht_entry_t *rcumaps_lfht_lookup(struct cds_lfht *ht, unsigned long hash,
                                                        const void *key, size_t key_size)
{
    struct cds_lfht_iter iter;
    if (key_size == 8) {
        cds_lfht_lookup(ht, hash, rcumaps_lfht_match8, key, &iter);
    } else {
        rcumaps_lfht_key_t k = { key, key_size };
        cds_lfht_lookup(ht, hash, rcumaps_lfht_match, &k, &iter);
    }
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&iter);
    return node ? caa_container_of(node, rcumaps_lfht_entry_t, node) : NULL;
}

/* Publishes `entry` if no entry with its key exists; returns the existing
 * entry otherwise (and `entry` was not published). Wraps `cds_lfht_add_unique`. */
rcumaps_lfht_entry_t *rcumaps_lfht_add_unique(struct cds_lfht *ht, unsigned long hash,
                                              size_t key_size, rcumaps_lfht_entry_t *entry);

/* Publishes `entry`, replacing any entry with the same key; returns the
 * replaced entry or NULL. Wraps `cds_lfht_add_replace`. */
rcumaps_lfht_entry_t *rcumaps_lfht_add_replace(struct cds_lfht *ht, unsigned long hash,
                                               size_t key_size, rcumaps_lfht_entry_t *entry);

/* Replaces `old_entry` (which must have been found in this read section)
 * with `new_entry`. Returns 0, or -ENOENT if `old_entry` was removed
 * meanwhile. Wraps `cds_lfht_replace`. */
int rcumaps_lfht_replace(struct cds_lfht *ht, unsigned long hash, size_t key_size,
                         rcumaps_lfht_entry_t *old_entry, rcumaps_lfht_entry_t *new_entry);

/* Removes `entry`. Returns 0, or a negative value if it was already removed.
 * Wraps `cds_lfht_del`. */
int rcumaps_lfht_del(struct cds_lfht *ht, rcumaps_lfht_entry_t *entry);

/* Whether `entry` was removed (deleted or replaced). Read section required.
 * Wraps `cds_lfht_is_node_deleted`. */
int rcumaps_lfht_is_removed(const rcumaps_lfht_entry_t *entry);

/* Iteration in the table's (split-ordered) order. `first` returns NULL on an
 * empty table; `next` returns NULL at the end. Read section required.
 * Wrap `cds_lfht_first` / `cds_lfht_next`. */
rcumaps_lfht_entry_t *rcumaps_lfht_first(struct cds_lfht *ht);
rcumaps_lfht_entry_t *rcumaps_lfht_next(struct cds_lfht *ht, rcumaps_lfht_entry_t *entry);

/* The order key of an entry in iteration order (its bit-reversed hash). */
unsigned long rcumaps_lfht_entry_order(const rcumaps_lfht_entry_t *entry);
/* The bit-reversed form of `hash`, comparable with rcumaps_lfht_entry_order. */
unsigned long rcumaps_lfht_order_of_hash(unsigned long hash);

/* ThreadSanitizer publication edge for memory published through rculfhash
 * (whose stores are invisible to TSan): the publisher releases the address, a reader
 * that found it through rculfhash acquires it. No-ops without TSan. */
void rcumaps_tsan_publish(const void *addr);
void rcumaps_tsan_acquire_node(const void *addr);

/* Bytes the allocator really reserved for `ptr` (glibc `malloc_usable_size`,
 * which Swift's Glibc module does not export). */
static inline size_t rcumaps_malloc_usable_size(void *ptr)
{
    return malloc_usable_size(ptr);
}

/* ---------------------------------------------------------------------------
 * libnuma (degrades to one node when NUMA is unavailable)
 * ------------------------------------------------------------------------- */

/* Number of NUMA nodes (1 when libnuma reports NUMA unavailable). */
int rcumaps_numa_node_count(void);
/* 1 if `node` is one libnuma reports configured (numa_nodes_ptr: the nodes the kernel has
 * online, as Linux's node_online() checks at map creation), else 0. Without NUMA, node 0
 * only. */
int rcumaps_numa_node_is_configured(int node);
/* NUMA node of the CPU the caller runs on (0 when unavailable). */
int rcumaps_numa_current_node(void);
/* CPU the caller currently runs on (0 if unknown). */
int rcumaps_current_cpu(void);
/* Pins the calling thread to `cpu` (sched_setaffinity): 0 on success, else an errno
 * (EINVAL for a CPU the thread may not run on). For tests of per-CPU maps. */
int rcumaps_pin_current_thread(int cpu);
/* CPUs the calling thread may run on (its affinity mask: a container or `taskset` may
 * allow fewer than are online), or 0 if the mask cannot be read. */
int rcumaps_allowed_cpu_count(void);

/* ---------------------------------------------------------------------------
 * Restartable sequences (rseq): a per-CPU add without an atomic instruction
 * ------------------------------------------------------------------------- */

#if defined(__x86_64__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#include <sys/rseq.h>
#define RCUMAPS_HAVE_RSEQ 1
#else
#define RCUMAPS_HAVE_RSEQ 0
#endif

/* Adds `delta` to the 8-byte word at `base + cpu * stride`, where `cpu` is the CPU the
 * calling thread runs on, with a plain (not locked) add, as an eBPF program's `*value +=
 * delta` on a per-CPU map with preemption off: the read of the CPU number and the add are
 * one restartable sequence, which the kernel restarts from the top if the thread is
 * preempted, migrated or signalled before the add, so the add always runs on the CPU whose
 * word it changes and two such adds of one word never overlap. Returns 0 when done; -1
 * when not (rseq not registered for the thread — glibc older than 2.35, disabled with
 * GLIBC_TUNABLES=glibc.pthread.rseq=0, or refused, as under valgrind —, a CPU number not
 * below `cpus`, or another architecture than x86-64): the caller then adds atomically.
 *
 * The word must be 8-byte aligned. A locked (atomic) add to the same word from a thread on
 * another CPU can overlap a plain add here and be lost: every change of such words must
 * go through this function (or accept that, as Linux's programs do with user-space writes).
 * Glibc registers rseq with the signature 0x53053053; the abort handler is preceded by it,
 * inside a ud1 instruction as the kernel's selftests and librseq lay it out. */
static inline __attribute__((always_inline))
int rcumaps_rseq_add_u64(void *base, size_t stride, uint64_t delta, unsigned int cpus)
{
#if RCUMAPS_HAVE_RSEQ
    if (__rseq_size == 0) return -1;
    char *thread_pointer;
    __asm__("movq %%fs:0, %0" : "=r"(thread_pointer));
    struct rseq *area = (struct rseq *)(thread_pointer + __rseq_offset);
    for (;;) {
        __asm__ __volatile__ goto(
            ".pushsection __rseq_cs, \"aw\"\n\t"
            ".balign 32\n\t"
            "3:\n\t"
            ".long 0, 0\n\t"                      /* version, flags */
            ".quad 1f, (2f - 1f), 4f\n\t"         /* start, post-commit offset, abort */
            ".popsection\n\t"
            "leaq 3b(%%rip), %%rax\n\t"
            "movq %%rax, %[cs]\n\t"               /* arm the sequence */
            "1:\n\t"
            "movl %[cpu_id], %%eax\n\t"
            "cmpl %[cpus], %%eax\n\t"             /* also catches -1 / -2 (not registered) */
            "jae %l[outside]\n\t"
            "imulq %[stride], %%rax\n\t"
            "addq %[delta], (%[base], %%rax, 1)\n\t"  /* the commit: one instruction */
            "2:\n\t"
            ".pushsection __rseq_failure, \"ax\"\n\t"
            ".byte 0x0f, 0xb9, 0x3d\n\t"
            ".long 0x53053053\n\t"                /* RSEQ_SIG, just before the abort label */
            "4:\n\t"
            "jmp %l[restart]\n\t"
            ".popsection\n\t"
            :
            : [cs] "m"(area->rseq_cs), [cpu_id] "m"(area->cpu_id), [cpus] "r"(cpus),
              [stride] "r"(stride), [delta] "r"(delta), [base] "r"(base)
            : "memory", "cc", "rax"
            : restart, outside);
        return 0;
    restart:;
    }
outside:
    return -1;
#else
    (void)base;
    (void)stride;
    (void)delta;
    (void)cpus;
    return -1;
#endif
}

/* Whether rcumaps_rseq_add_u64 can run its restartable sequence on the calling thread
 * (rseq registered, a CPU number known). For tests and diagnostics. */
static inline int rcumaps_rseq_available(void)
{
#if RCUMAPS_HAVE_RSEQ
    if (__rseq_size == 0) return 0;
    char *thread_pointer;
    __asm__("movq %%fs:0, %0" : "=r"(thread_pointer));
    const struct rseq *area = (const struct rseq *)(thread_pointer + __rseq_offset);
    return (int)__atomic_load_n(&area->cpu_id, __ATOMIC_RELAXED) >= 0;
#else
    return 0;
#endif
}

/* Slow path of rcumaps_thread_stripe: numbers the calling thread (round-robin over the
 * process's threads, in the order they first ask) and records it. */
unsigned int rcumaps_assign_thread_stripe(void);

/* A number fixed for the calling thread's life, for per-thread striped counters: threads
 * that ask get 0, 1, 2, ... in turn, so a few writer threads use distinct stripes without a
 * system call per operation (sched_getcpu costs tens of instructions). */
static inline __attribute__((always_inline)) unsigned int rcumaps_thread_stripe(void)
{
    unsigned int stripe = rcumaps_tls.stripe;
    return stripe != 0 ? stripe - 1 : rcumaps_assign_thread_stripe();
}
/* Records that the calling thread took `table`'s overflow growth past its bound while
 * reclaim generation `pending` had not completed (the bucket hash's growth throttle: only
 * the writer that grew the table waits). */
static inline __attribute__((always_inline)) void rcumaps_note_growth_tripped(unsigned long long table,
                                                                             unsigned long long pending)
{
    rcumaps_tls.growth_table = table;
    rcumaps_tls.growth_generation = pending;
}

/* Whether the calling thread took `table`'s growth past its bound since it last waited, and
 * the generation pending then has not completed (`completed` is the table's count of
 * completed generations); clears a record of `table` either way. (A record kept after its
 * generation completed made the thread wait for growth other threads made later: found by
 * review, 2026-12-06.) */
static inline __attribute__((always_inline)) int rcumaps_take_growth_tripped(unsigned long long table,
                                                                            unsigned long long completed)
{
    if (rcumaps_tls.growth_table != table) return 0;
    rcumaps_tls.growth_table = 0;
    return rcumaps_tls.growth_generation > completed;
}

/* Zeroed, page-aligned memory that prefers `node` (MPOL_PREFERRED: its pages go to other
 * nodes when `node` is full, as Linux's map memory), or NULL (no NUMA support, or no
 * memory). Free with rcumaps_numa_free. */
void *rcumaps_numa_alloc_onnode(size_t size, int node);
void rcumaps_numa_free(void *ptr, size_t size);
/* NUMA node of `cpu` (0 when NUMA is unavailable or the CPU's node is unknown). */
int rcumaps_numa_node_of_cpu(int cpu);
/* Asks the kernel to put the pages of [addr, addr + size) (page-aligned, not yet touched) on
 * `node` when they are first touched, or on another node when `node` is full (mbind,
 * MPOL_PREFERRED); for a node without memory, on the node with memory nearest it (as Linux's
 * map memory). 0 on success, else an errno (ENOSYS without NUMA; EPERM where a seccomp
 * profile refuses mbind). The memory is usable either way. */
int rcumaps_numa_prefer_node(void *addr, size_t size, int node);
/* The node nearest `node` that has memory, among `count` nodes: `node` itself if it has
 * memory, else the one at the least distance (`distances`: count × count, row-major, as
 * numa_distance; 0 or less is unknown and skipped), the lowest-numbered on a tie; -1 if
 * none. Pure, so tests can give it a machine this one is not. */
int rcumaps_numa_nearest_node_with_memory(int node, int count, const unsigned char *has_memory,
                                          const int *distances);
/* This machine's node with memory nearest `node` (the function above on libnuma's node sizes
 * and distances): the node rcumaps_numa_prefer_node(…, node) prefers; -1 when unknown. */
int rcumaps_numa_nearest_with_memory(int node);
/* NUMA node of the page holding `addr` (get_mempolicy MPOL_F_NODE | MPOL_F_ADDR; a page not
 * yet touched is allocated by the query), or -1 when unavailable. For tests. */
int rcumaps_numa_node_of_address(void *addr);
/* The node of the preferred policy (rcumaps_numa_prefer_node) covering `addr`; -1 when its
 * policy is another one, -2 when the policy cannot be read. For tests. */
int rcumaps_numa_preferred_node_of_address(void *addr);

/* Asks the kernel to back the 2 MiB-aligned part of [addr, addr + size) with transparent
 * huge pages (madvise MADV_HUGEPAGE), before it is first touched: a large table then costs
 * far fewer TLB misses. A no-op for blocks under 4 MiB or where THP is unavailable. The
 * range must be a mapping of the caller's own (an EpochMemory cache-aligned block of 4 MiB
 * or more, rcumaps_map_pages, a NUMA block): the advice outlives a free, and on malloc's
 * heap it stayed for whatever the heap handed out there next. */
void rcumaps_advise_huge_pages(void *addr, size_t size);

/* ---------------------------------------------------------------------------
 * The bucket hash's tag match
 * ------------------------------------------------------------------------- */

#if defined(__SSE2__)
/* (Vector extensions and the builtin, not <emmintrin.h>: this header is imported into Swift.) */
typedef char rcumaps_byte_vector __attribute__((vector_size(16)));
typedef long long rcumaps_word_vector __attribute__((vector_size(16)));
/* One bit per byte of `control` (bit i for byte i, bits 0..7 only) that equals the same
 * byte of `pattern`, the 8-byte tag pattern of a lookup: one byte compare of all eight at
 * once (pcmpeqb, pmovmskb), where the portable zero-byte test takes about twice the
 * instructions. The pattern fills both halves of the vector and the control word only the
 * low one: every pattern byte has its high bit set, so the zeroed upper half never
 * matches. Inlined into Swift (x86-64 only; elsewhere BucketTable tests the bytes itself). */
static inline __attribute__((always_inline)) unsigned int rcumaps_bucket_tag_matches(uint64_t control, uint64_t pattern)
{
    rcumaps_word_vector tags = {(long long)control, 0};
    rcumaps_word_vector wanted = {(long long)pattern, (long long)pattern};
    rcumaps_byte_vector equal = (rcumaps_byte_vector)tags == (rcumaps_byte_vector)wanted;
    return (unsigned int)__builtin_ia32_pmovmskb128(equal);
}
#endif

/* ---------------------------------------------------------------------------
 * Futex and spin hints, for the bucket hash's 4-byte bucket locks
 * ------------------------------------------------------------------------- */

/* Sleeps while the 32-bit word at `addr` equals `expected` (FUTEX_WAIT_PRIVATE); may
 * return early (a wake, a signal, or the word changed): callers re-check. */
void rcumaps_futex_wait(void *addr, uint32_t expected);
/* Wakes up to `count` threads sleeping on `addr` (FUTEX_WAKE_PRIVATE). */
void rcumaps_futex_wake(void *addr, int count);

/* A spin-wait hint to the CPU (x86 `pause`, Arm `yield`). */
static inline __attribute__((always_inline)) void rcumaps_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Starts fetching the cache line at `addr` for writing (a hint: no effect on memory, and
 * none on correctness). A writer calls it as soon as it knows which line it will lock, so
 * that the miss overlaps the work before the lock. */
static inline __attribute__((always_inline)) void rcumaps_prefetch_for_write(const void *addr)
{
    __builtin_prefetch(addr, 1, 3);
}

/* ---------------------------------------------------------------------------
 * LPM trie: the readers' walk (RCUBaseMaps' RawLPMTrieMap; layout in LPMNodes.swift)
 * ------------------------------------------------------------------------- */

/* The published node layout both languages read. Every node block is 64-byte aligned.
 * Bytes 64..79 of every node: depth (uint16, bit 15 set for a direct-indexed node), child
 * count, run count, own count (uint16 each), then (compressed nodes) the child and run
 * bitmaps' set bits before each of their 4 words (uint8 each). Byte 80: the path, padded
 * to 8. A compressed node has its child and run bitmaps in bytes 0..63, then after the
 * path its child words, run entries and own entries; a direct-indexed node has, at the
 * path's end rounded up to 16, 256 slots of {child word, best entry} (16 bytes each), then
 * its own entries. A child word is the child block's address with, in its low 6 bits:
 * bit 0, the child is direct-indexed; bits 1...5, min(child depth - parent depth - 1, 31)
 * (31: read the depth from the child). 0: no child. */
#define RCUMAPS_LPM_HEADER_SIZE 80
#define RCUMAPS_LPM_DIRECT_FLAG 0x8000
#define RCUMAPS_LPM_TAG_MASK 63
#define RCUMAPS_LPM_FAR_DELTA 31

/* The entry of the longest prefix stored in the trie at `root` (a direct-indexed node at
 * depth 0) that matches the first `length` bits of `data` (length <= 8 x the data size), or
 * NULL. Call inside an epoch read section; the entry stays valid until it ends. Lock-free:
 * loads only, child words with acquire ordering (writers store them with release). Uses
 * the POPCNT instruction where the CPU has it (checked once, at load time). */
const void *rcumaps_lpm_longest_match(const void *root, const uint8_t *data, size_t length);

#ifdef __cplusplus
}
#endif

#endif /* CRCUMAPS_SHIM_H */
