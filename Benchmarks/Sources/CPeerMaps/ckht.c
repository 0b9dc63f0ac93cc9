/* ConcurrencyKit ck_ht, used as its manual pages describe: CK_HT_MODE_DIRECT with
 * CK_HT_WORKLOAD_DELETE (the benchmarks delete as often as they insert), readers with
 * ck_ht_get_spmc inside ck_epoch sections, writers (ck_ht_set_spmc, ck_ht_put_spmc,
 * ck_ht_remove_spmc) one at a time, and a ck_malloc allocator whose deferred frees wait
 * for a grace period through ck_epoch.
 *
 * ck_ht is single-writer, multi-reader (SPMC): any number of ck_ht_get_spmc may run
 * concurrently with one writer, never two writers at once. A ConcurrencyKit spinlock per
 * table (ck_spinlock, exponential backoff) serialises the writers, as a ConcurrencyKit
 * user would; readers never take it. (It was a pthread mutex, whose waiter sleeps in the
 * kernel: ck_ht's two-thread writes ran at half their one-thread rate. Found by review,
 * 2026-12-05.) */
#include <ck_spinlock.h>
#include "CPeerMaps.h"

#include <ck_epoch.h>
#include <ck_ht.h>
#include <ck_malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct rcumaps_peer_ckht {
    ck_ht_t ht;
    /* Serialises the writers (ck_ht is single-writer). */
    ck_spinlock_t writer;
    /* The epoch record that defers this table's frees: used only by the thread that holds
     * `writer`, so one record per table is never used by two threads at once. */
    ck_epoch_record_t *reclaimer;
};

/* ------------------------------------------------------------------ epoch */

/* One epoch domain for every ck_ht table of the process. */
static ck_epoch_t peer_epoch;
static pthread_once_t peer_epoch_once = PTHREAD_ONCE_INIT;
/* Unregisters a thread's reader record when the thread exits (its destructor). */
static pthread_key_t reader_key;
/* This thread's reader record, registered on its first lookup. */
static _Thread_local ck_epoch_record_t *reader_record;
/* The table whose writer lock this thread holds: the allocator's free, which has no
 * context argument, defers through that table's reclaimer. */
static _Thread_local struct rcumaps_peer_ckht *writing;

static void unregister_reader(void *record)
{
    /* Reader records never defer anything (only reclaimers do): nothing is pending. */
    ck_epoch_unregister(record);
}

static void init_epoch(void)
{
    ck_epoch_init(&peer_epoch);
    if (pthread_key_create(&reader_key, unregister_reader) != 0) {
        fputs("CPeerMaps: pthread_key_create failed\n", stderr);
        abort();
    }
}

/* A record of the epoch domain: an unregistered one reused, or a new one. Records are
 * never freed (ck_epoch keeps them; unregistered ones are recycled). NULL without memory. */
static ck_epoch_record_t *acquire_record(void)
{
    pthread_once(&peer_epoch_once, init_epoch);
    ck_epoch_record_t *record = ck_epoch_recycle(&peer_epoch, NULL);
    if (record) return record;
    /* ck_epoch_record_t is cache-line aligned: its size is a multiple of the alignment. */
    record = aligned_alloc(_Alignof(ck_epoch_record_t), sizeof *record);
    if (!record) return NULL;
    ck_epoch_register(&peer_epoch, record, NULL);
    return record;
}

static ck_epoch_record_t *register_reader(void)
{
    ck_epoch_record_t *record = acquire_record();
    if (!record || pthread_setspecific(reader_key, record) != 0) {
        fputs("CPeerMaps: cannot register a ck_epoch record for this thread\n", stderr);
        abort();
    }
    reader_record = record;
    return record;
}

static inline ck_epoch_record_t *current_reader(void)
{
    ck_epoch_record_t *record = reader_record;
    if (__builtin_expect(record != NULL, 1)) return record;
    return register_reader();
}

/* -------------------------------------------------------------- allocator */

/* Every block carries the ck_epoch_entry its deferred free needs, in front of the bytes
 * ck_ht sees (which ck_ht aligns to a cache line itself). */
union block_header {
    ck_epoch_entry_t entry;
    max_align_t alignment;
};

static void *peer_malloc(size_t size)
{
    union block_header *header = malloc(sizeof *header + size);
    return header ? header + 1 : NULL;
}

static void free_block(ck_epoch_entry_t *entry)
{
    free((union block_header *)entry);
}

/* `defer` is true when readers may still be reading the block (a table replaced by a
 * resize): it is freed after a grace period. */
static void peer_free(void *pointer, size_t size, bool defer)
{
    (void)size;
    if (!pointer) return;
    union block_header *header = (union block_header *)pointer - 1;
    if (!defer) {
        free(header);
        return;
    }
    if (!writing) {
        /* ck_ht defers frees only from its writers, which all run under a table's writer lock. */
        fputs("CPeerMaps: ck_ht deferred a free outside a writer\n", stderr);
        abort();
    }
    ck_epoch_call(writing->reclaimer, &header->entry, free_block);
}

static struct ck_malloc peer_allocator = {
    .malloc = peer_malloc,
    .realloc = NULL, /* ck_ht never reallocates */
    .free = peer_free,
};

/* ------------------------------------------------------------------ table */

/* A fixed seed for the default hash (MurmurHash64A), so that runs are comparable. */
#define PEER_CKHT_SEED 0x5bd1e995u

