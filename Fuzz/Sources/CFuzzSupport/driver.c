/*
 * The hand-off from a fuzz target's entry point to libFuzzer, and the replay mode.
 *
 * How a target starts: SwiftPM compiles an executable's main.swift with its entry point
 * renamed to <module>_main and links the executable with `--defsym main=<module>_main`.
 * With -sanitize=fuzzer the Swift driver links libFuzzer as a whole archive, so libFuzzer's
 * own `main` (FuzzerMain.o) is in the link too, but the --defsym wins: the process starts
 * in our Swift code, which calls rcf_main, which calls LLVMFuzzerRunDriver with the
 * command line and the target's callback. FuzzerMain.o still references
 * LLVMFuzzerTestOneInput, so it is defined below (forwarding to the same callback).
 *
 * LLVMFuzzerRunDriver is a weak reference: without -sanitize=fuzzer it is NULL, and the
 * binary still builds and replays inputs (`--replay`).
 */
#define _GNU_SOURCE
#include "CFuzzSupport.h"

#include <sched.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size))
    __attribute__((weak));

static rcf_callback_t registered_callback;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return registered_callback ? registered_callback(data, size) : 0;
}

int rcf_fuzzer_linked(void) { return LLVMFuzzerRunDriver != NULL; }

static int replay_file(const char *path, rcf_callback_t callback)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    if (length < 0) length = 0;
    /* Exactly the file's size (at least 1 byte to allocate), as libFuzzer hands inputs over. */
    uint8_t *data = malloc(length > 0 ? (size_t)length : 1);
    size_t got = length > 0 ? fread(data, 1, (size_t)length, file) : 0;
    fclose(file);
    if (getenv("RCUMAPS_FUZZ_VERBOSE")) fprintf(stderr, "replay: %s (%zu bytes)\n", path, got);
    callback(data, got);
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays `path`: a file, or every regular file in a directory (not recursive), by name. */
static int replay_path(const char *path, rcf_callback_t callback, int *count)
{
    struct stat info;
    if (stat(path, &info) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(info.st_mode)) {
        if (replay_file(path, callback) != 0) return -1;
        ++*count;
        return 0;
    }
    DIR *directory = opendir(path);
    if (!directory) {
        fprintf(stderr, "replay: cannot open directory %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t capacity = 64, used = 0;
    char **names = malloc(capacity * sizeof *names);
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] == '.') continue; /* ., .., and hidden files such as .gitkeep */
        size_t length = strlen(path) + strlen(entry->d_name) + 2;
        char *full = malloc(length);
        snprintf(full, length, "%s/%s", path, entry->d_name);
        struct stat child;
        if (stat(full, &child) != 0 || !S_ISREG(child.st_mode)) {
            free(full);
            continue;
        }
        if (used == capacity) names = realloc(names, (capacity *= 2) * sizeof *names);
        names[used++] = full;
    }
    closedir(directory);
    qsort(names, used, sizeof *names, compare_names);
    int result = 0;
    for (size_t index = 0; index < used; index++) {
        if (result == 0 && replay_file(names[index], callback) == 0) ++*count;
        else result = -1;
        free(names[index]);
    }
    free(names);
    return result;
}

int rcf_main(int argc, char **argv, rcf_callback_t callback)
{
    registered_callback = callback;
    if (argc >= 2 && strcmp(argv[1], "--replay") == 0) {
        int count = 0;
        for (int index = 2; index < argc; index++) {
            if (replay_path(argv[index], callback, &count) != 0) return 1;
        }
        fprintf(stderr, "%s: replayed %d input(s) without a failure\n", argv[0], count);
        return 0;
    }
    if (LLVMFuzzerRunDriver) return LLVMFuzzerRunDriver(&argc, &argv, callback);
    fprintf(stderr,
            "%s was built without libFuzzer. Build with `swift build -c release -Xswiftc -sanitize=fuzzer,address`\n"
            "(bash scripts/fuzz.sh does), or replay inputs: %s --replay FILE_OR_DIRECTORY...\n",
            argv[0], argv[0]);
    return 2;
}

int rcf_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *file = fopen(path, "wb");
    if (!file) return errno;
    size_t written = fwrite(data, 1, size, file);
    int result = written == size ? 0 : EIO;
    if (fclose(file) != 0 && result == 0) result = errno;
    return result;
}

static cpu_set_t rcf_saved_affinity;
static int rcf_pinned;

int rcf_pin_to_current_cpu(void)
{
    rcf_pinned = 0;
    if (sched_getaffinity(0, sizeof rcf_saved_affinity, &rcf_saved_affinity) != 0) return -1;
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) return -1;
    rcf_pinned = 1;
    /* Moved between the two calls: the pin took effect on `cpu` only once the thread runs
     * there again, which it does before sched_setaffinity returns. */
    return sched_getcpu() == cpu ? cpu : -1;
}

void rcf_unpin(void)
{
    if (rcf_pinned) (void)sched_setaffinity(0, sizeof rcf_saved_affinity, &rcf_saved_affinity);
    rcf_pinned = 0;
}
