/* spawn_loop N PRELOAD PROGRAM [ARGS]: runs PROGRAM N times (posix_spawn, then wait), one after
 * the other, with LD_PRELOAD=PRELOAD in its environment ("-": none), and prints us_per_run=MEAN:
 * the start-up cost of that preload. This loop itself runs without it. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: spawn_loop N PRELOAD PROGRAM [ARGS]\n"); return 2; }
    int n = atoi(argv[1]), count = 0;
    while (environ[count]) count++;
    char **env = calloc(count + 2, sizeof *env), preload[4096];
    memcpy(env, environ, count * sizeof *env);
    if (strcmp(argv[2], "-") != 0) {
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[2]);
        env[count] = preload;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, argv[3], 0, 0, argv + 3, env)) { perror("posix_spawn"); return 1; }
        waitpid(pid, &status, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("us_per_run=%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
    return 0;
}
