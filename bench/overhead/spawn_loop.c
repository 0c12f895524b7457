/* spawn_loop N VARIANT...: starts each variant N times (posix_spawn, then wait), interleaved one
 * start at a time, each cycle in a new random order (a start after a heavy one runs slower:
 * no variant may always follow the same one), and prints one line per start: "VARIANT_INDEX NANOSECONDS". A variant is one
 * argument of newline-separated fields: the program, LD_PRELOAD ("-": none), then NAME=VALUE
 * entries added to the environment. Starts a few milliseconds apart share the host's speed,
 * which moves between runs seconds apart. This loop itself runs without any preload. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;

struct variant {
    char *program;
    char **env;
};

static struct variant parse(char *spec, int inherited) {
    struct variant v;
    char **env = calloc(inherited + strlen(spec) + 2, sizeof *env);
    memcpy(env, environ, inherited * sizeof *env);
    int n = inherited;
    v.program = strtok(spec, "\n");
    char *preload = strtok(NULL, "\n"), *field;
    if (preload && strcmp(preload, "-") != 0) {
        char *entry = malloc(strlen(preload) + sizeof "LD_PRELOAD=");
        sprintf(entry, "LD_PRELOAD=%s", preload);
        env[n++] = entry;
    }
    while ((field = strtok(NULL, "\n")))
        env[n++] = field;
    v.env = env;
    return v;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: spawn_loop N VARIANT...\n"); return 2; }
    int n = atoi(argv[1]), count = argc - 2, inherited = 0;
    while (environ[inherited]) inherited++;
    struct variant *variants = calloc(count, sizeof *variants);
    long long *times = calloc((size_t)n * count, sizeof *times);
    for (int i = 0; i < count; i++)
        variants[i] = parse(argv[i + 2], inherited);
    int *order = calloc(count, sizeof *order);
    unsigned long long seed = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < count; i++)
        order[i] = i;
    for (int round = 0; round < n; round++) {
        for (int k = count - 1; k > 0; k--) { /* Fisher-Yates, xorshift64 */
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            int j = (int)(seed % (unsigned long long)(k + 1)), t = order[k];
            order[k] = order[j], order[j] = t;
        }
        for (int k = 0; k < count; k++) {
            int i = order[k];
            char *args[] = {variants[i].program, NULL};
            pid_t pid;
            int status;
            long long start = now_ns();
            if (posix_spawn(&pid, variants[i].program, 0, 0, args, variants[i].env)) { perror("posix_spawn"); return 1; }
            waitpid(pid, &status, 0);
            times[(size_t)round * count + i] = now_ns() - start;
            if (!WIFEXITED(status) || WEXITSTATUS(status)) { fprintf(stderr, "%s failed\n", variants[i].program); return 1; }
        }
    }
    for (int round = 0; round < n; round++)
        for (int i = 0; i < count; i++)
            printf("%d %lld\n", i, times[(size_t)round * count + i]);
    return 0;
}
