/* Results and errno exactly as libc gives them: each check is a call whose outcome libc defines.
 * Run with and without libsocktune.so; both runs must print "0 failed". A successful call must
 * leave errno as it was (preset to 4242), a failed one must set libc's errno. Sets no socket
 * option itself except SO_REUSEADDR (and TCP_NODELAY once, to check the takeover keeps errno), so
 * the shim's own behaviours act on every TCP socket. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/tcp.h>
/* EAGAIN in the other non-blocking styles, ECONNRESET then EPIPE, EBADF/ENOTSOCK/EINVAL/EISCONN
 * on every hooked call, and IPv6's ECONNREFUSED and EINPROGRESS. */
static void more_errors(int l) {
    char buf[64], what[96];
    int r, c, s;
    struct sockaddr_in a; socklen_t alen = sizeof a;
    getsockname(l, (void *)&a, &alen);
    int ln = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in b = a; b.sin_port = htons(7402);
    bind(ln, (void *)&b, sizeof b); listen(ln, 4);
    errno = 0; r = accept4(ln, 0, 0, SOCK_NONBLOCK); CHECK(r == -1 && errno == EAGAIN, "accept4 on a SOCK_NONBLOCK listener gives EAGAIN");
    close(ln);
    tcp_pair(l, &c, &s);
    errno = 0; r = recv(c, buf, sizeof buf, MSG_DONTWAIT); CHECK(r == -1 && errno == EAGAIN, "recv(MSG_DONTWAIT) on a client gives EAGAIN");
    fcntl(c, F_SETFL, O_NONBLOCK);
    errno = 0; r = read(c, buf, sizeof buf); CHECK(r == -1 && errno == EAGAIN, "non-blocking read on a client gives EAGAIN");
    struct iovec iov = { buf, sizeof buf };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    errno = 0; r = recvmsg(c, &mh, 0); CHECK(r == -1 && errno == EAGAIN, "non-blocking recvmsg gives EAGAIN");
    errno = 0; r = recvfrom(c, buf, sizeof buf, 0, 0, 0); CHECK(r == -1 && errno == EAGAIN, "non-blocking recvfrom gives EAGAIN");
    fcntl(c, F_SETFL, 0);
    errno = 0; r = connect(c, (void *)&a, sizeof a); CHECK(r == -1 && errno == EISCONN, "connect on a connected socket gives EISCONN");
    /* The server closes with our bytes unread, which resets the connection. */
    write(c, "unread", 6); usleep(50000);
    close(s); usleep(50000);
    errno = 0; r = read(c, buf, sizeof buf); CHECK(r == -1 && errno == ECONNRESET, "read after the peer reset gives ECONNRESET");
    errno = 0; r = write(c, "x", 1); CHECK(r == -1 && errno == EPIPE, "write after a reset gives EPIPE");
    close(c);

    int t = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0; r = accept(t, 0, 0); CHECK(r == -1 && errno == EINVAL, "accept on a socket that does not listen gives EINVAL");
    close(t);
    errno = 0; r = write(t, "x", 1); CHECK(r == -1 && errno == EBADF, "write on a closed tracked fd gives EBADF");
    errno = 0; r = close(t); CHECK(r == -1 && errno == EBADF, "double close gives EBADF");
    /* Numbers unused, negative, at the top of the shim's fd table and beyond it. */
    int bad[] = { 987, -1, 16 * 1024 * 1024 - 1, 16 * 1024 * 1024, 0x7fffffff };
    int one = 1;
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd = bad[i];
#define BADF(call) do { errno = 0; r = (call); snprintf(what, sizeof what, "%s on fd %d gives EBADF", #call, fd); CHECK(r == -1 && errno == EBADF, what); } while (0)
        BADF(read(fd, buf, 1));
        BADF(recv(fd, buf, 1, 0));
        BADF(write(fd, "x", 1));
        BADF(send(fd, "x", 1, 0));
        BADF(accept(fd, 0, 0));
        BADF(listen(fd, 1));
        BADF(connect(fd, (void *)&a, sizeof a));
        BADF(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
        BADF(shutdown(fd, SHUT_WR));
        BADF(dup(fd));
        BADF(fcntl(fd, F_DUPFD, 10));
        BADF(close(fd));
#undef BADF
    }
    int pp[2]; pipe(pp);
    errno = 0; r = accept(pp[0], 0, 0); CHECK(r == -1 && errno == ENOTSOCK, "accept on a pipe gives ENOTSOCK");
    errno = 0; r = listen(pp[0], 1); CHECK(r == -1 && errno == ENOTSOCK, "listen on a pipe gives ENOTSOCK");
    errno = 0; r = connect(pp[1], (void *)&a, sizeof a); CHECK(r == -1 && errno == ENOTSOCK, "connect on a pipe gives ENOTSOCK");
    errno = 0; r = setsockopt(pp[1], IPPROTO_TCP, TCP_CORK, &one, sizeof one); CHECK(r == -1 && errno == ENOTSOCK, "setsockopt on a pipe gives ENOTSOCK");
    close(pp[0]); close(pp[1]);

    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(7404), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int d = socket(AF_INET6, SOCK_STREAM, 0);
    errno = 0; r = connect(d, (void *)&a6, sizeof a6); CHECK(r == -1 && errno == ECONNREFUSED, "IPv6 connect to a closed port gives ECONNREFUSED");
    close(d);
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    bind(l6, (void *)&a6, sizeof a6);
    errno = 4242; r = listen(l6, 4); CHECK(r == 0 && errno == 4242, "successful IPv6 listen leaves errno");
    d = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0; r = connect(d, (void *)&a6, sizeof a6); CHECK(r == -1 && errno == EINPROGRESS, "non-blocking IPv6 connect gives EINPROGRESS");
    close(d); close(l6);
}

