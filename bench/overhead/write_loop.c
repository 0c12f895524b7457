/* write_loop ITER: ITER 1-byte write()s to /dev/null; prints "ns_per_call=F".
 * The overhead benchmark (scripts/bench-overhead.sh) runs it with and without the shim, and
 * under callgrind with ITER and 2*ITER to count the instructions of one call. It makes one TCP
 * socket first, as a server would: under socktune the stub then loads the shim, whose hook the
 * writes go through. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long iter = argc > 1 ? atol(argv[1]) : 1000000;
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    if (tcp < 0) return 1;
    int fd = open("/dev/null", O_WRONLY);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iter; i++)
        if (write(fd, "x", 1) != 1) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("ns_per_call=%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iter);
    return 0;
}
