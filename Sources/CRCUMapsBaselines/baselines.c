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

/* ------------------------------------------------ open addressing behind a rwlock */

rcumaps_baseline_rwoa_t *rcumaps_baseline_rwoa_create(size_t capacity)
{
    size_t size = 16;
    while (size < capacity * 2) size <<= 1;
    rcumaps_baseline_rwoa_t *table = malloc(sizeof *table);
    if (!table) return NULL;
    table->table.slots = calloc(size, sizeof(struct rcumaps_baseline_oa_slot));
    if (!table->table.slots || pthread_rwlock_init(&table->lock, NULL) != 0) {
        free(table->table.slots);
        free(table);
        return NULL;
    }
    table->table.mask = size - 1;
    table->count = 0;
    table->capacity = capacity;
    return table;
}

/* The slot holding `key`, or the empty slot that ends its probe sequence. Lock held. */
static size_t rwoa_find(const struct rcumaps_baseline_oa *table, uint64_t key)
{
    size_t index = rcumaps_baseline_mix64(key) & table->mask;
    while (table->slots[index].key != 0 && table->slots[index].key != key) index = (index + 1) & table->mask;
    return index;
}

int rcumaps_baseline_rwoa_insert_unique(rcumaps_baseline_rwoa_t *table, uint64_t key, uint64_t value)
{
    if (key == 0) return -1;
    int result;
    pthread_rwlock_wrlock(&table->lock);
    size_t index = rwoa_find(&table->table, key);
    if (table->table.slots[index].key == key) {
        result = 0;
    } else if (table->count >= table->capacity) {
        result = -1;
    } else {
        table->table.slots[index].key = key;
        table->table.slots[index].value = value;
        table->count++;
        result = 1;
    }
    pthread_rwlock_unlock(&table->lock);
    return result;
}

int rcumaps_baseline_rwoa_update(rcumaps_baseline_rwoa_t *table, uint64_t key, uint64_t value)
{
    if (key == 0) return -1;
    int result = -1;
    pthread_rwlock_wrlock(&table->lock);
    size_t index = rwoa_find(&table->table, key);
    if (table->table.slots[index].key == key) {
        table->table.slots[index].value = value;
        result = 0;
    }
    pthread_rwlock_unlock(&table->lock);
    return result;
}

int rcumaps_baseline_rwoa_delete(rcumaps_baseline_rwoa_t *table, uint64_t key)
{
    if (key == 0) return 0;
    struct rcumaps_baseline_oa *oa = &table->table;
    pthread_rwlock_wrlock(&table->lock);
    size_t hole = rwoa_find(oa, key);
    if (oa->slots[hole].key != key) {
        pthread_rwlock_unlock(&table->lock);
        return 0;
    }
    /* Backward shift: a key after the hole moves into it unless its home slot lies
     * cyclically in (hole, next], where the probe from its home still reaches it. */
    for (size_t next = (hole + 1) & oa->mask; oa->slots[next].key != 0; next = (next + 1) & oa->mask) {
        size_t home = rcumaps_baseline_mix64(oa->slots[next].key) & oa->mask;
        int stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
        if (stays) continue;
        oa->slots[hole] = oa->slots[next];
        hole = next;
    }
    oa->slots[hole].key = 0;
    oa->slots[hole].value = 0;
    table->count--;
    pthread_rwlock_unlock(&table->lock);
    return 1;
}

size_t rcumaps_baseline_rwoa_count(rcumaps_baseline_rwoa_t *table)
{
    pthread_rwlock_rdlock(&table->lock);
    size_t count = table->count;
    pthread_rwlock_unlock(&table->lock);
    return count;
}