/* UNIX stream and UDP sockets: every successful call leaves errno alone. */
static void unix_and_udp_leave_errno(void) {
    char buf[16];
    int r;
    struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "\0socktune-errno" };
    socklen_t unlen = offsetof(struct sockaddr_un, sun_path) + 15;
    int ul = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(ul, (void *)&un, unlen);
    errno = 4242; r = listen(ul, 4); CHECK(r == 0 && errno == 4242, "unix listen leaves errno");
    int uc = socket(AF_UNIX, SOCK_STREAM, 0);
    errno = 4242; r = connect(uc, (void *)&un, unlen); CHECK(r == 0 && errno == 4242, "unix connect leaves errno");
    errno = 4242; int us = accept4(ul, 0, 0, SOCK_CLOEXEC); CHECK(us >= 0 && errno == 4242, "unix accept4 leaves errno");
    errno = 4242; r = send(us, "hello", 5, 0); CHECK(r == 5 && errno == 4242, "unix send leaves errno");
    errno = 4242; r = recv(uc, buf, sizeof buf, 0); CHECK(r == 5 && errno == 4242, "unix recv leaves errno");
    errno = 4242; r = shutdown(us, SHUT_WR); CHECK(r == 0 && errno == 4242, "unix shutdown leaves errno");
    errno = 4242; r = read(uc, buf, sizeof buf); CHECK(r == 0 && errno == 4242, "unix read of EOF leaves errno");
    close(uc); close(us); close(ul);

    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7405), .sin_addr.s_addr = htonl(0x7f000001) };
    int srv = socket(AF_INET, SOCK_DGRAM, 0);
    bind(srv, (void *)&a, sizeof a);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    errno = 4242; r = connect(u, (void *)&a, sizeof a); CHECK(r == 0 && errno == 4242, "udp connect leaves errno");
    errno = 4242; r = send(u, "dgram", 5, 0); CHECK(r == 5 && errno == 4242, "udp send leaves errno");
    errno = 4242; r = recv(srv, buf, sizeof buf, 0); CHECK(r == 5 && errno == 4242, "udp recv leaves errno");
    errno = 0; r = listen(u, 1); CHECK(r == -1 && errno == EOPNOTSUPP, "listen on udp gives EOPNOTSUPP");
    close(u); close(srv);
}

/* A tracked TCP socket closed behind the shim's back (a raw syscall, as glibc's fclose does),
 * its number then taken by a UDP or UNIX socket the shim never saw made. The shim's own
 * setsockopt (cork, uncork, quickack) fails there; the program's calls must not show it. */