static inline int reserved(uint64_t key)
{
    return key == (uint64_t)CK_HT_KEY_EMPTY || key == (uint64_t)CK_HT_KEY_TOMBSTONE;
}

static void writer_enter(rcumaps_peer_ckht_t *table)
{
    ck_spinlock_lock_eb(&table->writer);
    writing = table;
}

static void writer_exit(rcumaps_peer_ckht_t *table)
{
    /* Frees deferred by this write (a resize) run once no reader can see them. */
    if (table->reclaimer->n_pending > 0) ck_epoch_poll(table->reclaimer);
    writing = NULL;
    ck_spinlock_unlock(&table->writer);
}

rcumaps_peer_ckht_t *rcumaps_peer_ckht_create(size_t capacity)
{
    rcumaps_peer_ckht_t *table = malloc(sizeof *table);
    if (!table) return NULL;
    table->reclaimer = acquire_record();
    if (!table->reclaimer) { free(table); return NULL; }
    ck_spinlock_init(&table->writer);
    /* NULL hash callback: ck_ht's default hash. Twice `capacity` slots: ck_ht grows once
     * half its slots are taken, and churn keeps about half of `capacity` keys in the table
     * with tombstones besides, so a table of `capacity` slots grew mid-run (found by
     * review, 2026-12-05); with twice as many, none grows while measured, as the header
     * says of every peer. */
    if (!ck_ht_init(&table->ht, CK_HT_MODE_DIRECT | CK_HT_WORKLOAD_DELETE, NULL, &peer_allocator, 2 * capacity,
                    PEER_CKHT_SEED)) {
        ck_epoch_unregister(table->reclaimer);
        free(table);
        return NULL;
    }
    return table;
}

int rcumaps_peer_ckht_lookup(rcumaps_peer_ckht_t *table, uint64_t key, uint64_t *value)
{
    if (reserved(key)) return 0;
    ck_ht_hash_t hash;
    ck_ht_entry_t entry;
    ck_ht_hash_direct(&hash, &table->ht, (uintptr_t)key);
    ck_ht_entry_key_set_direct(&entry, (uintptr_t)key);
    ck_epoch_record_t *record = current_reader();
    ck_epoch_begin(record, NULL);
    int found = ck_ht_get_spmc(&table->ht, hash, &entry);
    ck_epoch_end(record, NULL);
    if (found) *value = (uint64_t)ck_ht_entry_value_direct(&entry);
    return found;
}

int rcumaps_peer_ckht_upsert(rcumaps_peer_ckht_t *table, uint64_t key, uint64_t value)
{
    if (reserved(key)) return -1;
    ck_ht_hash_t hash;
    ck_ht_entry_t entry;
    ck_ht_hash_direct(&hash, &table->ht, (uintptr_t)key);
    ck_ht_entry_set_direct(&entry, hash, (uintptr_t)key, (uintptr_t)value);
    writer_enter(table);
    bool stored = ck_ht_set_spmc(&table->ht, hash, &entry);
    writer_exit(table);
    return stored ? 0 : -1;
}

int rcumaps_peer_ckht_insert(rcumaps_peer_ckht_t *table, uint64_t key, uint64_t value)
{
    if (reserved(key)) return -1;
    ck_ht_hash_t hash;
    ck_ht_entry_t entry;
    ck_ht_hash_direct(&hash, &table->ht, (uintptr_t)key);
    ck_ht_entry_set_direct(&entry, hash, (uintptr_t)key, (uintptr_t)value);
    writer_enter(table);
    /* Looked up first: ck_ht_put_spmc takes the first tombstone on the key's probe path
     * without looking further, so after deletes it stored a second copy of a key that was
     * present and reported it inserted (a churn run counted thousands of such inserts and
     * kept deleted keys findable; found by review, 2026-12-06). The table cannot change
     * between the two calls: we hold the writer lock. */
    ck_ht_entry_t probe;
    ck_ht_entry_key_set_direct(&probe, (uintptr_t)key);
    int result;
    if (ck_ht_get_spmc(&table->ht, hash, &probe)) {
        result = 0;
    } else {
        /* Absent: put fails only when growing the table failed. */
        result = ck_ht_put_spmc(&table->ht, hash, &entry) ? 1 : -1;
    }
    writer_exit(table);
    return result;
}

int rcumaps_peer_ckht_remove(rcumaps_peer_ckht_t *table, uint64_t key)
{
    if (reserved(key)) return 0;
    ck_ht_hash_t hash;
    ck_ht_entry_t entry;
    ck_ht_hash_direct(&hash, &table->ht, (uintptr_t)key);
    ck_ht_entry_key_set_direct(&entry, (uintptr_t)key);
    writer_enter(table);
    bool removed = ck_ht_remove_spmc(&table->ht, hash, &entry);
    writer_exit(table);
    return removed ? 1 : 0;
}

size_t rcumaps_peer_ckht_count(rcumaps_peer_ckht_t *table)
{
    return (size_t)ck_ht_count(&table->ht);
}

void rcumaps_peer_ckht_destroy(rcumaps_peer_ckht_t *table)
{
    writer_enter(table);
    /* Waits for a grace period and runs every free this table deferred. */
    ck_epoch_barrier(table->reclaimer);
    ck_ht_destroy(&table->ht);
    writing = NULL;
    ck_spinlock_unlock(&table->writer);
    ck_epoch_unregister(table->reclaimer);
    free(table);
}
