/*
 * The LPM trie readers' walk (RawLPMTrieMap, RCUBaseMaps): the node layout is described in
 * CRCUMapsShim.h and LPMNodes.swift. In C so that the two population counts of a
 * compressed node's step are POPCNT instructions where the CPU has them: baseline x86-64,
 * which Swift code of a package is compiled for, counts bits in software (a dozen
 * instructions each). The same walk is compiled twice, with and without the `popcnt`
 * target, and the CPU decides which one runs.
 */
#include "CRCUMapsShim.h"

#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#define LPM_INLINE static inline __attribute__((always_inline))

LPM_INLINE uint16_t lpm_u16(const uint8_t *node, size_t offset)
{
    uint16_t value;
    memcpy(&value, node + offset, 2);
    return value;
}

LPM_INLINE const uint8_t *lpm_ptr(const uint8_t *at)
{
    const uint8_t *value;
    memcpy(&value, at, sizeof value);
    return value;
}

/* The path (80) padded to 8: where a compressed node's child words start. */
LPM_INLINE size_t lpm_after_path(size_t depth)
{
    return RCUMAPS_LPM_HEADER_SIZE + ((depth + 7) & ~(size_t)7);
}

/* Where a direct-indexed node's 16-byte slots start: the path's end rounded up to 16. */
LPM_INLINE size_t lpm_direct_slots(size_t depth)
{
    return (lpm_after_path(depth) + 15) & ~(size_t)15;
}

/* Whether the first `length` bits of a and b are equal. */
LPM_INLINE int lpm_bits_equal(const uint8_t *a, const uint8_t *b, size_t length)
{
    size_t whole = length >> 3, rest = length & 7;
    if (whole > 0 && memcmp(a, b, whole) != 0) return 0;
    if (rest == 0) return 1;
    uint8_t mask = (uint8_t)(0xFF00u >> rest);
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

/* The longest of a node's own prefixes no longer than `length` that matches `data`: for a
 * query whose length ends inside the node's stride (the per-slot best may be longer). */
LPM_INLINE const uint8_t *lpm_scan_own(const uint8_t *node, size_t depth, int direct,
                                       const uint8_t *data, size_t length)
{
    const uint8_t *own = direct
        ? node + lpm_direct_slots(depth) + 16 * 256
        : node + lpm_after_path(depth) + 8 * ((size_t)lpm_u16(node, 66) + lpm_u16(node, 68));
    const uint8_t *best = NULL;
    long best_length = -1;
    for (size_t index = 0, count = lpm_u16(node, 70); index < count; index++) {
        const uint8_t *entry = lpm_ptr(own + 8 * index);
        uint32_t entry_length;
        memcpy(&entry_length, entry, 4);
        if (entry_length <= length && (long)entry_length > best_length &&
            lpm_bits_equal(entry + 4, data, entry_length)) {
            best = entry;
            best_length = entry_length;
        }
    }
    return best;
}

LPM_INLINE const void *lpm_walk(const uint8_t *root, const uint8_t *data, size_t length)
{
    const uint8_t *node = root;
    size_t depth = 0;
    int direct = 1;
    const uint8_t *best = NULL;
    for (;;) {
        if (length < 8 * depth + 8) {
            const uint8_t *own = lpm_scan_own(node, depth, direct, data, length);
            return own ? own : best;
        }
        unsigned slot = data[depth];
        uintptr_t word;
        if (direct) {
            /* One 16-byte slot: the child word and the slot's best entry, one cache line. */
            const uint8_t *at = node + lpm_direct_slots(depth) + 16 * (size_t)slot;
            const uint8_t *entry = lpm_ptr(at + 8);
            if (entry) {
                best = entry;
                __builtin_prefetch(entry);
            }
            /* Acquiring: a writer may just have stored a new subtree into this slot. */
            word = __atomic_load_n((const uintptr_t *)at, __ATOMIC_ACQUIRE);
            if (word == 0) return best;
        } else {
            unsigned w = slot >> 6, bit = slot & 63;
            uint64_t child_bits, run_bits;
            memcpy(&child_bits, node + 8 * w, 8);
            memcpy(&run_bits, node + 32 + 8 * w, 8);
            size_t child_count = lpm_u16(node, 66);
            size_t child_index = node[72 + w] + (size_t)__builtin_popcountll(child_bits & ((UINT64_C(1) << bit) - 1));
            size_t run_index = node[76 + w] + (size_t)__builtin_popcountll(run_bits & ((UINT64_C(2) << bit) - 1)) - 1;
            const uint8_t *children = node + lpm_after_path(depth);
            const uint8_t *entry = lpm_ptr(children + 8 * (child_count + run_index));
            if (entry) {
                best = entry;
                __builtin_prefetch(entry);
            }
            if (((child_bits >> bit) & 1) == 0) return best;
            word = __atomic_load_n((const uintptr_t *)(children + 8 * child_index), __ATOMIC_ACQUIRE);
        }
        const uint8_t *child = (const uint8_t *)(word & ~(uintptr_t)RCUMAPS_LPM_TAG_MASK);
        size_t delta = (word >> 1) & 31;
        size_t child_depth = delta == RCUMAPS_LPM_FAR_DELTA
            ? (size_t)(lpm_u16(child, 64) & ~RCUMAPS_LPM_DIRECT_FLAG)
            : depth + 1 + delta;
        /* The child's prefixes are at least 8 * child_depth + 1 bits long. */
        if (length < 8 * child_depth + 1) return best;
        /* Skipped strides held nothing: the key must still follow the child's path. */
        if (child_depth > depth + 1 &&
            memcmp(data + depth + 1, child + RCUMAPS_LPM_HEADER_SIZE + depth + 1, child_depth - depth - 1) != 0)
            return best;
        node = child;
        depth = child_depth;
        direct = (int)(word & 1);
    }
}

static const void *lpm_walk_generic(const uint8_t *root, const uint8_t *data, size_t length)
{
    return lpm_walk(root, data, length);
}

#if defined(__x86_64__)
__attribute__((target("popcnt")))
static const void *lpm_walk_popcnt(const uint8_t *root, const uint8_t *data, size_t length)
{
    return lpm_walk(root, data, length);
}

/* Set once, before main (a constructor), read-only afterwards. */
static int lpm_has_popcnt;

__attribute__((constructor))
static void lpm_detect_popcnt(void)
{
    unsigned a, b, c, d;
    lpm_has_popcnt = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_POPCNT) != 0;
}
#endif

const void *rcumaps_lpm_longest_match(const void *root, const uint8_t *data, size_t length)
{
#if defined(__x86_64__)
    if (lpm_has_popcnt) return lpm_walk_popcnt(root, data, length);
#endif
    return lpm_walk_generic(root, data, length);
}