void rcumaps_baseline_rwoa_destroy(rcumaps_baseline_rwoa_t *table)
{
    pthread_rwlock_destroy(&table->lock);
    free(table->table.slots);
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

/* ------------------------------------------------------------- LPM Patricia trie */

struct lpm_node {
    struct lpm_node *child[2];
    uint32_t prefix_len;
    uint32_t intermediate;  /* 1: a branching point, not a stored prefix */
    uint64_t value;
    uint8_t data[];         /* data_size bytes, big-endian bit order */
};

struct rcumaps_baseline_lpm {
    struct lpm_node *root;
    size_t data_size;
    uint32_t max_len;
};

static inline int lpm_bit(const uint8_t *data, uint32_t index)
{
    return (data[index / 8] >> (7 - index % 8)) & 1;
}

/* How many leading bits of `a` and `b` agree, at most `limit`: 8, then 4, 2 and 1 bytes
 * at a time, each step one XOR and a count of leading zeros. */
static inline uint32_t lpm_common_bits(const uint8_t *a, const uint8_t *b, size_t size, uint32_t limit)
{
    uint32_t bits = 0;
    size_t i = 0;
    while (size >= i + 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        uint64_t diff = __builtin_bswap64(x ^ y);
        if (diff) { bits += (uint32_t)__builtin_clzll(diff); return bits < limit ? bits : limit; }
        bits += 64;
        if (bits >= limit) return limit;
        i += 8;
    }
    if (size >= i + 4) {
        uint32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        uint32_t diff = __builtin_bswap32(x ^ y);
        if (diff) { bits += (uint32_t)__builtin_clz(diff); return bits < limit ? bits : limit; }
        bits += 32;
        if (bits >= limit) return limit;
        i += 4;
    }
    while (size > i) {
        uint8_t diff = a[i] ^ b[i];
        if (diff) { bits += (uint32_t)__builtin_clz((unsigned)diff) - 24; return bits < limit ? bits : limit; }
        bits += 8;
        if (bits >= limit) return limit;
        i += 1;
    }
    return bits < limit ? bits : limit;
}

rcumaps_baseline_lpm_t *rcumaps_baseline_lpm_create(size_t data_size)
{
    if (data_size < 1 || data_size > 256) return NULL;
    rcumaps_baseline_lpm_t *trie = calloc(1, sizeof *trie);
    if (!trie) return NULL;
    trie->data_size = data_size;
    trie->max_len = (uint32_t)(data_size * 8);
    return trie;
}

static struct lpm_node *lpm_new_node(const rcumaps_baseline_lpm_t *trie, uint32_t prefix_len, const uint8_t *data,
                                     uint64_t value, uint32_t intermediate)
{
    struct lpm_node *node = malloc(sizeof *node + trie->data_size);
    if (!node) return NULL;
    node->child[0] = node->child[1] = NULL;
    node->prefix_len = prefix_len;
    node->intermediate = intermediate;
    node->value = value;
    memcpy(node->data, data, trie->data_size);
    return node;
}

int rcumaps_baseline_lpm_insert(rcumaps_baseline_lpm_t *trie, uint32_t prefix_len, const uint8_t *data, uint64_t value)
{
    if (prefix_len > trie->max_len) return -1;
    struct lpm_node **slot = &trie->root;
    struct lpm_node *node;
    uint32_t common = 0;
    /* Descend while the node's whole prefix is a proper prefix of the new one. */
    while ((node = *slot)) {
        common = lpm_common_bits(node->data, data, trie->data_size,
                                 node->prefix_len < prefix_len ? node->prefix_len : prefix_len);
        if (common != node->prefix_len || node->prefix_len == prefix_len) break;
        slot = &node->child[lpm_bit(data, node->prefix_len)];
    }
    if (!node) {
        *slot = lpm_new_node(trie, prefix_len, data, value, 0);
        return *slot ? 0 : -1;
    }
    if (node->prefix_len == common && node->prefix_len == prefix_len) {
        /* The same prefix (stored, or a branching point that becomes a stored prefix). */
        node->value = value;
        node->intermediate = 0;
        return 0;
    }
    struct lpm_node *fresh = lpm_new_node(trie, prefix_len, data, value, 0);
    if (!fresh) return -1;
    if (common == prefix_len) {
        /* The new prefix covers the node: it becomes the node's parent. */
        fresh->child[lpm_bit(node->data, common)] = node;
        *slot = fresh;
        return 0;
    }
    /* They part at bit `common`: a branching point holds both. */
    struct lpm_node *branch = lpm_new_node(trie, common, node->data, 0, 1);
    if (!branch) { free(fresh); return -1; }
    int side = lpm_bit(data, common);
    branch->child[side] = fresh;
    branch->child[!side] = node;
    *slot = branch;
    return 0;
}

int rcumaps_baseline_lpm_lookup(const rcumaps_baseline_lpm_t *trie, const uint8_t *data, uint64_t *value)
{
    const struct lpm_node *found = NULL;
    const struct lpm_node *node = trie->root;
    while (node) {
        uint32_t common = lpm_common_bits(node->data, data, trie->data_size, node->prefix_len);
        if (common < node->prefix_len) break;
        if (!node->intermediate) found = node;
        if (node->prefix_len == trie->max_len) break;
        node = node->child[lpm_bit(data, node->prefix_len)];
    }
    if (!found) return 0;
    *value = found->value;
    return 1;
}

static void lpm_free(struct lpm_node *node)
{
    if (!node) return;
    lpm_free(node->child[0]);
    lpm_free(node->child[1]);
    free(node);
}

void rcumaps_baseline_lpm_destroy(rcumaps_baseline_lpm_t *trie)
{
    if (!trie) return;
    lpm_free(trie->root);
    free(trie);
}
