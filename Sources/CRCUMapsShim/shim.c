/*
 * CRCUMapsShim implementation: thread registration, rculfhash wrappers,
 * ThreadSanitizer annotations, libnuma helpers.
 */
#define _GNU_SOURCE
#include "CRCUMapsShim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <numa.h>
#include <numaif.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/mman.h>
#include <dlfcn.h>
#include <urcu/list.h>

/* ---------------------------------------------------------------------------
 * AddressSanitizer: whether this build has it (recycled blocks would hide their
 * use after a free from it, so EpochRetireList does not recycle under it).
 * ------------------------------------------------------------------------- */
#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define RCUMAPS_ASAN 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#  define RCUMAPS_ASAN 1
#endif
#ifdef RCUMAPS_ASAN
const int rcumaps_asan_enabled = 1;
#else
const int rcumaps_asan_enabled = 0;
#endif

/* ---------------------------------------------------------------------------
 * ThreadSanitizer
 * ------------------------------------------------------------------------- */
#if defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define RCUMAPS_TSAN 1
#  endif
#endif
#if defined(__SANITIZE_THREAD__)
#  define RCUMAPS_TSAN 1
#endif

#ifdef RCUMAPS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* One sync object stands for "a grace period has elapsed": every reader
 * releases it when leaving a section, every reclaim callback acquires it. */
static char rcumaps_tsan_grace_sync;
const int rcumaps_tsan_enabled = 1;
void rcumaps_tsan_reader_exit(void) { __tsan_release(&rcumaps_tsan_grace_sync); }
void rcumaps_tsan_after_grace_period(void) { __tsan_acquire(&rcumaps_tsan_grace_sync); }
void rcumaps_tsan_publish(const void *addr) { __tsan_release((void *)addr); }
void rcumaps_tsan_acquire_node(const void *addr) { __tsan_acquire((void *)addr); }
#  define RCUMAPS_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
const int rcumaps_tsan_enabled = 0;
void rcumaps_tsan_reader_exit(void) {}
void rcumaps_tsan_after_grace_period(void) {}
void rcumaps_tsan_publish(const void *addr) { (void)addr; }
void rcumaps_tsan_acquire_node(const void *addr) { (void)addr; }
#  define RCUMAPS_TSAN_ACQUIRE(addr) ((void)0)
#endif

/* ---------------------------------------------------------------------------
 * Thread registration
 * ------------------------------------------------------------------------- */

/* `slow_read` starts at 1: a thread's first section takes the slow path, which registers
 * it and clears the flag where the fast path applies. */
__thread rcumaps_thread_state_t rcumaps_tls __attribute__((tls_model("initial-exec"))) = { .slow_read = 1 };
/* CRCUMapsInlineReadSide views this object with the same first fields. */
_Static_assert(offsetof(rcumaps_thread_state_t, nesting) == 0 && offsetof(rcumaps_thread_state_t, slow_read) == 4
                   && offsetof(rcumaps_thread_state_t, read_gate) == 0 && offsetof(rcumaps_thread_state_t, registered) == 8
                   && offsetof(rcumaps_thread_state_t, stripe) == 12,
               "rcumaps_thread_state_t: CRCUMapsInlineReadSide.h's view must match");
__thread rcumaps_callback_frames_t rcumaps_callback_frames __attribute__((tls_model("initial-exec")));
__thread const void *rcumaps_modify_holder __attribute__((tls_model("initial-exec")));

/* registered == 1: we registered this thread and must unregister it at exit.
 * registered == 2: liburcu registered it (a call_rcu worker, marked by our reclaim
 *                  callback); we never unregister it.
 * registered == 3: the application registered it (Epoch.adoptRegisteredThread); we never
 *                  unregister it. */
enum {
    RCUMAPS_REGISTERED_BY_US = 1,
    RCUMAPS_REGISTERED_BY_LIBURCU = 2,
    RCUMAPS_REGISTERED_BY_APP = 3,
};

static pthread_key_t rcumaps_exit_key;
static pthread_once_t rcumaps_once = PTHREAD_ONCE_INIT;

/* liburcu-memb's per-thread reader record (`struct urcu_reader` in
 * urcu/static/urcu-common.h, the same in liburcu 0.12 to 0.15), mirrored here for its
 * data-structure layout only (LGPL-2.1 section 5): a forked child must unlink the records
 * of the threads that did not follow it into the child from liburcu's reader registry
 * (see "fork" below). The layout is checked against the live record at every
 * registration; if it ever differs, forked children refuse to use RCU instead of
 * corrupting the registry. */
struct rcumaps_urcu_reader_layout {
    unsigned long ctr;
    char need_mb;
    struct cds_list_head node __attribute__((aligned(CAA_CACHE_LINE_SIZE)));
    pthread_t tid;
    unsigned int registered : 1;
};
extern __thread struct rcumaps_urcu_reader_layout urcu_memb_reader;

/* One per thread that we registered or that was adopted, linked into rcumaps_records:
 * the address of the thread's node in liburcu's registry (NULL for an adopted thread,
 * whose registration is not ours), its call_rcu flag, and a registration number (for
 * tests). Lives in the thread's TLS; linked and unlinked only with the registration gate
 * entered and rcumaps_records_mutex held (or in a fork child's handler, single-threaded). */
typedef struct rcumaps_thread_record {
    struct rcumaps_thread_record *prev, *next; /* also written by neighbours' (un)linking */
    struct cds_list_head *reader_node;
    unsigned int *enqueuing;
    unsigned long long id;
    int linked; /* written by the owning thread only */
} rcumaps_thread_record_t;

static __thread rcumaps_thread_record_t rcumaps_record;
/* Non-zero while the thread is inside urcu_memb_call_rcu: see rcumaps_call_rcu. */
static __thread unsigned int rcumaps_enqueuing __attribute__((tls_model("initial-exec")));
static rcumaps_thread_record_t rcumaps_records = { &rcumaps_records, &rcumaps_records, NULL, NULL, 0, 0 };
static pthread_mutex_t rcumaps_records_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long rcumaps_last_registration_id;      /* under rcumaps_records_mutex */
static int rcumaps_reader_layout_ok = 1;                       /* cleared if the check fails */

/* Why RCUMaps cannot be used in this process (a child forked at a moment when its RCU
 * state could not be made consistent), or 0. */
enum {
    RCUMAPS_CHILD_OK = 0,
    RCUMAPS_CHILD_FORKED_IN_SECTION = 1,
    RCUMAPS_CHILD_FORKED_ON_RECLAMATION_THREAD = 2,
    RCUMAPS_CHILD_UNKNOWN_LIBURCU_LAYOUT = 3,
};
int rcumaps_child_unusable; /* (read inline by rcumaps_check_retirement_allowed) */

static void rcumaps_require_usable_process(const char *what)
{
    if (__builtin_expect(rcumaps_child_unusable == RCUMAPS_CHILD_OK, 1)) return;
    const char *why =
        rcumaps_child_unusable == RCUMAPS_CHILD_FORKED_IN_SECTION
            ? "fork() was called inside an epoch section"
        : rcumaps_child_unusable == RCUMAPS_CHILD_FORKED_ON_RECLAMATION_THREAD
            ? "fork() was called on the reclamation thread"
            : "liburcu's reader layout was not recognised";
    fprintf(stderr, "rcumaps: %s in a forked child whose RCU state is unusable (%s); "
                    "such a child may only read maps, then exec or _exit\n", what, why);
    abort();
}

/* The registration gate: every registration, unregistration, grace period and barrier that
 * RCUMaps starts runs inside it (`users` counts them); the fork handler closes it and waits
 * until none is in flight, so that the child never inherits liburcu's registry lock, its
 * grace-period lock or its queue of grace-period waiters from a thread that is not there.
 * Only threads outside any read-side critical section — an epoch section, or a liburcu read
 * lock the thread took itself — may wait at it (a fork waits for grace periods, which wait
 * for those): the paths such threads reach try to enter (EDEADLK) or stop with a message.
 * Nor may a thread wait at it holding a lock that a reclamation callback takes: a fork waits
 * for the callbacks in flight while it holds the gate closed (documented in Epoch.swift).
 * A Dekker pair of sequentially consistent atomics: an entering thread increments `users`
 * then looks at `closed`, the forker sets `closed` then looks at `users`. */
static unsigned int rcumaps_gate_users;
static unsigned int rcumaps_gate_closed;

void rcumaps_futex_wait(void *addr, uint32_t expected);
void rcumaps_futex_wake(void *addr, int count);

static void rcumaps_gate_leave(void)
{
    if (__atomic_sub_fetch(&rcumaps_gate_users, 1, __ATOMIC_SEQ_CST) == 0
        && __atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST))
        rcumaps_futex_wake(&rcumaps_gate_users, 1);
}

static void rcumaps_gate_enter(void)
{
    for (;;) {
        while (__atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST))
            rcumaps_futex_wait(&rcumaps_gate_closed, 1);
        __atomic_add_fetch(&rcumaps_gate_users, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST)) return;
        rcumaps_gate_leave(); /* a fork is starting: let it go first */
    }
}

/* Enters the gate if it is open, without waiting: 1 if entered, 0 if a fork is starting. */
static int rcumaps_gate_try_enter(void)
{
    if (__atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST)) return 0;
    __atomic_add_fetch(&rcumaps_gate_users, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST)) return 1;
    rcumaps_gate_leave(); /* a fork is starting: let it go first */
    return 0;
}

/* The forker: no new entry; wait for those in flight. */
static void rcumaps_gate_close(void)
{
    __atomic_store_n(&rcumaps_gate_closed, 1, __ATOMIC_SEQ_CST);
    unsigned int users;
    while ((users = __atomic_load_n(&rcumaps_gate_users, __ATOMIC_SEQ_CST)) != 0)
        rcumaps_futex_wait(&rcumaps_gate_users, users);
}

static void rcumaps_gate_open(void)
{
    __atomic_store_n(&rcumaps_gate_closed, 0, __ATOMIC_SEQ_CST);
    rcumaps_futex_wake(&rcumaps_gate_closed, 0x7fffffff);
}

/* How many threads exited inside a section (all threads). */
static unsigned long rcumaps_exits_inside_section;

static void rcumaps_unlink_record(void)
{
    pthread_mutex_lock(&rcumaps_records_mutex);
    rcumaps_record.prev->next = rcumaps_record.next;
    rcumaps_record.next->prev = rcumaps_record.prev;
    rcumaps_record.prev = rcumaps_record.next = NULL;
    rcumaps_record.reader_node = NULL;
    pthread_mutex_unlock(&rcumaps_records_mutex);
    rcumaps_record.linked = 0;
}

