/* Each hooked call reaches libc exactly once: a call made twice shows in what the program sees.
 * A second accept() takes the next queued connection, a second read() the next byte, a second
 * write() doubles the data, a second connect() of a non-blocking socket says EALREADY, a second
 * close() says EBADF, and a second socket() or dup() leaks an fd number. Run with and without
 * libsocktune.so (also with a build whose every step of its own logic panics); every run must
 * print "0 failed". */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

static unsigned short port_of(int fd, int peer) {
    struct sockaddr_in a; socklen_t len = sizeof a;
    if (peer) getpeername(fd, (void *)&a, &len); else getsockname(fd, (void *)&a, &len);
    return ntohs(a.sin_port);
}

/* Connects a new client to listener l and waits until the kernel has queued it. */
static int queued_client(int l) {
    struct sockaddr_in a; socklen_t len = sizeof a;
    getsockname(l, (void *)&a, &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (void *)&a, sizeof a) || write(c, "q", 1) != 1) { perror("queued_client"); _exit(2); }
    return c;
}

/* Reads exactly n bytes from s into buf, then checks nothing more is waiting. */
static int read_exactly(int s, char *buf, int n) {
    int got = 0;
    while (got < n) {
        int r = read(s, buf + got, n - got);
        if (r <= 0) return -1;
        got += r;
    }
    struct pollfd p = { .fd = s, .events = POLLIN };
    return poll(&p, 1, 200) == 0 ? got : -2;
}

int main(void) {
    char buf[64], b;
    int r;
    int l = listener(7411);

    /* accept: two connections queued; the first accept returns the first. */
    int c1 = queued_client(l), c2 = queued_client(l);
    usleep(50000);
    int s1 = accept(l, 0, 0);
    CHECK(s1 >= 0 && port_of(s1, 1) == port_of(c1, 0), "accept returns the first queued connection");
    int s2 = accept4(l, 0, 0, SOCK_CLOEXEC);
    CHECK(s2 >= 0 && port_of(s2, 1) == port_of(c2, 0), "accept4 returns the second");

    /* read: one byte at a time, in order. */
    r = read(s1, &b, 1); CHECK(r == 1 && b == 'q', "read returns the first byte");
    write(c1, "ab", 2);
    usleep(20000);
    r = recv(s1, &b, 1, 0); CHECK(r == 1 && b == 'a', "recv returns the next byte, not the one after");
    r = recvfrom(s1, &b, 1, 0, 0, 0); CHECK(r == 1 && b == 'b', "recvfrom returns the last byte");
    struct iovec iv = { .iov_base = &b, .iov_len = 1 };
    write(c1, "c", 1);
    usleep(20000);
    r = readv(s1, &iv, 1); CHECK(r == 1 && b == 'c', "readv returns one byte");

    /* write: the peer gets each byte once. */
    r = write(s1, "12345", 5); CHECK(r == 5, "write sends 5 bytes");
    r = send(s1, "678", 3, 0); CHECK(r == 3, "send sends 3 bytes");
    struct iovec two[2] = { { "9", 1 }, { "0", 1 } };
    r = writev(s1, two, 2); CHECK(r == 2, "writev sends 2 bytes");
    r = read(s2, &b, 1); /* s2's own request byte; ends s1's response in a poll below */
    struct pollfd p = { .fd = s1, .events = POLLIN };
    poll(&p, 1, 0);
    r = read_exactly(c1, buf, 10);
    CHECK(r == 10 && memcmp(buf, "1234567890", 10) == 0, "the peer receives exactly the 10 bytes, once");

    /* sendfile: a file's bytes once. */
    FILE *f = tmpfile(); fputs("file!", f); fflush(f);
    int ffd = fileno(f);
    off_t off = 0;
    r = sendfile(s2, ffd, &off, 5); CHECK(r == 5 && off == 5, "sendfile sends 5 bytes");
    poll(&p, 1, 0);
    r = read_exactly(c2, buf, 5);
    CHECK(r == 5 && memcmp(buf, "file!", 5) == 0, "the peer receives the file once");

    /* connect: a non-blocking connect says EINPROGRESS, not the EALREADY of a second one. */
    int n = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a; socklen_t alen = sizeof a;
    getsockname(l, (void *)&a, &alen);
    errno = 0; r = connect(n, (void *)&a, sizeof a);
    CHECK(r == -1 && errno == EINPROGRESS, "a non-blocking connect gives EINPROGRESS");

    /* socket and dup: no fd number leaked. */
    int t1 = socket(AF_INET, SOCK_STREAM, 0);
    close(t1);
    int t2 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(t2 == t1, "socket leaks no fd");
    int d1 = dup(s1);
    close(d1);
    int d2 = dup(s1);
    CHECK(d2 == d1, "dup leaks no fd");
    close(d2);
    int d3 = fcntl(s1, F_DUPFD, 0);
    CHECK(d3 == d1, "F_DUPFD leaks no fd");
    close(d3);

    /* close: once, so it succeeds. */
    errno = 0; r = close(t2); CHECK(r == 0, "close succeeds (a second close would say EBADF)");
    errno = 0; r = close(n); CHECK(r == 0, "close of a connecting socket succeeds");

    /* shutdown and listen: both succeed once. */
    r = shutdown(s2, SHUT_WR); CHECK(r == 0, "shutdown succeeds");
    r = read(c2, buf, sizeof buf); CHECK(r == 0, "the peer sees one clean end of stream");
    int l2 = socket(AF_INET, SOCK_STREAM, 0);
    r = listen(l2, 4); CHECK(r == 0, "listen succeeds");

    /* epoll: a registration once (a second ADD would say EEXIST). */
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = s1 };
    r = epoll_ctl(ep, EPOLL_CTL_ADD, s1, &ev); CHECK(r == 0, "epoll_ctl ADD succeeds");
    r = epoll_wait(ep, &ev, 1, 0); CHECK(r == 0, "epoll_wait reports nothing to read");
    return summary();
}
