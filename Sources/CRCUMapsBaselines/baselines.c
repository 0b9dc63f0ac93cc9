/* Writers and setup for the baselines; the lookups are inline in the header. The header
 * comes first: it reads urcu-memb.h with _LGPL_SOURCE (liburcu's inline read lock, as
 * RCUMaps' default build uses), so the baseline pays what a C user of liburcu pays. */
#include "CRCUMapsBaselines.h"

#include <stdlib.h>
#include <malloc.h>
#include <string.h>

/* ---------------------------------------------------------------- rculfhash */

#define ensure_registered() rcumaps_baseline_ensure_registered()

static void free_node(struct rcu_head *head)
{
    free(caa_container_of(head, struct rcumaps_baseline_lfht_node, rcu));
}

int rcumaps_baseline_lfht_match(struct cds_lfht_node *lfht_node, const void *key)
{
    return caa_container_of(lfht_node, struct rcumaps_baseline_lfht_node, lfht)->key == *(const uint64_t *)key;
}

rcumaps_baseline_lfht_t *rcumaps_baseline_lfht_create(size_t capacity)
{
    ensure_registered();
    unsigned long max = 1;
    while (max < capacity && max < (1UL << 31)) max <<= 1;
    rcumaps_baseline_lfht_t *table = malloc(sizeof *table);
    if (!table) return NULL;
    /* Same sizing as RCUMaps' RawLockFreeHashMap: buckets for the capacity up to 2^16. */
    table->ht = cds_lfht_new_flavor(max < 65536 ? max : 65536, 1, max,
                                    CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, &urcu_memb_flavor, NULL);
    if (!table->ht) { free(table); return NULL; }
    return table;
}

static struct rcumaps_baseline_lfht_node *new_node(uint64_t key, uint64_t value)
{
    struct rcumaps_baseline_lfht_node *node = malloc(sizeof *node);
    if (!node) return NULL;
    cds_lfht_node_init(&node->lfht);
    node->key = key;
    node->value = value;
    return node;
}

int rcumaps_baseline_lfht_insert(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t value)
{
    return rcumaps_baseline_lfht_update(table, key, value); /* declared in the header */
}

int rcumaps_baseline_lfht_update(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t value)
{
    ensure_registered();
    struct rcumaps_baseline_lfht_node *node = new_node(key, value);
    if (!node) return -1;
    urcu_memb_read_lock();
    struct cds_lfht_node *old = cds_lfht_add_replace(table->ht, rcumaps_baseline_mix64(key), rcumaps_baseline_lfht_match, &key, &node->lfht);
    urcu_memb_read_unlock();
    if (old) urcu_memb_call_rcu(&caa_container_of(old, struct rcumaps_baseline_lfht_node, lfht)->rcu, free_node);
    return 0;
}

int rcumaps_baseline_lfht_insert_unique(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t value)
{
    ensure_registered();
    struct rcumaps_baseline_lfht_node *node = new_node(key, value);
    if (!node) return -1;
    urcu_memb_read_lock();
    struct cds_lfht_node *got = cds_lfht_add_unique(table->ht, rcumaps_baseline_mix64(key), rcumaps_baseline_lfht_match, &key, &node->lfht);
    urcu_memb_read_unlock();
    if (got != &node->lfht) { free(node); return 0; }
    return 1;
}

int rcumaps_baseline_lfht_delete(rcumaps_baseline_lfht_t *table, uint64_t key)
{
    struct cds_lfht_iter iter;
    int deleted = 0;
    ensure_registered();
    urcu_memb_read_lock();
    cds_lfht_lookup(table->ht, rcumaps_baseline_mix64(key), rcumaps_baseline_lfht_match, &key, &iter);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&iter);
    if (node && cds_lfht_del(table->ht, node) == 0) {
        urcu_memb_call_rcu(&caa_container_of(node, struct rcumaps_baseline_lfht_node, lfht)->rcu, free_node);
        deleted = 1;
    }
    urcu_memb_read_unlock();
    return deleted;
}

