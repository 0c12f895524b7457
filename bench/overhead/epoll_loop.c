/* epoll_loop CONNS READY ITER: CONNS loopback TCP connections, both ends (2*CONNS fds) registered
 * with one epoll instance for EPOLLIN; READY of them have a byte waiting. Then ITER calls of
 * epoll_wait(timeout 0), each returning READY events; prints "ns_per_call=F".
 * Needs a private network namespace or a free port 7600, and 2*CONNS+16 fds (RLIMIT_NOFILE). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: epoll_loop CONNS READY ITER\n");
        return 2;
    }
    int conns = atoi(argv[1]), ready = atoi(argv[2]);
    long iter = atol(argv[3]);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7600)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (void *)&a, sizeof a) || listen(l, 4096)) die("bind/listen");
    int ep = epoll_create1(0);
    for (int i = 0; i < conns; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (void *)&a, sizeof a)) die("connect");
        int s = accept(l, NULL, NULL);
        if (s < 0) die("accept");
        if (i < ready && write(c, "x", 1) != 1) die("write");
        struct epoll_event ec = {.events = EPOLLIN, .data.fd = c}, es = {.events = EPOLLIN, .data.fd = s};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ec) || epoll_ctl(ep, EPOLL_CTL_ADD, s, &es)) die("epoll_ctl");
    }
    struct epoll_event ev[64];
    while (epoll_wait(ep, ev, 64, 0) < ready) /* the bytes are in flight on loopback */
        ;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iter; i++)
        if (epoll_wait(ep, ev, 64, 0) != ready) die("epoll_wait");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("ns_per_call=%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iter);
    return 0;
}