static void rcumaps_link_record(struct cds_list_head *reader_node)
{
    pthread_mutex_lock(&rcumaps_records_mutex);
    rcumaps_record.reader_node = reader_node;
    rcumaps_record.enqueuing = &rcumaps_enqueuing;
    rcumaps_record.id = ++rcumaps_last_registration_id;
    rcumaps_record.next = &rcumaps_records;
    rcumaps_record.prev = rcumaps_records.prev;
    rcumaps_records.prev->next = &rcumaps_record;
    rcumaps_records.prev = &rcumaps_record;
    pthread_mutex_unlock(&rcumaps_records_mutex);
    rcumaps_record.linked = 1;
}

/* CRCUMapsInlineReadSide's, when the InlineReadSide trait links it in (weak: absent
 * without the trait, where liburcu's own read unlock wakes grace periods at every exit). */
extern void rcumaps_inline_wake_up_gp_always(void) __attribute__((weak));

/* Sections this thread entered through the client table's epoch_enter and has not left:
 * the provider's own, counted apart from the thread's whole depth. A provider callback
 * already runs inside the host's section, so the whole depth cannot tell a provider's
 * stray exit from a balanced one there. */
static __thread unsigned int rcumaps_client_epoch_depth;

/* Runs when a thread that we registered (or adopted) exits: the pthread key destructor.
 * If a later destructor of another library enters a section again, the thread is
 * registered anew and the key re-armed, so this runs again in the next round
 * (glibc runs PTHREAD_DESTRUCTOR_ITERATIONS = 4 rounds). */
static void rcumaps_thread_exit(void *unused)
{
    (void)unused;
    unsigned int registered = rcumaps_tls.registered;
    int ours = registered == RCUMAPS_REGISTERED_BY_US;
    if (!ours && !(registered == RCUMAPS_REGISTERED_BY_APP && rcumaps_record.linked)) return;
    if (rcumaps_tls.nesting != 0) {
        /* The thread returned (or called pthread_exit) inside a section: a bug of its code,
         * but the section cannot outlive the thread. Leave it, so that liburcu never sees a
         * registered reader unregister inside a read-side critical section (and so that this
         * thread may wait at the gate below), then unregister as usual; grace periods stop
         * waiting for it either way. */
        unsigned long seen = __atomic_fetch_add(&rcumaps_exits_inside_section, 1, __ATOMIC_RELAXED);
        if (seen < 8)
            fprintf(stderr, "rcumaps: a thread exited inside an epoch section (depth %u): "
                            "the section was ended for it%s\n",
                    rcumaps_tls.nesting, seen == 7 ? "; further reports suppressed" : "");
        rcumaps_tls.nesting = 0;
        /* And the counts of the sections ended here that `Epoch.exit()` and the client
         * table's epoch_exit may end: left as they were, a later destructor on this thread
         * could drop a section of its own `withSection` (or a host's around a callback)
         * with a stray exit (found by review, 2026-12-06, twenty-seventh session). */
        rcumaps_tls.unscoped = 0;
        rcumaps_client_epoch_depth = 0;
        rcumaps_tsan_reader_exit();
        urcu_memb_read_unlock();
    }
    /* A thread we registered that exits inside liburcu read locks it took itself: end them
     * too, before the gate. A fork closes the gate while it waits for grace periods that
     * wait for those read locks (found by review, 2026-12-05, nineteenth session); liburcu's
     * unregistration below would drop them anyway. At most 1024: a nesting count that an
     * unbalanced direct unlock wrapped around would take billions. (An adopted thread's
     * read locks are the application's, as is its registration.) */
    if (ours) for (int left = 1024; left > 0 && urcu_memb_read_ongoing(); left--) urcu_memb_read_unlock();
    if (ours) {
        rcumaps_tls.registered = 0;
        rcumaps_tls.slow_read = 1;
    }
    /* A forked child that cannot use RCU must not touch liburcu's registry either. */
    if (rcumaps_child_unusable != RCUMAPS_CHILD_OK) return;
    rcumaps_gate_enter();
    rcumaps_unlink_record();
    /* An adopted thread's registration is the application's: only its record goes. */
    if (ours) urcu_memb_unregister_thread();
    rcumaps_gate_leave();
    /* A grace period may be asleep waiting for this thread (one that held a liburcu read
     * lock of its own to the end); it rescans readers only when woken. With the inlined
     * read side (which wakes it only at the end of a section it waits for), wake it. */
    if (ours && rcumaps_inline_wake_up_gp_always) rcumaps_inline_wake_up_gp_always();
}

static void rcumaps_fork_prepare(void);
static void rcumaps_fork_parent(void);
static void rcumaps_fork_child(void);

static void rcumaps_init_once(void)
{
    int err = pthread_key_create(&rcumaps_exit_key, rcumaps_thread_exit);
    if (err != 0) abort(); /* cannot guarantee unregistration: refuse to go on */
    err = pthread_atfork(rcumaps_fork_prepare, rcumaps_fork_parent, rcumaps_fork_child);
    if (err != 0) abort(); /* a forked child would corrupt liburcu's registry */
}

int rcumaps_inside_any_read_lock(void)
{
    return rcumaps_tls.nesting != 0 || urcu_memb_read_ongoing();
}

/* Set when Epoch.releaseAdoptedThread() forgets the thread: until the application
 * unregisters it, liburcu still holds it, and a section would find it registered by
 * other code (rcumaps_register_current_thread says which mistake it is). */
static __thread unsigned char rcumaps_released_while_registered;

/* liburcu's own call_rcu worker: liburcu registers it and sets its thread's call_rcu data
 * right after (`call_rcu_thread`). It was recognised only once one of our reclaim callbacks
 * had run on it (rcumaps_mark_thread_registered): an application's own call_rcu callback
 * that used RCUMaps there first stopped with "already registered by other code", and the
 * adoption that message advised made the worker an application thread for good — its
 * barrier requeues uncounted, its throttle sleeping, its fork gate deadlocking (found by
 * review, 2026-12-06, twenty-third session). Marks such a thread and answers 1; 0 for any
 * other thread not yet marked. The call_rcu data's own worker thread must be this one: an
 * application thread that set call_rcu data of its own (`set_thread_call_rcu_data`) is
 * not a worker (it read as one, and was refused adoption: found by review of the fix). */
int rcumaps_recognise_liburcu_worker(void)
{
    if (rcumaps_tls.registered) return rcumaps_tls.registered == RCUMAPS_REGISTERED_BY_LIBURCU;
    if (!(urcu_memb_reader.registered && pthread_equal(urcu_memb_reader.tid, pthread_self()))) return 0;
    struct call_rcu_data *data = urcu_memb_get_thread_call_rcu_data();
    if (data == NULL || !pthread_equal(urcu_memb_get_call_rcu_thread(data), pthread_self())) return 0;
    rcumaps_tls.registered = RCUMAPS_REGISTERED_BY_LIBURCU;
    return 1;
}

void rcumaps_register_current_thread(void)
{
    if (rcumaps_tls.registered) return;
    if (rcumaps_recognise_liburcu_worker()) return;
    rcumaps_require_usable_process("a thread registration");
    /* A thread other code registered with liburcu (and did not hand to us with
     * rcumaps_adopt_registered_thread): liburcu cannot register it twice — its assertion
     * aborts without a word, and a build without assertions links the record into the
     * registry twice. Say what to do instead. (Both fields must match: liburcu clears
     * `registered` when it unregisters a thread, and a record laid out otherwise than the
     * mirror would not hold this thread's id where `tid` is.) Found by review, 2026-12-05. */
    if (urcu_memb_reader.registered && pthread_equal(urcu_memb_reader.tid, pthread_self())) {
        if (rcumaps_released_while_registered)
            fprintf(stderr, "rcumaps: an epoch section or map operation on a thread released by "
                            "Epoch.releaseAdoptedThread() (C: rcumaps_release_adopted_thread()) that is registered "
                            "with liburcu-memb (still, or again): adopt it again with Epoch.adoptRegisteredThread() "
                            "(C: rcumaps_adopt_registered_thread()), or unregister it first\n");
        else
            fprintf(stderr, "rcumaps: this thread is already registered with liburcu-memb by other code; call "
                            "Epoch.adoptRegisteredThread() (C: rcumaps_adopt_registered_thread()) on it before its "
                            "first epoch section or map operation\n");
        abort();
    }
    pthread_once(&rcumaps_once, rcumaps_init_once);
    rcumaps_gate_enter();
    urcu_memb_register_thread();
    struct rcumaps_urcu_reader_layout *reader = &urcu_memb_reader;
    if (!(reader->registered == 1 && pthread_equal(reader->tid, pthread_self())))
        __atomic_store_n(&rcumaps_reader_layout_ok, 0, __ATOMIC_RELAXED);
    rcumaps_link_record(&reader->node);
    rcumaps_gate_leave();
    rcumaps_tls.registered = RCUMAPS_REGISTERED_BY_US;
    rcumaps_released_while_registered = 0;
    /* Any non-NULL value makes the destructor run at thread exit. */
    if (pthread_setspecific(rcumaps_exit_key, (void *)1) != 0) abort();
}

void rcumaps_mark_thread_registered(void)
{
    if (!rcumaps_tls.registered) rcumaps_tls.registered = RCUMAPS_REGISTERED_BY_LIBURCU;
}

void rcumaps_adopt_registered_thread(void)
{
    if (rcumaps_tls.registered) return;
    /* liburcu's worker stays liburcu's: adopting it made it an application thread. */
    if (rcumaps_recognise_liburcu_worker()) return;
    rcumaps_require_usable_process("a thread adoption");
    /* Adopting a thread liburcu does not know would leave every section of it unprotected:
     * its read locks mark a reader that grace periods never scan, so memory read inside
     * them could be freed under it (found by review, 2026-12-05, nineteenth session). */
    if (!(urcu_memb_reader.registered && pthread_equal(urcu_memb_reader.tid, pthread_self()))) {
        fprintf(stderr, "rcumaps: Epoch.adoptRegisteredThread() (C: rcumaps_adopt_registered_thread()) on a "
                        "thread that is not registered with liburcu-memb: call urcu_memb_register_thread() "
                        "first, or do not adopt the thread (RCUMaps registers its threads itself)\n");
        abort();
    }
    /* The adoption waits at the fork gate, which a fork closes while it waits for grace
     * periods that wait for this read lock (found by review, 2026-12-05, nineteenth
     * session). */
    if (urcu_memb_read_ongoing()) {
        fprintf(stderr, "rcumaps: Epoch.adoptRegisteredThread() (C: rcumaps_adopt_registered_thread()) inside a "
                        "liburcu read lock: adopt the thread outside its read-side critical sections\n");
        abort();
    }
    pthread_once(&rcumaps_once, rcumaps_init_once);
    /* A record (without a registry node: the registration is not ours) for its call_rcu
     * flag, forgotten when the thread exits. */
    rcumaps_gate_enter();
    rcumaps_link_record(NULL);
    rcumaps_gate_leave();
    rcumaps_tls.registered = RCUMAPS_REGISTERED_BY_APP;
    rcumaps_released_while_registered = 0;
    if (pthread_setspecific(rcumaps_exit_key, (void *)1) != 0) abort();
}