static void stale_entries_leave_errno(int l) {
    char buf[16];
    int r, c, s;
    tcp_pair(l, &c, &s); /* nothing held: the next write makes the shim cork */
    syscall(SYS_close, s);
    int u = syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
    CHECK(u == s, "setup: a raw UDP socket takes the closed number");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7406), .sin_addr.s_addr = htonl(0x7f000001) };
    bind(u, (void *)&a, sizeof a);
    errno = 4242; r = sendto(u, "dgram", 5, 0, (void *)&a, sizeof a); CHECK(r == 5 && errno == 4242, "udp sendto on a stale TCP entry leaves errno");
    errno = 4242; r = recv(u, buf, sizeof buf, 0); CHECK(r == 5 && errno == 4242, "udp recv on a stale TCP entry leaves errno");
    syscall(SYS_close, u);
    close(c);

    tcp_pair(l, &c, &s);
    write(s, "h", 1); /* corked: the shim holds it, and the next read releases it */
    syscall(SYS_close, s);
    int sv[2];
    syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv);
    CHECK(sv[0] == s, "setup: a raw socketpair takes the closed number");
    write(sv[1], "unix", 4);
    errno = 4242; r = read(sv[0], buf, sizeof buf); CHECK(r == 4 && errno == 4242, "unix read on a stale TCP entry (held cork) leaves errno");
    errno = 4242; r = write(sv[0], "back", 4); CHECK(r == 4 && errno == 4242, "unix write on a stale TCP entry leaves errno");
    errno = 4242; r = read(sv[1], buf, sizeof buf); CHECK(r == 4 && memcmp(buf, "back", 4) == 0 && errno == 4242, "unix peer gets the bytes unchanged");
    close(sv[0]); close(sv[1]); close(c);

    tcp_pair(l, &c, &s);
    errno = 4242; r = setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)); CHECK(r == 0 && errno == 4242, "the program's own TCP_NODELAY leaves errno");
    close(s); close(c);
}

/* A bad pointer is the kernel's to refuse: EFAULT, never a fault inside the shim, on the read
 * calls whose first buffer quickack-off looks at after the call (data is waiting on both). Left
 * out with --no-bad-pointers: under valgrind these are the program's own errors. */
static void bad_pointers_give_efault(int l) {
    int c, s, r;
    tcp_pair(l, &c, &s);
    write(s, "data", 4); write(c, "data", 4); usleep(20000);
    const void *bad = (const void *)8;
    errno = 0; r = readv(s, bad, 1); CHECK(r == -1 && errno == EFAULT, "readv with a bad iovec pointer gives EFAULT");
    errno = 0; r = recvmsg(s, (struct msghdr *)bad, 0); CHECK(r == -1 && errno == EFAULT, "recvmsg with a bad msghdr gives EFAULT");
    struct msghdr mh = { .msg_iov = (struct iovec *)bad, .msg_iovlen = 1 };
    errno = 0; r = recvmsg(c, &mh, 0); CHECK(r == -1 && errno == EFAULT, "recvmsg with a bad iovec pointer gives EFAULT");
    errno = 0; r = read(c, (void *)bad, 4); CHECK(r == -1 && errno == EFAULT, "read into a bad buffer gives EFAULT");
    close(c); close(s);
}