void rcumaps_baseline_lfht_destroy(rcumaps_baseline_lfht_t *table)
{
    ensure_registered();
    struct cds_lfht_iter iter;
    struct cds_lfht_node *node;
    urcu_memb_read_lock();
    cds_lfht_for_each(table->ht, &iter, node) {
        if (cds_lfht_del(table->ht, node) == 0)
            urcu_memb_call_rcu(&caa_container_of(node, struct rcumaps_baseline_lfht_node, lfht)->rcu, free_node);
    }
    urcu_memb_read_unlock();
    urcu_memb_barrier();
    cds_lfht_destroy(table->ht, NULL);
    free(table);
}

/* ------------------------------------------------------------ open addressing */

rcumaps_baseline_oa_t *rcumaps_baseline_oa_create(size_t capacity)
{
    size_t size = 16;
    while (size < capacity * 2) size <<= 1;
    rcumaps_baseline_oa_t *table = malloc(sizeof *table);
    if (!table) return NULL;
    table->slots = calloc(size, sizeof(struct rcumaps_baseline_oa_slot));
    if (!table->slots) { free(table); return NULL; }
    table->mask = size - 1;
    return table;
}

int rcumaps_baseline_oa_insert(rcumaps_baseline_oa_t *table, uint64_t key, uint64_t value)
{
    if (key == 0) return -1;
    for (size_t index = rcumaps_baseline_mix64(key) & table->mask;; index = (index + 1) & table->mask) {
        if (table->slots[index].key == 0 || table->slots[index].key == key) {
            table->slots[index].key = key;
            table->slots[index].value = value;
            return 0;
        }
    }
}

void rcumaps_baseline_oa_destroy(rcumaps_baseline_oa_t *table)
{
    free(table->slots);
    free(table);
}

/* ------------------------------------------------------------- wfcqueue */

rcumaps_baseline_wfcq_t *rcumaps_baseline_wfcq_create(void)
{
    void *memory = NULL;
    if (posix_memalign(&memory, 64, sizeof(rcumaps_baseline_wfcq_t)) != 0) return NULL;
    rcumaps_baseline_wfcq_t *queue = memory;
    cds_wfcq_init(&queue->head, &queue->tail);
    return queue;
}

void rcumaps_baseline_wfcq_destroy(rcumaps_baseline_wfcq_t *queue)
{
    uint64_t value;
    while (rcumaps_baseline_wfcq_pop(queue, &value)) {}
    cds_wfcq_destroy(&queue->head, &queue->tail);
    free(queue);
}

/* -------------------------------------------------------------- lfstack */

rcumaps_baseline_lfs_t *rcumaps_baseline_lfs_create(void)
{
    void *memory = NULL;
    if (posix_memalign(&memory, 64, sizeof(rcumaps_baseline_lfs_t)) != 0) return NULL;
    rcumaps_baseline_lfs_t *stack = memory;
    cds_lfs_init(&stack->stack);
    return stack;
}

void rcumaps_baseline_lfs_destroy(rcumaps_baseline_lfs_t *stack)
{
    /* Nobody pushes or pops any more: the nodes left are freed at once. */
    struct cds_lfs_head *head = __cds_lfs_pop_all(&stack->stack);
    struct cds_lfs_node *node, *next;
    cds_lfs_for_each_safe(head, node, next)
        free(caa_container_of(node, struct rcumaps_baseline_lfs_node, node));
    cds_lfs_destroy(&stack->stack);
    free(stack);
}

/* ---------------------------------------------------------------------------
 * Heap figures for `rcumaps memory`
 * ------------------------------------------------------------------------- */

long long rcumaps_heap_bytes_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    return (long long)(info.uordblks + info.hblkhd);
#else
    return -1;
#endif
}

int rcumaps_heap_trim(void)
{
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int rcumaps_heap_figures_see_malloc(void)
{
    long long before = rcumaps_heap_bytes_in_use();
    if (before < 0) return 0;
    const size_t size = (size_t)1 << 20;
    /* volatile: the compiler may not elide an allocation nobody reads. */
    char *volatile probe = malloc(size);
    if (!probe) return 0;
    memset(probe, 1, size);
    long long after = rcumaps_heap_bytes_in_use();
    free(probe);
    return after - before >= (long long)size;
}