void rcumaps_release_adopted_thread(void)
{
    if (rcumaps_tls.registered != RCUMAPS_REGISTERED_BY_APP) return;
    if (rcumaps_tls.nesting != 0 || urcu_memb_read_ongoing()) {
        /* (A direct read lock too: the release waits at the fork gate, which a fork closes
         * while it waits for grace periods that wait for that read lock.) */
        fprintf(stderr, "rcumaps: Epoch.releaseAdoptedThread() inside an epoch section or a liburcu read lock\n");
        abort();
    }
    /* Linked unless the thread-exit handler unlinked it already: the application may
     * release the thread from a key destructor of its own that runs after RCUMaps' (a key
     * created later runs later), and unlinking twice followed a NULL link (found by review,
     * 2026-12-05). */
    if (rcumaps_child_unusable == RCUMAPS_CHILD_OK && rcumaps_record.linked) {
        rcumaps_gate_enter();
        rcumaps_unlink_record();
        rcumaps_gate_leave();
    }
    /* Without these, the read side's fast path went on writing the reader counter of a
     * thread the application then unregistered: grace periods no longer waited for its
     * sections (found by review). */
    rcumaps_tls.slow_read = 1;
    rcumaps_tls.registered = 0;
    rcumaps_released_while_registered = 1;
}

unsigned long long rcumaps_thread_registration_id(void)
{
    return rcumaps_record.linked ? rcumaps_record.id : 0;
}

int rcumaps_registration_is_live(unsigned long long id)
{
    int live = 0;
    if (id == 0) return 0;
    rcumaps_gate_enter();
    pthread_mutex_lock(&rcumaps_records_mutex);
    for (rcumaps_thread_record_t *r = rcumaps_records.next; r != &rcumaps_records; r = r->next)
        if (r->id == id) { live = 1; break; }
    pthread_mutex_unlock(&rcumaps_records_mutex);
    rcumaps_gate_leave();
    return live;
}

unsigned long rcumaps_thread_exits_inside_section_count(void)
{
    return __atomic_load_n(&rcumaps_exits_inside_section, __ATOMIC_RELAXED);
}


void rcumaps_epoch_enter(void)
{
    rcumaps_read_lock();
    rcumaps_client_epoch_depth++;
}

/* How many unbalanced epoch_exit calls were refused (all threads). */
static unsigned long rcumaps_unbalanced_exits;

void rcumaps_epoch_exit(void)
{
    /* An exit with no matching enter would end a section someone else entered (the host's,
     * around a callback), or wrap the nesting counter to UINT_MAX: either way memory could
     * be freed under code that believes itself protected. Refuse it: the thread's state
     * stays as it was. */
    if (__builtin_expect(rcumaps_client_epoch_depth == 0 || rcumaps_tls.nesting == 0, 0)) {
        unsigned long seen = __atomic_fetch_add(&rcumaps_unbalanced_exits, 1, __ATOMIC_RELAXED);
        if (seen < 8)
            fprintf(stderr, "rcumaps: epoch_exit() without a matching epoch_enter() on this thread: "
                            "ignored (a provider bug)%s\n",
                    seen == 7 ? "; further reports suppressed" : "");
        return;
    }
    rcumaps_client_epoch_depth--;
    rcumaps_read_unlock();
}

unsigned long rcumaps_unbalanced_exit_count(void)
{
    return __atomic_load_n(&rcumaps_unbalanced_exits, __ATOMIC_RELAXED);
}

void rcumaps_synchronize(void)
{
    rcumaps_require_usable_process("Epoch.synchronize()");
    rcumaps_ensure_registered();
    /* The reclamation thread (a work item waiting for a grace period) bypasses the gate:
     * the fork handler pauses it between batches of callbacks, so it is never inside a
     * grace period at a fork, and it must not wait for a gate the forker holds while the
     * forker waits for it to pause. */
    if (rcumaps_tls.registered == RCUMAPS_REGISTERED_BY_LIBURCU) {
        urcu_memb_synchronize_rcu();
    } else {
        rcumaps_gate_enter();
        urcu_memb_synchronize_rcu();
        rcumaps_gate_leave();
    }
    /* TSan: every reader's exit before this grace period happens before what the caller
     * frees after it (as for the reclamation thread's callbacks). */
    rcumaps_tsan_after_grace_period();
}

/* Callbacks queued while a fork was in progress (see rcumaps_enqueue), linked through
 * their rcu_head; queued for real once the fork is over. A push is one compare-and-swap,
 * so a fork never finds the stack half-changed. */
static struct rcu_head *rcumaps_parked;

static void rcumaps_unpark_all(void);
static void rcumaps_unpark_counted(void);
static unsigned long rcumaps_unparking; /* (described below) */

/* liburcu's queue is wait-free: an enqueue is an exchange of the tail, then a store that
 * links the old tail to the new node. A fork between the two would hand the child a cut
 * queue, on which its reclamation thread would wait forever. So the fork handler waits
 * until no thread is inside an enqueue (a Dekker pair: this thread's `rcumaps_enqueuing`
 * flag against the gate's `closed` flag), and a thread that finds a fork in progress parks
 * its callback instead of waiting (it may be inside a section that the fork waits for).
 * The fork handlers queue the parked callbacks; a callback parked as the fork ends is
 * queued by whichever of its parker and the forker sees the other's store. */
static void rcumaps_park(struct rcu_head *head, void (*func)(struct rcu_head *head));
static void rcumaps_queue_parked(void);

static void rcumaps_enqueue(struct rcu_head *head, void (*func)(struct rcu_head *head))
{
    __atomic_store_n(&rcumaps_enqueuing, 1, __ATOMIC_SEQ_CST);
    if (__builtin_expect(__atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST) == 0, 1)) {
        urcu_memb_call_rcu(head, func);
        __atomic_store_n(&rcumaps_enqueuing, 0, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&rcumaps_enqueuing, 0, __ATOMIC_RELEASE);
    rcumaps_park(head, func);
}

/* Parks a callback while a fork is starting (the fork's handlers, or the next unparker,
 * queue it), then unparks what is parked if the gate is open again. */