int main(int argc, char **argv) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7400), .sin_addr.s_addr = htonl(0x7f000001) };
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind(l, (void*)&a, sizeof a);
    errno = 4242; int r = listen(l, 16); CHECK(r == 0 && errno == 4242, "successful listen leaves errno");
    fcntl(l, F_SETFL, O_NONBLOCK);
    errno = 0; r = accept(l, 0, 0); CHECK(r == -1 && errno == EAGAIN, "non-blocking accept gives EAGAIN");
    errno = 0; r = accept4(l, 0, 0, SOCK_CLOEXEC); CHECK(r == -1 && errno == EAGAIN, "non-blocking accept4 gives EAGAIN");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    errno = 4242; r = connect(c, (void*)&a, sizeof a); CHECK(r == 0 && errno == 4242, "successful connect leaves errno");
    fcntl(l, F_SETFL, 0);
    errno = 4242; int s = accept(l, 0, 0); CHECK(s >= 0 && errno == 4242, "successful accept leaves errno");
    errno = 4242; r = write(s, "hello", 5); CHECK(r == 5 && errno == 4242, "successful write (corks) leaves errno");
    char buf[64];
    errno = 4242; r = read(c, buf, sizeof buf); CHECK(r == 5 && errno == 4242, "client read gets the corked data (flushed by timer)");
    fcntl(s, F_SETFL, O_NONBLOCK);
    errno = 0; r = recv(s, buf, sizeof buf, 0); CHECK(r == -1 && errno == EAGAIN, "non-blocking recv gives EAGAIN");
    errno = 0; r = read(s, buf, sizeof buf); CHECK(r == -1 && errno == EAGAIN, "non-blocking read gives EAGAIN");
    close(c);
    usleep(50000);
    signal(13, SIG_IGN);
    write(s, "x", 1); usleep(50000);
    /* The peer's close then its reset (our "x" reached a closed socket) arrive in CLOSE_WAIT. */
    errno = 0; r = write(s, "x", 1); CHECK(r == -1 && errno == EPIPE, "write after peer close and reset gives EPIPE");
    close(s);
    struct sockaddr_in z = a; z.sin_port = htons(7401);
    int d = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0; r = connect(d, (void*)&z, sizeof z); CHECK(r == -1 && errno == ECONNREFUSED, "connect to closed port gives ECONNREFUSED");
    close(d);
    d = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0; r = connect(d, (void*)&a, sizeof a); CHECK(r == -1 && errno == EINPROGRESS, "non-blocking connect gives EINPROGRESS");
    close(d);
    errno = 0; r = write(987, "x", 1); CHECK(r == -1 && errno == EBADF, "write on bad fd gives EBADF");
    errno = 0; r = close(987); CHECK(r == -1 && errno == EBADF, "close on bad fd gives EBADF");
    int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    errno = 4242; r = write(sv[0], "abc", 3); CHECK(r == 3 && errno == 4242, "unix write leaves errno");
    errno = 4242; r = read(sv[1], buf, 3); CHECK(r == 3 && errno == 4242, "unix read leaves errno");
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    errno = 4242; r = sendto(u, "x", 1, 0, (void*)&a, sizeof a); CHECK(r == 1 && errno == 4242, "udp sendto leaves errno");
    struct pollfd p = { .fd = u, .events = POLLOUT };
    errno = 4242; r = poll(&p, 1, 100); CHECK(r == 1 && errno == 4242, "poll leaves errno");
    errno = 4242; r = dup2(sv[0], 50); CHECK(r == 50 && errno == 4242, "dup2 leaves errno");
    errno = 4242; r = setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof one); CHECK(r == 0 && errno == 4242, "setsockopt on a unix socket leaves errno");
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = sv[1] };
    errno = 4242; r = epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev); CHECK(r == 0 && errno == 4242, "epoll_ctl leaves errno");
    errno = 4242; r = epoll_wait(ep, &ev, 1, 10); CHECK(r == 0 && errno == 4242, "epoll_wait timeout leaves errno");
    errno = 4242; r = fcntl(sv[0], F_DUPFD_CLOEXEC, 100); CHECK(r >= 100 && errno == 4242, "F_DUPFD_CLOEXEC leaves errno");
    errno = 0; r = dup2(999, 60); CHECK(r == -1 && errno == EBADF, "dup2 from a bad fd gives EBADF");
    errno = 0; r = shutdown(sv[0], 77); CHECK(r == -1 && errno == EINVAL, "shutdown with a bad how gives EINVAL");
    int t = socket(AF_INET6, SOCK_STREAM, 0);
    errno = 4242; r = close(t); CHECK(r == 0 && errno == 4242, "close of a fresh TCP socket leaves errno");
    errno = 4242; r = close_range(200, 300, 0); CHECK(r == 0 && errno == 4242, "close_range leaves errno");
    more_errors(l);
    if (!(argc > 1 && strcmp(argv[1], "--no-bad-pointers") == 0))
        bad_pointers_give_efault(l);
    unix_and_udp_leave_errno();
    stale_entries_leave_errno(l);
    return summary();
}
