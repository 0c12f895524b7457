/* Results and errno exactly as libc gives them: each check is a call whose outcome libc defines.
 * Run with and without libsocktune.so; both runs must print "0 failed". A successful call must
 * leave errno as it was (preset to 4242), a failed one must set libc's errno. Sets no socket
 * option itself except SO_REUSEADDR, so the shim's own behaviours act on every TCP socket. */
#define _GNU_SOURCE
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
static int fails = 0;
#define CHECK(cond, what) do { if (!(cond)) { printf("FAIL %s (errno=%d %s)\n", what, errno, strerror(errno)); fails++; } else printf("ok   %s\n", what); } while (0)
int main(void) {
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
    errno = 0; r = write(s, "x", 1); CHECK(r == -1 && (errno == EPIPE || errno == ECONNRESET), "write after peer close gives EPIPE/ECONNRESET");
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
    printf("%d failed\n", fails);
    return fails != 0;
}