static void rcumaps_park(struct rcu_head *head, void (*func)(struct rcu_head *head))
{
    head->func = func;
    struct rcu_head *top = __atomic_load_n(&rcumaps_parked, __ATOMIC_RELAXED);
    do {
        head->next.next = (struct cds_wfcq_node *)top;
    } while (!__atomic_compare_exchange_n(&rcumaps_parked, &top, head, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
    /* A gate still closed: the fork's parent and child handlers queue what is parked.
     * Otherwise count this thread as unparking, then look again, and take the stack only if
     * the gate is still open: a thread that saw it open and was preempted before counting
     * itself could take, after a barrier's last look at the count, a callback another
     * unparker had parked again, and park it past that barrier (found by review,
     * 2026-12-05). Counted after the first look, not before it: while a fork waits, every
     * retirement parks, and counting each kept the barrier's loop (which waits for the
     * count to drop) going for as long as writers retire. */
    if (__atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST) != 0) return;
    __atomic_fetch_add(&rcumaps_unparking, 1, __ATOMIC_SEQ_CST);
    if (__builtin_expect(!rcumaps_record.linked, 0)) {
        /* A thread with no linked record (see rcumaps_call_rcu): a fork does not see its
         * enqueue flag, so it queues the parked callbacks inside the gate, or leaves them
         * to the fork that closed it again (found by review of that path, 2026-12-05). */
        if (rcumaps_gate_try_enter()) {
            rcumaps_queue_parked();
            rcumaps_gate_leave();
        }
    } else if (__atomic_load_n(&rcumaps_gate_closed, __ATOMIC_SEQ_CST) == 0) {
        rcumaps_unpark_counted();
    }
    __atomic_fetch_sub(&rcumaps_unparking, 1, __ATOMIC_RELEASE);
}

/* Takes every parked callback; returns them oldest first. */
static struct rcu_head *rcumaps_take_parked(void)
{
    struct rcu_head *list = __atomic_exchange_n(&rcumaps_parked, NULL, __ATOMIC_SEQ_CST);
    struct rcu_head *oldest_first = NULL;
    while (list) {
        struct rcu_head *next = (struct rcu_head *)list->next.next;
        list->next.next = (struct cds_wfcq_node *)oldest_first;
        oldest_first = list;
        list = next;
    }
    return oldest_first;
}

/* Threads that may take the parked callbacks and queue them, counted from before they look
 * at the gate until they are done (rcumaps_enqueue, rcumaps_unpark_all): a barrier that
 * found none parked waits for them, or it could return before callbacks
 * queued before it ran (found by review). */
static unsigned long rcumaps_unparking;

/* Queues the parked callbacks (parking them again if another fork has begun). The caller
 * counts itself in rcumaps_unparking before it checks the gate and calls this. */
static void rcumaps_unpark_counted(void)
{
    for (struct rcu_head *head = rcumaps_take_parked(), *next; head; head = next) {
        next = (struct rcu_head *)head->next.next;
        rcumaps_enqueue(head, head->func);
    }
}

/* rcumaps_unpark_counted, counted (the fork handlers, which opened the gate themselves). */
static void rcumaps_unpark_all(void)
{
    __atomic_fetch_add(&rcumaps_unparking, 1, __ATOMIC_SEQ_CST);
    if (__builtin_expect(!rcumaps_record.linked, 0)) {
        /* A forker with no linked record (registered by other code: see the prepare
         * handler): a fork does not see its enqueue flag, so it queues inside the gate, as
         * rcumaps_park does for such threads. */
        if (rcumaps_gate_try_enter()) {
            rcumaps_queue_parked();
            rcumaps_gate_leave();
        }
    } else {
        rcumaps_unpark_counted();
    }
    __atomic_fetch_sub(&rcumaps_unparking, 1, __ATOMIC_RELEASE);
}

static void rcumaps_gp_driver_wait(void);
static void rcumaps_barrier_urcu(void);

/* Queues every parked callback (the caller is inside the gate: no fork meanwhile). */
static void rcumaps_queue_parked(void)
{
    for (struct rcu_head *head = rcumaps_take_parked(), *next; head; head = next) {
        next = (struct rcu_head *)head->next.next;
        urcu_memb_call_rcu(head, head->func);
    }
}

/* Callbacks and driver items queued by reclamation threads — liburcu's workers and the
 * grace-period driver — while they run callbacks: a released object whose deinit drops a
 * map that retires its own objects, say. liburcu's barrier does not wait for a callback
 * queued behind its own (found by review, 2026-12-05, nineteenth session). */
static unsigned long rcumaps_reclamation_requeues;
static int rcumaps_on_reclamation_thread(void);

int rcumaps_liburcu_joins_worker_at_exit(void)
{
    /* Exported by liburcu-memb from 0.14 (its exit destructor), absent from 0.13. */
    return dlsym(RTLD_DEFAULT, "urcu_memb_exit") != NULL;
}

unsigned long rcumaps_reclamation_requeue_count(void)
{
    return __atomic_load_n(&rcumaps_reclamation_requeues, __ATOMIC_SEQ_CST);
}

void rcumaps_barrier(void)
{
    rcumaps_require_usable_process("Epoch.barrier()");
    rcumaps_ensure_registered();
    /* The grace-period driver's callbacks first (outside the gate, which the driver needs
     * for its grace periods), and again after liburcu's, which may have queued more.
     * Epoch.barrier() repeats this while the callbacks that ran queued more. */
    rcumaps_gp_driver_wait();
    rcumaps_barrier_urcu();
    rcumaps_gp_driver_wait();
}

static void rcumaps_barrier_urcu(void)
{
    /* Inside the gate, so never during a fork (which waits for the barrier; the barrier
     * needs only the reclamation thread, which the fork pauses after the gate is closed):
     * callbacks parked by the last fork are queued now, if they are not yet, before the
     * barrier's own — and a fork cannot interrupt these enqueues. */
    rcumaps_gate_enter();
    /* Callbacks another thread took from the parked stack first are queued soon, or parked
     * again if a new fork closed the gate meanwhile (it waits for this thread to leave the
     * gate, but an unparking thread that sees it closed parks what it holds: found by
     * review, 2026-12-05). So: take, and while threads are unparking, wait for them and take
     * again; once none is, a last take gets what the last of them parked again. Not "until
     * the stack is empty": while a fork waits, every retirement parks, and that could keep
     * this thread (and the fork) going for as long as writers retire. */
    for (;;) {
        rcumaps_queue_parked();
        if (__atomic_load_n(&rcumaps_unparking, __ATOMIC_SEQ_CST) == 0) break;
        while (__atomic_load_n(&rcumaps_unparking, __ATOMIC_SEQ_CST) != 0) sched_yield();
    }
    rcumaps_queue_parked();
    urcu_memb_barrier();
    rcumaps_gate_leave();
}

/* Retirements made by threads with no linked record (see rcumaps_call_rcu); for tests. */
static unsigned long rcumaps_unlinked_retirements;
unsigned long rcumaps_unlinked_retirement_count(void)
{
    return __atomic_load_n(&rcumaps_unlinked_retirements, __ATOMIC_RELAXED);
}

void rcumaps_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head))
{
    /* In a child forked inside a section no reclamation thread will ever run it: a retired
     * block would leak and an awaited grace period never end (found by review). */
    rcumaps_require_usable_process("a retirement (memory or work waiting for a grace period)");
    rcumaps_ensure_registered();
    /* What the retiring thread did before retiring happens before the reclamation
     * (liburcu's queue hand-off is invisible to TSan). */
    rcumaps_tsan_reader_exit();
    /* liburcu's reclamation thread is paused between batches of callbacks by a fork, so
     * it is never inside an enqueue then. */
    if (rcumaps_tls.registered == RCUMAPS_REGISTERED_BY_LIBURCU) {
        __atomic_fetch_add(&rcumaps_reclamation_requeues, 1, __ATOMIC_SEQ_CST);
        urcu_memb_call_rcu(head, func);
        return;
    }
    if (__builtin_expect(rcumaps_on_reclamation_thread(), 0))
        __atomic_fetch_add(&rcumaps_reclamation_requeues, 1, __ATOMIC_SEQ_CST);
    /* A thread with no linked record — an adopted thread whose RCUMaps exit handler has run
     * (row 120: released and unregistered later by the application), retiring from a later
     * thread-exit destructor — is not among the threads whose enqueue flag a fork waits for:
     * a fork between liburcu's two stores of the enqueue would cut the child's queue, and
     * every barrier there would wait forever (found by review, 2026-12-05). Such a thread
     * parks the callback, and queues what is parked inside the fork gate (a fork waits for
     * it), or leaves it to a fork that is starting (rcumaps_park). */
    if (__builtin_expect(!rcumaps_record.linked, 0)) {
        __atomic_fetch_add(&rcumaps_unlinked_retirements, 1, __ATOMIC_RELAXED);
        rcumaps_park(head, func);
        return;
    }
    rcumaps_enqueue(head, func);
}

/* ---------------------------------------------------------------------------
 * Grace-period driver
 *
 * A thread of RCUMaps' own that runs the callbacks queued with rcumaps_gp_driver_enqueue
 * after a grace period, like liburcu's call_rcu worker but without its 10 ms nap after
 * every batch: while callbacks keep arriving it starts the next grace period after a
 * short nap (rcumaps_gp_driver_nap_ns, RCUMAPS_GP_DRIVER_NAP_US in the environment); when
 * none is queued it sleeps on a condition variable. Meant for short callbacks whose
 * latency matters (the bucket hash's reclaim generations, retire lists' idle flushes — which
 * submit their batches to call_rcu from here, and may drop a list's last reference, so its
 * deinit runs here), not for memory reclamation itself.
 *
 * Loop: note the newest queued callback (under rcumaps_gp_mutex), wait for a grace period
 * (urcu_memb_synchronize_rcu, outside any section and holding no lock, through the
 * registration gate like any thread we registered), then — holding rcumaps_gp_run_mutex —
 * unlink the callbacks up to the noted one and run them in order. Each was queued before
 * the grace period began, so every section active when it was queued has ended.
 *
 * ThreadSanitizer: an enqueue releases the grace-period sync object (as rcumaps_call_rcu
 * does); the callbacks acquire it (epochReclaim does, as for call_rcu callbacks).
 *
 * fork: the prepare handler takes rcumaps_gp_run_mutex (after the gate is closed, so the
 * driver is not inside a grace period, and before the participants' locks, which the
 * callbacks may take) and, after the participants' locks, rcumaps_gp_mutex; in the child
 * the driver thread is gone, the callbacks it had not run are still queued, and a new
 * driver is started for them (once the gate is open again).
 * ------------------------------------------------------------------------- */

static pthread_mutex_t rcumaps_gp_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t rcumaps_gp_run_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rcumaps_gp_work = PTHREAD_COND_INITIALIZER;   /* the driver waits */
static pthread_cond_t rcumaps_gp_done = PTHREAD_COND_INITIALIZER;   /* barriers wait */
/* Under rcumaps_gp_mutex: the queue (linked through head->next.next), counts of callbacks
 * queued and run (for barriers), and whether the driver thread exists / is waiting. */
static struct rcu_head *rcumaps_gp_first, *rcumaps_gp_last;
static unsigned long long rcumaps_gp_queued, rcumaps_gp_ran;
static int rcumaps_gp_started, rcumaps_gp_idle;
/* Tests: make the driver's thread creation fail (rcumaps_gp_test_fail_driver_starts). */
static int rcumaps_gp_fail_starts;
/* Set when the driver thread could not be started, cleared when it starts (atomic: read
 * without the lock by rcumaps_gp_driver_start_failed, on writers' paths). */
int rcumaps_gp_start_failed;
/* A waiter runs the queue's items itself (no driver could be started): the only runner. */
static int rcumaps_gp_draining;
static int rcumaps_gp_start_failure_told;
/* CLOCK_MONOTONIC nanoseconds of the last failed start, 0 when the last start did not fail:
 * a start is tried again only RCUMAPS_GP_RETRY_INTERVAL_NS after a failure. Written under
 * rcumaps_gp_mutex, read without it by rcumaps_gp_driver_retry_start (atomic). At a thread
 * limit, every write that found an item queued took the mutex and made a failing
 * pthread_create (a stack mapped, clone3 refused), about ten times the cost of the write,
 * with every writer of the process queued on this one mutex (found by review, 2026-12-06,
 * twenty-ninth session). */
static unsigned long long rcumaps_gp_failed_at;
#define RCUMAPS_GP_RETRY_INTERVAL_NS 10000000ULL
/* Tests: the starts tried (rcumaps_gp_test_driver_start_attempts). */
static unsigned long long rcumaps_gp_start_attempts;
static long rcumaps_gp_driver_nap_ns = -1; /* read from the environment by the driver */
static __thread int rcumaps_gp_is_driver __attribute__((tls_model("initial-exec")));

int rcumaps_thread_is_gp_driver(void) { return rcumaps_gp_is_driver; }

static int rcumaps_on_reclamation_thread(void)
{
    return rcumaps_gp_is_driver || rcumaps_recognise_liburcu_worker();
}

/* One batch of the driver's work: the items queued up to `noted` (the queue's last when it
 * was read, with rcumaps_gp_mutex held), run after a grace period. Returns whether more
 * were queued meanwhile. On the driver, or (rcumaps_gp_drain_here) on a thread that waits
 * for them when the driver could not be started; rcumaps_gp_is_driver is set for the
 * callbacks either way. */
