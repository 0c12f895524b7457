/* A plain keep-alive HTTP/1.1 server and client, in C so that valgrind runs them fast and every
 * leak or bad access it reports is the shim's or libc's, never an interpreter's.
 *
 *   ka_pair server PORT CONNS BODY split|single
 *       Serves CONNS connections one after another, then exits 0. Each request gets a
 *       Content-Length response of BODY bytes: header and body in two write()s ("split", the
 *       Nagle case cork fixes) or one ("single"). poll() precedes every read. Sets no socket
 *       option but SO_REUSEADDR.
 *   ka_pair client PORT CONNS REQUESTS BODY
 *       CONNS connections one after another, REQUESTS GETs each; checks every body byte.
 *       Prints "requests=N bad=N us_per_request=F" and exits 1 if any response was bad.
 *
 * Body byte i is body_byte(i): a lost, repeated or moved chunk shows. No malloc anywhere.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY 65536
#define REQUEST "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"

static unsigned char body_byte(size_t i) { return (unsigned char)(i * 131 + (i >> 8)); }

static void die(const char *what) {
    perror(what);
    exit(2);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void write_all(int fd, const void *buf, size_t n) {
    for (const char *p = buf; n > 0;) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* Answers every complete request on fd until the peer closes. */
static void serve(int fd, size_t body_len, int split) {
    static char body[MAX_BODY], resp[MAX_BODY + 128];
    for (size_t i = 0; i < body_len; i++) body[i] = body_byte(i);
    int head = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body_len);
    memcpy(resp + head, body, body_len);
    char buf[4096];
    size_t have = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 30000) != 1) die("poll");
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r < 0) die("read");
        if (r == 0) return;
        have += (size_t)r;
        char *end;
        while ((end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (split) {
                write_all(fd, resp, (size_t)head);
                write_all(fd, body, body_len);
            } else {
                write_all(fd, resp, (size_t)head + body_len);
            }
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, end + 4, have - used);
            have -= used;
        }
        if (have == sizeof buf) die("request too large");
    }
}

static int server(int port, int conns, size_t body_len, int split) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = loopback(port);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (void *)&a, sizeof a) || listen(l, 16)) die("bind/listen");
    for (int c = 0; c < conns; c++) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) die("accept");
        serve(fd, body_len, split);
        close(fd);
    }
    close(l);
    printf("served=%d\n", conns);
    return 0;
}

/* Reads one response into buf (which holds `*have` bytes already); returns 1 if it is exact. */
static int response_ok(int fd, char *buf, size_t cap, size_t *have, size_t body_len) {
    char *end;
    while (!(end = memmem(buf, *have, "\r\n\r\n", 4))) {
        ssize_t r = read(fd, buf + *have, cap - *have);
        if (r <= 0) die("read header");
        *have += (size_t)r;
    }
    size_t head = (size_t)(end + 4 - buf);
    char *cl = memmem(buf, head, "Content-Length: ", 16);
    int ok = strncmp(buf, "HTTP/1.1 200 ", 13) == 0 && cl && strtoul(cl + 16, NULL, 10) == body_len;
    while (*have < head + body_len) {
        ssize_t r = read(fd, buf + *have, cap - *have);
        if (r <= 0) die("read body");
        *have += (size_t)r;
    }
    for (size_t i = 0; ok && i < body_len; i++) ok = (unsigned char)buf[head + i] == body_byte(i);
    *have -= head + body_len;
    memmove(buf, buf + head + body_len, *have);
    return ok;
}

static int client(int port, int conns, int requests, size_t body_len) {
    static char buf[MAX_BODY + 4096];
    struct sockaddr_in a = loopback(port);
    struct timespec t0, t1;
    int bad = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int c = 0; c < conns; c++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (void *)&a, sizeof a)) die("connect");
        size_t have = 0;
        for (int i = 0; i < requests; i++) {
            write_all(fd, REQUEST, strlen(REQUEST));
            bad += !response_ok(fd, buf, sizeof buf, &have, body_len);
        }
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
    printf("requests=%d bad=%d us_per_request=%.2f\n", conns * requests, bad, us / (conns * requests));
    return bad != 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "server") == 0 && atoi(argv[4]) <= MAX_BODY)
        return server(atoi(argv[2]), atoi(argv[3]), (size_t)atoi(argv[4]), strcmp(argv[5], "split") == 0);
    if (argc == 6 && strcmp(argv[1], "client") == 0 && atoi(argv[5]) <= MAX_BODY)
        return client(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), (size_t)atoi(argv[5]));
    fprintf(stderr, "usage: ka_pair server PORT CONNS BODY split|single | client PORT CONNS REQUESTS BODY\n");
    return 2;
}
