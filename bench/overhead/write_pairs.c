/* write_pairs PAIRS: the time the write() hook adds, measured inside one process. Each pair
 * times 1,000 1-byte write()s to /dev/null made through the program's write (under socktune,
 * its hook) and 1,000 made through libc's own, in turn (the order alternates), both called
 * through a pointer. Prints the median of the pairs' ratios, each side's median ns per call,
 * and the process's threads (a second thread would slow libc's write itself). Blocks a few
 * hundred microseconds apart see the same host speed and address layout; separate runs of one
 * program differ by up to 25 % on this kind of host. Without a preload both pointers are
 * libc's, and the ratio is the method's own noise. Makes one TCP socket first, as a server
 * would: under socktune the stub then loads the shim. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
enum { BLOCK = 1000 };

static double block_ns(write_fn volatile *f, int fd) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < BLOCK; i++)
        if ((*f)(fd, "x", 1) != 1) exit(1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / BLOCK;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, long n) {
    qsort(v, n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    long pairs = argc > 1 ? atol(argv[1]) : 2000;
    if (socket(AF_INET, SOCK_STREAM, 0) < 0) return 1;
    int fd = open("/dev/null", O_WRONLY);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    write_fn volatile hooked = (write_fn)dlsym(RTLD_DEFAULT, "write");
    write_fn volatile plain = libc ? (write_fn)dlsym(libc, "write") : NULL;
    double *h = malloc(pairs * sizeof *h), *p = malloc(pairs * sizeof *p), *r = malloc(pairs * sizeof *r);
    if (fd < 0 || !hooked || !plain || !h || !p || !r) return 1;
    for (long i = 0; i < pairs; i++) {
        if (i % 2) {
            h[i] = block_ns(&hooked, fd);
            p[i] = block_ns(&plain, fd);
        } else {
            p[i] = block_ns(&plain, fd);
            h[i] = block_ns(&hooked, fd);
        }
        r[i] = h[i] / p[i];
    }
    int threads = 0;
    char line[256];
    FILE *status = fopen("/proc/self/status", "r");
    while (status && fgets(line, sizeof line, status))
        sscanf(line, "Threads: %d", &threads);
    printf("ratio=%.4f hooked_ns=%.2f libc_ns=%.2f threads=%d\n", median(r, pairs), median(h, pairs),
           median(p, pairs), threads);
    return 0;
}