static int rcumaps_gp_run_batch(struct rcu_head *noted)
{
    /* A callback that left a section (or a liburcu read lock) open would make this wait
     * for itself. */
    if (__builtin_expect(rcumaps_inside_any_read_lock(), 0)) {
        fprintf(stderr, "rcumaps: a grace-period work item returned inside an epoch section or a liburcu read lock\n");
        abort();
    }
    rcumaps_synchronize();

    pthread_mutex_lock(&rcumaps_gp_run_mutex);
    pthread_mutex_lock(&rcumaps_gp_mutex);
    struct rcu_head *batch = rcumaps_gp_first;
    rcumaps_gp_first = (struct rcu_head *)noted->next.next;
    if (!rcumaps_gp_first) rcumaps_gp_last = NULL;
    noted->next.next = NULL;
    pthread_mutex_unlock(&rcumaps_gp_mutex);
    unsigned long long count = 0;
    for (struct rcu_head *head = batch, *next; head; head = next) {
        next = (struct rcu_head *)head->next.next;
        head->func(head);
        count++;
    }
    pthread_mutex_lock(&rcumaps_gp_mutex);
    rcumaps_gp_ran += count;
    int more = rcumaps_gp_first != NULL;
    pthread_cond_broadcast(&rcumaps_gp_done);
    pthread_mutex_unlock(&rcumaps_gp_mutex);
    pthread_mutex_unlock(&rcumaps_gp_run_mutex);
    return more;
}

static void *rcumaps_gp_driver_main(void *unused)
{
    (void)unused;
    rcumaps_gp_is_driver = 1;
    rcumaps_ensure_registered();
    long nap = rcumaps_gp_driver_nap_ns;
    for (;;) {
        pthread_mutex_lock(&rcumaps_gp_mutex);
        while (!rcumaps_gp_first) {
            rcumaps_gp_idle = 1;
            pthread_cond_wait(&rcumaps_gp_work, &rcumaps_gp_mutex);
            rcumaps_gp_idle = 0;
        }
        struct rcu_head *noted = rcumaps_gp_last;
        pthread_mutex_unlock(&rcumaps_gp_mutex);
        int more = rcumaps_gp_run_batch(noted);
        if (more && nap > 0) {
            struct timespec pause = { nap / 1000000000L, nap % 1000000000L };
            while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {}
        }
    }
    return NULL;
}

static unsigned long long rcumaps_gp_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)now.tv_sec * 1000000000ULL + (unsigned long long)now.tv_nsec;
}

/* Whether a start may be tried now: none failed, or the last failure is at least
 * RCUMAPS_GP_RETRY_INTERVAL_NS old. */
static int rcumaps_gp_may_try_start(void)
{
    unsigned long long failed = __atomic_load_n(&rcumaps_gp_failed_at, __ATOMIC_RELAXED);
    return failed == 0 || rcumaps_gp_now_ns() - failed >= RCUMAPS_GP_RETRY_INTERVAL_NS;
}

/* Starts the driver thread, unless a start failed less than RCUMAPS_GP_RETRY_INTERVAL_NS
 * ago. Caller holds rcumaps_gp_mutex. */
static void rcumaps_gp_start_locked(void)
{
    if (!rcumaps_gp_may_try_start()) return;
    __atomic_fetch_add(&rcumaps_gp_start_attempts, 1, __ATOMIC_RELAXED);
    if (rcumaps_gp_driver_nap_ns < 0) {
        const char *text = getenv("RCUMAPS_GP_DRIVER_NAP_US");
        long micros = text ? strtol(text, NULL, 10) : 1000;
        /* At most a second: a larger value overflowed the product below. */
        rcumaps_gp_driver_nap_ns = (micros < 0 ? 0 : micros > 1000000 ? 1000000 : micros) * 1000L;
    }
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int err = __atomic_load_n(&rcumaps_gp_fail_starts, __ATOMIC_RELAXED)
        ? EAGAIN : pthread_create(&thread, &attributes, rcumaps_gp_driver_main, NULL);
    pthread_attr_destroy(&attributes);
    if (err != 0) {
        /* A process at its thread limit (a container's pids.max, RLIMIT_NPROC): the items
         * stay queued, a write 10 ms or more later tries again (an enqueue, or a write
         * that finds an item of its own queued: rcumaps_gp_driver_retry_start), and a
         * barrier (rcumaps_gp_driver_wait) runs them itself meanwhile. It aborted the
         * process (found by review, 2026-12-06, twenty-third session); the driver only
         * shortens the items' latency. */
        if (!rcumaps_gp_start_failure_told) {
            rcumaps_gp_start_failure_told = 1;
            fprintf(stderr, "rcumaps: cannot start the grace-period driver thread (%s); its work waits until a later "
                            "write tries again (at most every 10 ms) or Epoch.barrier() runs it\n",
                    strerror(err));
        }
        unsigned long long now = rcumaps_gp_now_ns();
        __atomic_store_n(&rcumaps_gp_failed_at, now ? now : 1, __ATOMIC_RELAXED);
        __atomic_store_n(&rcumaps_gp_start_failed, 1, __ATOMIC_RELAXED);
        return;
    }
    rcumaps_gp_started = 1;
    __atomic_store_n(&rcumaps_gp_failed_at, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&rcumaps_gp_start_failed, 0, __ATOMIC_RELAXED);
}

unsigned long long rcumaps_gp_test_driver_start_attempts(void)
{
    return __atomic_load_n(&rcumaps_gp_start_attempts, __ATOMIC_RELAXED);
}

void rcumaps_gp_driver_retry_start(void)
{
    /* Within the retry interval: not even the mutex (every writer of the process passes
     * here while the start fails). */
    if (!rcumaps_gp_may_try_start()) return;
    pthread_mutex_lock(&rcumaps_gp_mutex);
    if (rcumaps_gp_first && !rcumaps_gp_started && !rcumaps_gp_draining) rcumaps_gp_start_locked();
    pthread_mutex_unlock(&rcumaps_gp_mutex);
}

/* (Atomic: another thread's enqueue may read it under the queue's lock meanwhile.) */
void rcumaps_gp_test_fail_driver_starts(int fail) { __atomic_store_n(&rcumaps_gp_fail_starts, fail, __ATOMIC_RELAXED); }

void rcumaps_gp_driver_enqueue(struct rcu_head *head, void (*func)(struct rcu_head *head))
{
    rcumaps_require_usable_process("a grace-period work item");
    /* The fork handlers before the driver can start: an enqueue from a process whose threads
     * never registered (a plain bucket-hash delete holds no section) started the driver with
     * none installed, and a fork in that window left a child whose driver was marked started
     * but did not exist (found by review, 2026-12-05). Only a key and the atfork triple: no
     * registration, so it is safe under a chain lock. */
    pthread_once(&rcumaps_once, rcumaps_init_once);
    /* What the caller did before happens before the callback (see above). */
    rcumaps_tsan_reader_exit();
    if (rcumaps_on_reclamation_thread()) __atomic_fetch_add(&rcumaps_reclamation_requeues, 1, __ATOMIC_SEQ_CST);
    head->func = func;
    head->next.next = NULL;
    pthread_mutex_lock(&rcumaps_gp_mutex);
    if (rcumaps_gp_last) rcumaps_gp_last->next.next = (struct cds_wfcq_node *)head;
    else rcumaps_gp_first = head;
    rcumaps_gp_last = head;
    rcumaps_gp_queued++;
    if (!rcumaps_gp_started) {
        if (!rcumaps_gp_draining) rcumaps_gp_start_locked();
    } else if (rcumaps_gp_idle) {
        pthread_cond_signal(&rcumaps_gp_work);
    }
    pthread_mutex_unlock(&rcumaps_gp_mutex);
}

/* Waits until every callback queued before the call has run. Not from the driver. With no
 * driver (its thread could not be started), starts it, or runs the items here. */
static void rcumaps_gp_driver_wait(void)
{
    pthread_mutex_lock(&rcumaps_gp_mutex);
    unsigned long long target = rcumaps_gp_queued;
    while (rcumaps_gp_ran < target) {
        if (!rcumaps_gp_started && !rcumaps_gp_draining) rcumaps_gp_start_locked();
        if (rcumaps_gp_started || rcumaps_gp_draining) {
            pthread_cond_wait(&rcumaps_gp_done, &rcumaps_gp_mutex);
            continue;
        }
        /* Still no driver, and no other waiter running the items: this thread (registered,
         * outside every section: the barrier's rules) runs them as the driver would, the
         * only runner meanwhile (an enqueue starts no driver while it drains). Items not run
         * are in the queue, so it is not empty. */
        rcumaps_gp_draining = 1;
        struct rcu_head *noted = rcumaps_gp_last;
        pthread_mutex_unlock(&rcumaps_gp_mutex);
        int was_driver = rcumaps_gp_is_driver;
        rcumaps_gp_is_driver = 1;
        (void)rcumaps_gp_run_batch(noted);
        rcumaps_gp_is_driver = was_driver;
        pthread_mutex_lock(&rcumaps_gp_mutex);
        rcumaps_gp_draining = 0;
        pthread_cond_broadcast(&rcumaps_gp_done);
    }
    pthread_mutex_unlock(&rcumaps_gp_mutex);
}

/* Before the participants' prepare handlers: the callbacks, which the driver runs with
 * this lock held, may take their locks. */
static void rcumaps_gp_fork_prepare_run(void)
{
    pthread_mutex_lock(&rcumaps_gp_run_mutex);
}

/* After them: the queue's lock is a leaf (its holders wait for nothing), and a thread
 * holding one of their locks may be about to queue a callback. */
static void rcumaps_gp_fork_prepare_queue(void)
{
    pthread_mutex_lock(&rcumaps_gp_mutex);
}

static void rcumaps_gp_fork_parent(void)
{
    pthread_mutex_unlock(&rcumaps_gp_mutex);
    pthread_mutex_unlock(&rcumaps_gp_run_mutex);
}

/* The child's driver state, reset while the forking thread is the only thread: before
 * liburcu's child hook starts a new call_rcu worker, whose callbacks may queue items here at
 * once. (Reset after it, a callback already blocked on the queue's lock, held since the
 * prepare handler, was never woken: pthread_mutex_init wrote over the lock it slept on, and
 * the child's callbacks and barriers stopped for good. Found by review, 2026-12-06,
 * twenty-sixth session.) */
static void rcumaps_gp_fork_child_reset(void)
{
    pthread_mutex_init(&rcumaps_gp_mutex, NULL);
    pthread_mutex_init(&rcumaps_gp_run_mutex, NULL);
    pthread_cond_init(&rcumaps_gp_work, NULL);
    pthread_cond_init(&rcumaps_gp_done, NULL);
    rcumaps_gp_started = 0;
    rcumaps_gp_idle = 0;
    rcumaps_gp_draining = 0;  /* (a waiter that drained is not in the child) */
    __atomic_store_n(&rcumaps_gp_failed_at, 0, __ATOMIC_RELAXED); /* the child starts its driver at once */
}

