/* Shared by the C test programs: a CHECK that prints ok/FAIL per case and counts failures, and a
 * loopback TCP connection made by plain calls (the programs stand for unmodified applications,
 * so they set no socket option beyond SO_REUSEADDR and the program's-choice cases). */
#ifndef SOCKTUNE_CHECK_H
#define SOCKTUNE_CHECK_H
#define _GNU_SOURCE
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

static int fails = 0;
#define CHECK(cond, what) do { if (!(cond)) { printf("FAIL %s (errno=%d %s)\n", what, errno, strerror(errno)); fails++; } else printf("ok   %s\n", what); } while (0)

/* A listener on 127.0.0.1:port. */
static inline int listener(int port) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (void *)&a, sizeof a) || listen(l, 16)) { perror("listener"); _exit(2); }
    return l;
}

/* A connection to listener l: *c the client end, *s the accepted end (connections left queued
 * by earlier cases are skipped). The client speaks first (one byte, read here), so a deferring
 * listener hands the connection over at once. */
static inline void tcp_pair(int l, int *c, int *s) {
    struct sockaddr_in a, me, peer; socklen_t len = sizeof a;
    char b;
    getsockname(l, (void *)&a, &len);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*c, (void *)&a, sizeof a) || write(*c, "q", 1) != 1) { perror("tcp_pair"); _exit(2); }
    getsockname(*c, (void *)&me, &len);
    for (;;) {
        *s = accept(l, (void *)&peer, &len);
        if (*s < 0) { perror("tcp_pair accept"); _exit(2); }
        if (peer.sin_port == me.sin_port) break;
        close(*s);
    }
    if (read(*s, &b, 1) != 1) { perror("tcp_pair read"); _exit(2); }
}

static inline int summary(void) {
    printf("%d failed\n", fails);
    return fails != 0;
}
#endif