static unsigned int rcumaps_test_child_pause_micros;
/* Non-zero while the child's handler pauses for a test (rcumaps_test_pause_after_call_rcu_child). */
static int rcumaps_test_child_pausing;
void rcumaps_test_pause_after_call_rcu_child(unsigned int micros)
{
    __atomic_store_n(&rcumaps_test_child_pause_micros, micros, __ATOMIC_RELAXED);
}

struct rcumaps_test_requeue {
    struct rcu_head first, second, item;
    int *stage;
};

static void rcumaps_test_requeue_item(struct rcu_head *head)
{
    free(caa_container_of(head, struct rcumaps_test_requeue, item));
}

static void rcumaps_test_requeue_second(struct rcu_head *head)
{
    struct rcumaps_test_requeue *test = caa_container_of(head, struct rcumaps_test_requeue, second);
    int *stage = test->stage;
    /* The process it ran in, negated if the fork child's handler was not pausing then. */
    int pausing = __atomic_load_n(&rcumaps_test_child_pausing, __ATOMIC_SEQ_CST);
    rcumaps_gp_driver_enqueue(&test->item, rcumaps_test_requeue_item);
    __atomic_store_n(stage, pausing ? (int)getpid() : -(int)getpid(), __ATOMIC_SEQ_CST);
}

static void rcumaps_test_requeue_first(struct rcu_head *head)
{
    struct rcumaps_test_requeue *test = caa_container_of(head, struct rcumaps_test_requeue, first);
    rcumaps_call_rcu(&test->second, rcumaps_test_requeue_second);
    __atomic_store_n(test->stage, 1, __ATOMIC_SEQ_CST);
}

void rcumaps_test_queue_requeuing_callback(int *stage)
{
    struct rcumaps_test_requeue *test = calloc(1, sizeof *test);
    if (!test) abort();
    test->stage = stage;
    rcumaps_call_rcu(&test->first, rcumaps_test_requeue_first);
}

/* Starts the child's driver for the items queued before the fork, unless a callback of the
 * new worker queued one and started it already. */
static void rcumaps_gp_fork_child_start(void)
{
    pthread_mutex_lock(&rcumaps_gp_mutex);
    if (rcumaps_gp_first && !rcumaps_gp_started && !rcumaps_gp_draining) rcumaps_gp_start_locked();
    pthread_mutex_unlock(&rcumaps_gp_mutex);
}

/* ---------------------------------------------------------------------------
 * fork
 *
 * liburcu's memb flavour supports fork() without exec only if every reader registration
 * is released before the fork (rcu-api.md, "Interaction with fork()"); of its fork hooks it
 * has only the call_rcu ones (urcu_memb_call_rcu_before_fork & co., which also pause the
 * rculfhash resize worker). RCUMaps registers threads lazily and for their whole life, so
 * it does the rest itself, from one pthread_atfork triple installed with the first
 * registration:
 *
 * prepare (on the forking thread; glibc runs fork handlers one fork at a time):
 *   1. skip everything if the forker is inside a section or is the reclamation thread
 *      (waiting below could deadlock on itself): the child is then marked unusable;
 *   2. register the forker and make sure call_rcu's default worker exists;
 *   3. close the registration gate: wait for the registrations, unregistrations, grace
 *      periods and barriers RCUMaps started (they need nothing the forker holds), admit
 *      no new one;
 *      then wait for the call_rcu enqueues in flight (a thread that finds the gate closed
 *      parks its callback instead, see rcumaps_call_rcu);
 *   4. urcu_memb_call_rcu_before_fork(): take call_rcu's mutex, let the call_rcu worker
 *      finish its batch of callbacks (which may take map and epoch locks, so no such lock
 *      is held by the forker yet) and pause it, unregistered; same for rculfhash's worker;
 *   4b. take the grace-period driver's run lock (it finishes its batch of callbacks);
 *   5. the participants' prepare handlers (their locks), outer layers (higher levels)
 *      first, each level in reverse order of registration.
 *   6. the driver's queue lock (a leaf).
 * parent: the participants' parent handlers, queue the parked callbacks,
 *   urcu_memb_call_rcu_after_fork_parent, reopen the gate (and queue what was parked
 *   meanwhile).
 * child (single-threaded until liburcu's hook): unlink every other thread we registered
 *   from liburcu's reader registry (they do not exist here, and glibc will reuse their
 *   stacks and TLS for new threads), the participants' child handlers, reset the gate's
 *   counts and the grace-period driver's locks and state, urcu_memb_call_rcu_after_fork_child
 *   (a new call_rcu worker, inheriting the callbacks still queued, which it may run at
 *   once), reopen the gate with a wake, start the driver if items wait for it, queue the
 *   parked callbacks.
 *
 * Not covered: liburcu calls made directly by the application (its own registrations,
 * grace periods and call_rcu), and rculfhash's resize requests, which a map's writer queues
 * to rculfhash's worker with the same kind of two-store enqueue (a fork in the middle of
 * one would stop that worker in the child: resizes, and destroying lock-free hash maps,
 * would then wait forever).
 *
 * Requires glibc 2.24 or later, which takes malloc's locks after the prepare handlers: the
 * call_rcu worker frees memory in its callbacks, and liburcu's documentation warns that
 * with older allocators pausing it from an atfork handler could hang.
 * ------------------------------------------------------------------------- */

#define RCUMAPS_FORK_MAX_PARTICIPANTS 16
#define RCUMAPS_FORK_MAX_LEVEL 3

typedef struct rcumaps_fork_participant {
    int level;
    void (*prepare)(void);
    void (*parent)(void);
    void (*child)(void);
} rcumaps_fork_participant_t;

static rcumaps_fork_participant_t rcumaps_participants[RCUMAPS_FORK_MAX_PARTICIPANTS];
static unsigned int rcumaps_participants_reserved; /* slots handed out */
static unsigned int rcumaps_participants_published; /* slots filled, in order */

/* Set by prepare, read by parent/child (glibc serialises fork handlers). */
static int rcumaps_fork_prepared;
static unsigned int rcumaps_fork_prepared_participants; /* participants prepared for this fork */
static int rcumaps_fork_skip_reason;

int rcumaps_fork_add_participant(int level, void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void))
{
    if (level < 0 || level > RCUMAPS_FORK_MAX_LEVEL || !prepare || !parent || !child) return -1;
    pthread_once(&rcumaps_once, rcumaps_init_once);
    /* A fork preparing now may have read the participants already (see the prepare
     * handler: it looks again until no addition is in flight). Never blocks: the caller is
     * a layer's lazily made lock, perhaps inside a section that a fork waits for. */
    unsigned int index = __atomic_fetch_add(&rcumaps_participants_reserved, 1, __ATOMIC_SEQ_CST);
    if (index >= RCUMAPS_FORK_MAX_PARTICIPANTS) return -1;
    rcumaps_participants[index] = (rcumaps_fork_participant_t){ level, prepare, parent, child };
    /* Publish in order: wait for earlier reservations (never blocked) to be filled. */
    while (__atomic_load_n(&rcumaps_participants_published, __ATOMIC_ACQUIRE) != index)
        sched_yield();
    __atomic_store_n(&rcumaps_participants_published, index + 1, __ATOMIC_RELEASE);
    return 0;
}

static void rcumaps_fork_prepare(void)
{
    rcumaps_fork_prepared = 0;
    rcumaps_fork_skip_reason = RCUMAPS_CHILD_OK;
    if (rcumaps_child_unusable != RCUMAPS_CHILD_OK) {
        rcumaps_fork_skip_reason = rcumaps_child_unusable; /* inherited by the grandchild */
        return;
    }
    /* Inside a section: ours, or a liburcu read lock the thread took directly (which our
     * depth does not count: a forker registered by other code, holding one, went on to
     * close the gate and hung the process with a grace period in flight; found by review
     * of that session's diff, 2026-12-05, eighteenth session). */
    if (rcumaps_tls.nesting != 0 || urcu_memb_read_ongoing()) {
        rcumaps_fork_skip_reason = RCUMAPS_CHILD_FORKED_IN_SECTION;
        return;
    }
    if (rcumaps_recognise_liburcu_worker() || rcumaps_gp_is_driver) {
        rcumaps_fork_skip_reason = RCUMAPS_CHILD_FORKED_ON_RECLAMATION_THREAD;
        return;
    }
    if (!__atomic_load_n(&rcumaps_reader_layout_ok, __ATOMIC_RELAXED)) {
        rcumaps_fork_skip_reason = RCUMAPS_CHILD_UNKNOWN_LIBURCU_LAYOUT;
        return;
    }
    /* The forking thread queues the parked callbacks in the parent handler, which needs it
     * registered with liburcu: by RCUMaps, or by other code. A thread other code registered
     * (and did not hand to RCUMaps) is left as it is: registering it again stopped the
     * process, in a fork followed by exec that liburcu allows (found by review, 2026-12-05,
     * eighteenth session). */
    if (!(urcu_memb_reader.registered && pthread_equal(urcu_memb_reader.tid, pthread_self())))
        rcumaps_ensure_registered();
    /* Parked callbacks are queued before call_rcu's mutex is released (so that a barrier
     * waiting for that mutex also waits for them): the default call_rcu data must exist
     * by then, since creating it takes that mutex. */
    (void)urcu_memb_get_default_call_rcu_data();
    rcumaps_gate_close();
    /* No registration in flight: the records are stable. Wait for the enqueues in flight. */
    for (rcumaps_thread_record_t *r = rcumaps_records.next; r != &rcumaps_records; r = r->next)
        while (__atomic_load_n(r->enqueuing, __ATOMIC_SEQ_CST) != 0) sched_yield();
    /* And for the threads unparking: one that took the parked stack after the last fork and
     * is queuing it one callback at a time holds the rest in its own frame, which a child
     * does not inherit — the child's unpark finds only the global stack, and those
     * callbacks (other threads' retirements, completed in the parent) were lost there
     * (found by review, 2026-12-06, twenty-fifth session). With the gate closed, each of
     * its remaining enqueues parks again at once, so the wait is short and waits for no
     * lock; an unlinked unparker queues only inside the gate, which the fork has closed. */
    while (__atomic_load_n(&rcumaps_unparking, __ATOMIC_SEQ_CST) != 0) sched_yield();
    urcu_memb_call_rcu_before_fork();
    rcumaps_gp_fork_prepare_run();
    unsigned int count = __atomic_load_n(&rcumaps_participants_published, __ATOMIC_ACQUIRE);
    for (int level = RCUMAPS_FORK_MAX_LEVEL; level >= 0; level--)
        for (unsigned int i = count; i-- > 0;)
            if (rcumaps_participants[i].level == level) rcumaps_participants[i].prepare();
    /* Participants added meanwhile: a layer's lock made on its first use by another thread
     * after the read above, which that thread may take before the clone — the child then
     * inherited it held (found by review, 2026-12-05, eighteenth session). Prepared too,
     * after the others (out of level order: each participant's lock holders take no other
     * participant's lock, so the order does not matter for them), until no addition is in
     * flight. An addition after this look, before the clone, is still missed: a window of
     * a few instructions against the whole prepare handler's before. */
    for (;;) {
        unsigned int reserved = __atomic_load_n(&rcumaps_participants_reserved, __ATOMIC_SEQ_CST);
        if (reserved > RCUMAPS_FORK_MAX_PARTICIPANTS) reserved = RCUMAPS_FORK_MAX_PARTICIPANTS;
        if (reserved == count) break;
        while (__atomic_load_n(&rcumaps_participants_published, __ATOMIC_ACQUIRE) < reserved) sched_yield();
        for (unsigned int i = count; i < reserved; i++) rcumaps_participants[i].prepare();
        count = reserved;
    }
    rcumaps_fork_prepared_participants = count;
    rcumaps_gp_fork_prepare_queue();
    rcumaps_fork_prepared = 1;
}

static void rcumaps_fork_parent(void)
{
    if (!rcumaps_fork_prepared) return;
    unsigned int count = rcumaps_fork_prepared_participants;
    for (int level = 0; level <= RCUMAPS_FORK_MAX_LEVEL; level++)
        for (unsigned int i = 0; i < count; i++)
            if (rcumaps_participants[i].level == level) rcumaps_participants[i].parent();
    /* Before call_rcu's mutex is released: a barrier waiting for it is then sure to find
     * them queued. The gate is still closed: no fork can interrupt these enqueues. */
    for (struct rcu_head *head = rcumaps_take_parked(), *next; head; head = next) {
        next = (struct rcu_head *)head->next.next;
        urcu_memb_call_rcu(head, head->func);
    }
    urcu_memb_call_rcu_after_fork_parent();
    rcumaps_gp_fork_parent();
    rcumaps_fork_prepared = 0;
    rcumaps_gate_open();
    rcumaps_unpark_all(); /* parked after the first look */
}

/* Unlinks from liburcu's reader registry every thread we registered but the caller: in
 * the child they do not exist. Their records and registry nodes are in their TLS, which
 * the child still maps until glibc reuses it for a new thread, so this must run before
 * the child creates any thread. */
static void rcumaps_forget_other_threads(void)
{
    rcumaps_thread_record_t *self = rcumaps_record.linked ? &rcumaps_record : NULL;
    for (rcumaps_thread_record_t *r = rcumaps_records.next, *next; r != &rcumaps_records; r = next) {
        next = r->next;
        if (r != self && r->reader_node) cds_list_del(r->reader_node);
    }
    rcumaps_records.next = rcumaps_records.prev = &rcumaps_records;
    if (self) {
        self->next = self->prev = &rcumaps_records;
        rcumaps_records.next = rcumaps_records.prev = self;
    }
}

static void rcumaps_fork_child(void)
{
    /* A participant reserved by a thread that is not here, and never published (one added
     * without the gate: see rcumaps_fork_add_participant), would hold every later addition
     * waiting for it. */
    __atomic_store_n(&rcumaps_participants_reserved,
                     __atomic_load_n(&rcumaps_participants_published, __ATOMIC_ACQUIRE), __ATOMIC_RELAXED);
    if (!rcumaps_fork_prepared) {
        if (rcumaps_fork_skip_reason != RCUMAPS_CHILD_OK) rcumaps_child_unusable = rcumaps_fork_skip_reason;
        return;
    }
    rcumaps_forget_other_threads();
    unsigned int count = rcumaps_fork_prepared_participants;
    for (int level = 0; level <= RCUMAPS_FORK_MAX_LEVEL; level++)
        for (unsigned int i = 0; i < count; i++)
            if (rcumaps_participants[i].level == level) rcumaps_participants[i].child();
    /* Every thread that was inside the gate is gone, and every thread that was queuing
     * parked callbacks (a count it left raised would hold every barrier here forever).
     * Reset, with the driver's state, while this is the child's only thread: the call_rcu
     * worker liburcu starts next may enter and leave the gate, and queue driver items, at
     * once (a count stored over its entry would have wrapped at its leave). */
    __atomic_store_n(&rcumaps_gate_users, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&rcumaps_unparking, 0, __ATOMIC_SEQ_CST);
    rcumaps_gp_fork_child_reset();
    urcu_memb_call_rcu_after_fork_child();
    unsigned int pause = __atomic_load_n(&rcumaps_test_child_pause_micros, __ATOMIC_RELAXED);
    if (pause) {
        __atomic_store_n(&rcumaps_test_child_pausing, 1, __ATOMIC_SEQ_CST);
        usleep(pause);
        __atomic_store_n(&rcumaps_test_child_pausing, 0, __ATOMIC_SEQ_CST);
    }
    rcumaps_fork_prepared = 0;
    /* With a wake: a thread of the new worker's may already sleep at the closed gate (a
     * driver one of its callbacks started registers first thing). */
    rcumaps_gate_open();
    rcumaps_gp_fork_child_start();
    rcumaps_unpark_all(); /* parked in the parent, by threads or not */
}

int rcumaps_fork_participant_count(int level)
{
    unsigned int count = __atomic_load_n(&rcumaps_participants_published, __ATOMIC_ACQUIRE);
    int found = 0;
    for (unsigned int i = 0; i < count; i++)
        if (rcumaps_participants[i].level == level) found++;
    return found;
}

void rcumaps_stop_unusable_retirement(void)
{
    rcumaps_require_usable_process("a retirement (memory or work waiting for a grace period)");
}

int rcumaps_process_is_usable(void)
{
    return rcumaps_child_unusable == RCUMAPS_CHILD_OK;
}

/* ---------------------------------------------------------------------------
 * rculfhash
 * ------------------------------------------------------------------------- */

/* Match functions (declared in the header, which inlines the lookup): does the entry's key
 * equal the looked-up key? Either acquires the entry for TSan before reading it, so a node
 * a lookup returns (one these matched) needs no second acquire. */
int rcumaps_lfht_match(struct cds_lfht_node *node, const void *key)
{
    const rcumaps_lfht_key_t *k = key;
    const rcumaps_lfht_entry_t *e = caa_container_of(node, rcumaps_lfht_entry_t, node);
    RCUMAPS_TSAN_ACQUIRE(e);
    if (k->size == 8) {
        uint64_t a, b;
        memcpy(&a, e->data, 8);
        memcpy(&b, k->bytes, 8);
        return a == b;
    }
    return memcmp(e->data, k->bytes, k->size) == 0;
}

int rcumaps_lfht_match8(struct cds_lfht_node *node, const void *key)
{
    const rcumaps_lfht_entry_t *e = caa_container_of(node, rcumaps_lfht_entry_t, node);
    RCUMAPS_TSAN_ACQUIRE(e);
    uint64_t a, b;
    memcpy(&a, e->data, 8);
    memcpy(&b, key, 8);
    return a == b;
}

static inline rcumaps_lfht_entry_t *entry_of(struct cds_lfht_node *node)
{
    if (!node) return NULL;
    rcumaps_lfht_entry_t *e = caa_container_of(node, rcumaps_lfht_entry_t, node);
    RCUMAPS_TSAN_ACQUIRE(e);
    return e;
}

struct cds_lfht *rcumaps_lfht_new(unsigned long init_size, unsigned long max_size)
{
    rcumaps_require_usable_process("creating a lock-free hash map");
    rcumaps_ensure_registered();
    /* On 64-bit, rculfhash reserves address space for `max_size` bucket nodes up front
     * (its mmap allocator: one PROT_NONE mapping of max_size × sizeof(struct
     * cds_lfht_node)) and calls abort() if that mmap fails: under an address-space limit
     * (RLIMIT_AS, systemd's LimitAS=) creating a large map killed the process instead of
     * failing with ENOMEM (found by review, 2026-12-05). Probe the same reservation first
     * and answer NULL when it cannot be made. (liburcu still aborts in other cases: address
     * space taken by another thread between the probe and the table's own reservation; a
     * first table whose rculfhash worker thread cannot be started; a failed allocation of
     * the table's own structures, which it asserts; initial bucket pages or a resize's that
     * cannot be committed under strict overcommit.) */
    if (max_size > 0 && max_size <= (~(size_t)0) / sizeof(struct cds_lfht_node)) {
        size_t bytes = max_size * sizeof(struct cds_lfht_node);
        void *probe = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (probe == MAP_FAILED) {
            errno = ENOMEM;
            return NULL;
        }
        munmap(probe, bytes);
    }
    /* An auto-resizing table registers rculfhash's fork hooks, which takes call_rcu's mutex;
     * a fork holds that mutex while it waits for the call_rcu worker to pause, which waits
     * for the worker's callbacks and grace periods, which wait for sections. A creation from
     * a section or a reclamation callback during a fork hung the whole process (found by
     * review, 2026-12-05). So the creation is made inside the fork gate: a fork waits for a
     * creation in flight before it takes the mutex, and a creation waits for a fork to end —
     * except where waiting could deadlock (inside a section, on a reclamation thread: the
     * threads a fork skips its preparation for), which fail with EDEADLK while a fork is
     * starting instead. A liburcu read lock the thread took itself is a section too (a
     * creation from inside one waited at the gate while the fork waited for a grace period
     * that waited for that read lock: found by review, 2026-12-05, nineteenth session). */
    int may_wait = rcumaps_tls.nesting == 0 && !urcu_memb_read_ongoing()
        && rcumaps_tls.registered != RCUMAPS_REGISTERED_BY_LIBURCU && !rcumaps_gp_is_driver;
    if (may_wait) {
        rcumaps_gate_enter();
    } else if (!rcumaps_gate_try_enter()) {
        errno = EDEADLK;
        return NULL;
    }
    struct cds_lfht *table = cds_lfht_new_flavor(init_size, 1, max_size,
                                                 CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                                 &urcu_memb_flavor, NULL);
    rcumaps_gate_leave();
    if (!table) errno = ENOMEM;
    return table;
}

int rcumaps_lfht_destroy(struct cds_lfht *ht)
{
    rcumaps_require_usable_process("destroying a lock-free hash map");
    rcumaps_ensure_registered();
    return cds_lfht_destroy(ht, NULL);
}

rcumaps_lfht_entry_t *rcumaps_lfht_add_unique(struct cds_lfht *ht, unsigned long hash,
                                              size_t key_size, rcumaps_lfht_entry_t *entry)
{
    rcumaps_lfht_key_t k = { entry->data, key_size };
    cds_lfht_node_init(&entry->node);
    struct cds_lfht_node *got = cds_lfht_add_unique(ht, hash, rcumaps_lfht_match, &k, &entry->node);
    return got == &entry->node ? entry : entry_of(got);
}

rcumaps_lfht_entry_t *rcumaps_lfht_add_replace(struct cds_lfht *ht, unsigned long hash,
                                               size_t key_size, rcumaps_lfht_entry_t *entry)
{
    rcumaps_lfht_key_t k = { entry->data, key_size };
    cds_lfht_node_init(&entry->node);
    return entry_of(cds_lfht_add_replace(ht, hash, rcumaps_lfht_match, &k, &entry->node));
}

int rcumaps_lfht_replace(struct cds_lfht *ht, unsigned long hash, size_t key_size,
                         rcumaps_lfht_entry_t *old_entry, rcumaps_lfht_entry_t *new_entry)
{
    struct cds_lfht_iter iter;
    rcumaps_lfht_key_t k = { new_entry->data, key_size };
    /* Rebuild the iterator a lookup would have produced for old_entry. */
    iter.node = &old_entry->node;
    iter.next = CMM_LOAD_SHARED(old_entry->node.next);
    cds_lfht_node_init(&new_entry->node);
    return cds_lfht_replace(ht, &iter, hash, rcumaps_lfht_match, &k, &new_entry->node);
}

int rcumaps_lfht_del(struct cds_lfht *ht, rcumaps_lfht_entry_t *entry)
{
    return cds_lfht_del(ht, &entry->node);
}

int rcumaps_lfht_is_removed(const rcumaps_lfht_entry_t *entry)
{
    return cds_lfht_is_node_deleted(&entry->node);
}

rcumaps_lfht_entry_t *rcumaps_lfht_first(struct cds_lfht *ht)
{
    struct cds_lfht_iter iter;
    cds_lfht_first(ht, &iter);
    return entry_of(cds_lfht_iter_get_node(&iter));
}

rcumaps_lfht_entry_t *rcumaps_lfht_next(struct cds_lfht *ht, rcumaps_lfht_entry_t *entry)
{
    struct cds_lfht_iter iter;
    iter.node = &entry->node;
    iter.next = CMM_LOAD_SHARED(entry->node.next);
    cds_lfht_next(ht, &iter);
    return entry_of(cds_lfht_iter_get_node(&iter));
}

unsigned long rcumaps_lfht_entry_order(const rcumaps_lfht_entry_t *entry)
{
    return entry->node.reverse_hash;
}

unsigned long rcumaps_lfht_order_of_hash(unsigned long hash)
{
    /* Same bit reversal rculfhash applies to a node's hash. */
    unsigned long v = hash, r = 0;
    for (unsigned i = 0; i < sizeof(unsigned long) * 8; i++) {
        r = (r << 1) | (v & 1);
        v >>= 1;
    }
    return r;
}

/* ---------------------------------------------------------------------------
 * libnuma
 * ------------------------------------------------------------------------- */

int rcumaps_numa_node_count(void)
{
    if (numa_available() < 0) return 1;
    int max = numa_max_node();
    return max >= 0 ? max + 1 : 1;
}

int rcumaps_numa_node_is_configured(int node)
{
    if (numa_available() < 0) return node == 0;
    if (node < 0 || node > numa_max_node() || numa_nodes_ptr == NULL) return 0;
    return numa_bitmask_isbitset(numa_nodes_ptr, (unsigned int)node) ? 1 : 0;
}

unsigned int rcumaps_assign_thread_stripe(void)
{
    static unsigned int next_stripe;
    unsigned int stripe = __atomic_fetch_add(&next_stripe, 1, __ATOMIC_RELAXED);
    /* Stored + 1 (0 means unassigned); a wrap after 2^32 threads reuses numbers, harmlessly. */
    rcumaps_tls.stripe = stripe + 1 != 0 ? stripe + 1 : 1;
    return rcumaps_tls.stripe - 1;
}

int rcumaps_current_cpu(void)
{
    int cpu = sched_getcpu();
    return cpu >= 0 ? cpu : 0;
}

int rcumaps_allowed_cpu_count(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int rcumaps_pin_current_thread(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}

int rcumaps_numa_current_node(void)
{
    if (numa_available() < 0) return 0;
    int node = numa_node_of_cpu(rcumaps_current_cpu());
    return node >= 0 ? node : 0;
}

void *rcumaps_numa_alloc_onnode(size_t size, int node)
{
    if (numa_available() < 0 || size == 0) return NULL;
    /* Not numa_alloc_onnode: libnuma binds such memory to the node (MPOL_BIND), so a map
     * created on a node short of memory drew the OOM killer while it cleared its pages,
     * where Linux's bpf_map_area_alloc only prefers the node and falls back to the others.
     * Preferred, as the per-CPU array's blocks (a policy that cannot be set leaves the
     * memory where the kernel puts it). */
    void *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return NULL;
    (void)rcumaps_numa_prefer_node(memory, size, node);
    return memory;
}

void rcumaps_numa_free(void *ptr, size_t size)
{
    if (ptr != NULL) munmap(ptr, size);
}

int rcumaps_numa_node_of_cpu(int cpu)
{
    if (numa_available() < 0 || cpu < 0) return 0;
    int node = numa_node_of_cpu(cpu);
    return node >= 0 ? node : 0;
}

int rcumaps_numa_nearest_node_with_memory(int node, int count, const unsigned char *has_memory,
                                          const int *distances)
{
    if (node < 0 || node >= count) return -1;
    if (has_memory[node]) return node;
    int best = -1, best_distance = 0;
    for (int other = 0; other < count; other++) {
        if (!has_memory[other]) continue;
        int distance = distances[node * count + other];
        if (distance <= 0) continue; /* unknown */
        if (best < 0 || distance < best_distance) {
            best = other;
            best_distance = distance;
        }
    }
    return best;
}

int rcumaps_numa_nearest_with_memory(int node)
{
    int count = numa_max_node() + 1;
    if (count <= 0 || count > 1024 || node < 0 || node >= count) return -1;
    unsigned char *has_memory = calloc((size_t)count, 1);
    int *distances = calloc((size_t)count * (size_t)count, sizeof *distances);
    int nearest = -1;
    if (has_memory && distances) {
        for (int other = 0; other < count; other++) {
            long long free_bytes = 0;
            has_memory[other] = numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)other)
                && numa_node_size64(other, &free_bytes) > 0;
            distances[node * count + other] = numa_distance(node, other);
        }
        nearest = rcumaps_numa_nearest_node_with_memory(node, count, has_memory, distances);
    }
    free(has_memory);
    free(distances);
    return nearest;
}

int rcumaps_numa_prefer_node(void *addr, size_t size, int node)
{
    enum { words = 16, bits_per_word = 8 * sizeof(unsigned long) };
    if (numa_available() < 0) return ENOSYS;
    if (node < 0 || node >= words * (int)bits_per_word) return EINVAL;
    unsigned long mask[words] = { 0 };
    mask[node / bits_per_word] = 1UL << (node % bits_per_word);
    /* MPOL_PREFERRED: the pages go to `node` when first touched, and elsewhere if it is full
     * (MPOL_BIND would fail the allocation instead). */
    if (mbind(addr, size, MPOL_PREFERRED, mask, words * bits_per_word, 0) == 0) return 0;
    int err = errno;
    /* A node without memory (online, with CPUs): the kernel refuses a preference for it
     * (EINVAL), and the pages went wherever the first touch was. Linux's map memory for such
     * a node comes from the nearest node with memory (its zonelist); so does this (found by
     * review, 2026-12-06). */
    int nearest = err == EINVAL ? rcumaps_numa_nearest_with_memory(node) : -1;
    if (nearest < 0 || nearest == node || nearest >= words * (int)bits_per_word) return err;
    memset(mask, 0, sizeof mask);
    mask[nearest / bits_per_word] = 1UL << (nearest % bits_per_word);
    return mbind(addr, size, MPOL_PREFERRED, mask, words * bits_per_word, 0) == 0 ? 0 : errno;
}

int rcumaps_numa_preferred_node_of_address(void *addr)
{
    enum { words = 16, bits_per_word = 8 * sizeof(unsigned long) };
    if (numa_available() < 0) return -2;
    int mode = -1;
    unsigned long mask[words] = { 0 };
    if (get_mempolicy(&mode, mask, words * bits_per_word, addr, MPOL_F_ADDR) != 0) return -2;
    if (mode != MPOL_PREFERRED) return -1;
    for (int node = 0; node < words * (int)bits_per_word; node++) {
        if (mask[node / bits_per_word] & (1UL << (node % bits_per_word))) return node;
    }
    return -1;
}

int rcumaps_numa_node_of_address(void *addr)
{
    int node = -1;
    if (numa_available() < 0) return -1;
    if (get_mempolicy(&node, NULL, 0, addr, MPOL_F_NODE | MPOL_F_ADDR) != 0) return -1;
    return node;
}

/* ---------------------------------------------------------------------------
 * Futex
 * ------------------------------------------------------------------------- */

void rcumaps_futex_wait(void *addr, uint32_t expected)
{
    (void)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void rcumaps_futex_wake(void *addr, int count)
{
    (void)syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* ---------------------------------------------------------------------------
 * Transparent huge pages
 * ------------------------------------------------------------------------- */

void rcumaps_advise_huge_pages(void *addr, size_t size)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (size < 2 * huge) return;
    uintptr_t start = ((uintptr_t)addr + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)addr + size) & ~(huge - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)addr;
    (void)size;
#endif
}

void rcumaps_section_underflow(void)
{
    /* Undo the wrap first, so that nothing run while the process stops sees a bogus depth. */
    rcumaps_tls.nesting = 0;
    fprintf(stderr, "rcumaps: an epoch section was left more times than it was entered "
                    "(an Epoch.exit() inside Epoch.withSection, with no Epoch.enter() of its own)\n");
    abort();
}
