/* fd lifetimes under the shim: numbers closed and reused by pipes and files, dup/dup2/dup3 and
 * F_DUPFD onto and from tracked sockets, close_range, numbers above 65536 up to the kernel's
 * limit and past the shim's table, and a socket shared with a vfork'ed child (by vfork and by
 * clone). Each outcome is libc's own, so the program prints "0 failed" with and without
 * libsocktune.so.
 *
 * Under the shim each connection corks its writes. "arrives" allows 100 ms: the shim's flusher
 * releases held data within ~2 ms, while a hold the shim lost track of (an fd closed or replaced
 * without its entry being dealt with) waits for the kernel's 200 ms cork timer. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define ARRIVE_MS 100

/* The peer c receives exactly `want` within `ms`, and nothing more yet (EOF may follow). */
static int arrives_within(int c, const char *want, int ms) {
    char buf[256];
    size_t n = strlen(want), got = 0;
    while (got < n) {
        struct pollfd p = { .fd = c, .events = POLLIN };
        if (poll(&p, 1, ms) != 1) return 0;
        ssize_t r = recv(c, buf + got, n - got, 0);
        if (r <= 0) return 0;
        got += r;
    }
    return memcmp(buf, want, n) == 0 && recv(c, buf, 1, MSG_DONTWAIT | MSG_PEEK) <= 0;
}

static int arrives(int c, const char *want) {
    return arrives_within(c, want, ARRIVE_MS);
}

/* The peer c sees end-of-file within ARRIVE_MS. */
static int eof(int c) {
    char b;
    struct pollfd p = { .fd = c, .events = POLLIN };
    return poll(&p, 1, ARRIVE_MS) == 1 && recv(c, &b, 1, 0) == 0;
}

/* Bytes written to w come back from r exactly, and errno stays untouched. */
static int passes_through(int w, int r) {
    char out[1000], in[1000];
    for (int i = 0; i < 1000; i++) out[i] = (char)(i * 7 + 3);
    errno = 4242;
    if (write(w, out, sizeof out) != sizeof out || errno != 4242) return 0;
    size_t got = 0;
    while (got < sizeof in) {
        ssize_t n = pread(r, in + got, sizeof in - got, got);
        if (n < 0 && errno == ESPIPE) n = read(r, in + got, sizeof in - got);
        if (n <= 0) return 0;
        got += n;
    }
    return memcmp(in, out, sizeof in) == 0;
}

static void close_then_reuse(int l) {
    int c, s, pp[2];
    tcp_pair(l, &c, &s);
    write(s, "bye", 3);
    close(s);
    CHECK(arrives(c, "bye") && eof(c), "close: the held response and the FIN arrive");
    pipe(pp);
    CHECK(pp[0] == s, "setup: a pipe takes the closed number");
    CHECK(passes_through(pp[1], pp[0]), "a pipe on a closed socket's number passes bytes exactly");
    close(pp[0]); close(pp[1]); close(c);

    tcp_pair(l, &c, &s);
    write(s, "file", 4);
    close(s);
    char path[] = "/tmp/socktune-fd-XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    CHECK(f == s, "setup: a file takes the closed number");
    CHECK(passes_through(f, f), "a file on a closed socket's number passes bytes exactly");
    CHECK(arrives(c, "file") && eof(c), "the socket closed before still delivered its response");
    close(f); close(c);
}

/* Closing one name of a socket must neither break nor hold back the other. */
static void dup_keeps_both_names(int l) {
    int c, s;
    tcp_pair(l, &c, &s);
    int d = dup(s);
    write(d, "D1", 2);
    close(d);
    CHECK(arrives(c, "D1"), "dup: closing the dup releases what it held");
    CHECK(write(s, "S1", 2) == 2 && arrives(c, "S1"), "dup: the original works after the dup is closed");
    d = dup(s);
    write(s, "S2", 2);
    close(s);
    CHECK(arrives(c, "S2"), "dup: closing the original releases what it held");
    CHECK(write(d, "D2", 2) == 2 && arrives(c, "D2"), "dup: the dup works after the original is closed");
    close(d);
    CHECK(eof(c), "dup: the last close ends the connection");
    close(c);
}

/* dup2/dup3 onto a tracked socket: its held data is released (another name keeps it open), the
 * number then names the new file, and nothing of the old socket's state applies to it. */
static void dup2_onto_tracked(int l) {
    for (int three = 0; three < 2; three++) {
        const char *name = three ? "dup3" : "dup2";
        char what[128];
        int c1, s1, c2, s2, pp[2];
        tcp_pair(l, &c1, &s1);
        tcp_pair(l, &c2, &s2);
        int keep2 = dup(s2);
        write(s2, "held2", 5);
        errno = 4242;
        int r = three ? dup3(s1, s2, O_CLOEXEC) : dup2(s1, s2);
        snprintf(what, sizeof what, "%s onto a socket returns the number and leaves errno", name);
        CHECK(r == s2 && errno == 4242, what);
        snprintf(what, sizeof what, "%s: the replaced socket's held data arrives", name);
        CHECK(arrives(c2, "held2"), what);
        snprintf(what, sizeof what, "%s: writes on the number go to the new socket", name);
        CHECK(write(s2, "via", 3) == 3 && arrives(c1, "via") && write(keep2, "k", 1) == 1 && arrives(c2, "k"), what);
        close(s2);
        snprintf(what, sizeof what, "%s: closing the copy leaves the original working", name);
        CHECK(write(s1, "more", 4) == 4 && arrives(c1, "more"), what);
        pipe(pp);
        write(s1, "last", 4);
        r = three ? dup3(pp[1], s1, O_CLOEXEC) : dup2(pp[1], s1);
        snprintf(what, sizeof what, "%s of a pipe onto a socket: its response and FIN arrive", name);
        CHECK(r == s1 && arrives(c1, "last") && eof(c1), what);
        snprintf(what, sizeof what, "%s of a pipe onto a socket: bytes pass exactly", name);
        CHECK(passes_through(s1, pp[0]), what);
        close(s1); close(pp[0]); close(pp[1]); close(keep2); close(c1); close(c2);
    }
}

static void fcntl_dupfd(int l) {
    int c, s;
    for (int cloexec = 0; cloexec < 2; cloexec++) {
        tcp_pair(l, &c, &s);
        write(s, "h", 1);
        int d = fcntl(s, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 300);
        close(s);
        CHECK(d >= 300 && arrives(c, "h"), cloexec ? "F_DUPFD_CLOEXEC: closing the original releases what it held" : "F_DUPFD: closing the original releases what it held");
        CHECK(write(d, "d", 1) == 1 && arrives(c, "d"), "F_DUPFD: the duplicate works");
        close(d);
        CHECK(eof(c), "F_DUPFD: the last close ends the connection");
        close(c);
    }
}

static void close_range_releases(int l) {
    int c, s, pp[2];
    tcp_pair(l, &c, &s);
    int keep = fcntl(s, F_DUPFD, 500);
    write(s, "cr", 2);
    errno = 4242;
    CHECK(close_range(s, s, CLOSE_RANGE_CLOEXEC) == 0 && errno == 4242, "close_range(CLOEXEC) leaves errno");
    CHECK(write(s, "x", 1) == 1 && arrives(c, "crx"), "close_range(CLOEXEC) closes nothing");
    write(s, "cr2", 3);
    errno = 4242;
    CHECK(close_range(s, s + 10, 0) == 0 && errno == 4242, "close_range leaves errno");
    CHECK(arrives(c, "cr2"), "close_range: a closed name's held data arrives (another name keeps it open)");
    pipe(pp);
    CHECK(pp[0] == s && passes_through(pp[1], pp[0]), "close_range: the number reused by a pipe passes bytes exactly");
    close(pp[0]); close(pp[1]);
    CHECK(write(keep, "k", 1) == 1 && arrives(c, "k"), "close_range: the other name works");
    close_range(500, ~0U, 0);
    CHECK(eof(c), "close_range to ~0: the last name closes");
    close(c);
}

/* Numbers above 65536, up to the kernel's limit (fs.nr_open), and past the shim's table. Raising
 * the hard limit needs CAP_SYS_RESOURCE; without it the soft limit goes up to the hard one, and
 * the limit reached is printed for the caller to judge. */
static void high_numbers(int l) {
    char what[128];
    int c, s, nr_open = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (!f || fscanf(f, "%d", &nr_open) != 1) nr_open = 1 << 20;
    fclose(f);
    struct rlimit rl = { nr_open, nr_open };
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    int max = (int)rl.rlim_cur;
    printf("fd_limit=%d\n", max);
    tcp_pair(l, &c, &s);
    int tops[] = { 1023, 1024, 65535, 65536, 65537, 70000, max - 1 };
    for (unsigned i = 0; i < sizeof tops / sizeof *tops; i++) {
        int fd = tops[i];
        if (fd >= max) continue;
        errno = 4242;
        int r = dup2(s, fd);
        snprintf(what, sizeof what, "dup2 to fd %d: the socket works there and errno stays", fd);
        CHECK(r == fd && write(fd, "hi", 2) == 2 && errno == 4242 && arrives(c, "hi"), what);
        write(fd, "bye", 3);
        close(fd);
        snprintf(what, sizeof what, "close of fd %d releases its held data", fd);
        CHECK(arrives(c, "bye"), what);
    }
    int d = fcntl(s, F_DUPFD, max - 10);
    CHECK(d >= max - 10 && write(d, "fd", 2) == 2 && arrives(c, "fd"), "F_DUPFD near the limit works");
    close(d);
    int past[] = { max, 16 * 1024 * 1024 - 1, 16 * 1024 * 1024, 0x7fffffff };
    for (unsigned i = 0; i < sizeof past / sizeof *past; i++) {
        errno = 0;
        int r = dup2(s, past[i]);
        snprintf(what, sizeof what, "dup2 to fd %d (past the limit) gives EBADF", past[i]);
        CHECK(r == -1 && errno == EBADF, what);
    }
    CHECK(write(s, "end", 3) == 3 && arrives(c, "end"), "the socket still works after the high numbers");
    close(s); close(c);
}

/* A vfork'ed child that execs and writes to the socket it inherited (same number) some time
 * later: the parent's close must push what it corked, since the socket lives on in the child. */
static void vfork_child_shares_the_socket(int l) {
    int c, s;
    char cmd[64];
    tcp_pair(l, &c, &s);
    write(s, "parent ", 7);
    snprintf(cmd, sizeof cmd, "sleep 0.3; printf child >&%d", s);
    char *argv[] = { "sh", "-c", cmd, 0 };
    extern char **environ;
    pid_t pid = vfork();
    if (pid == 0) {
        execve("/bin/sh", argv, environ);
        _exit(127);
    }
    close(s);
    CHECK(arrives(c, "parent "), "vfork+execve: the parent's close pushes its held data");
    CHECK(arrives_within(c, "child", 5000) && eof(c), "vfork+execve: the child's write and FIN follow");
    waitpid(pid, 0, 0);
    close(c);
}

/* A vfork'ed child runs in the parent's memory: what it closes or duplicates in its own fd table
 * (as subprocess does before exec, with dup2 and close_range) must leave the parent's sockets
 * tracked, and what they hold must still be released. */
static void vfork_child_closing_its_copies(int l) {
    int c, s, pp[2];
    tcp_pair(l, &c, &s);
    pipe(pp);
    write(s, "held", 4);
    extern char **environ;
    char *argv[] = { "true", 0 };
    pid_t pid = vfork();
    if (pid == 0) {
        dup2(pp[1], s);
        close(s);
        close_range(3, ~0U, 0);
        execve("/bin/true", argv, environ);
        _exit(127);
    }
    waitpid(pid, 0, 0);
    CHECK(arrives(c, "held"), "vfork child closing its copies: the parent's held data arrives");
    CHECK(write(s, "next", 4) == 4 && arrives(c, "next"), "vfork child closing its copies: the parent's next response arrives");
    close(s); close(c); close(pp[0]); close(pp[1]);
}

/* What a clone(CLONE_VM | CLONE_VFORK) child does on its own stack, in the parent's memory. */
static int close_copies(void *arg) {
    int *fds = arg;
    dup2(fds[1], fds[0]);
    close(fds[0]);
    close_range(3, ~0U, 0);
    _exit(0);
}

/* The same from a child made by libc's clone with the flags posix_spawn uses. */
static void clone_vfork_child_closing_its_copies(int l) {
    int c, s, pp[2];
    static char stack[64 * 1024];
    tcp_pair(l, &c, &s);
    pipe(pp);
    write(s, "held", 4);
    int fds[2] = { s, pp[1] };
    pid_t pid = clone(close_copies, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, fds);
    waitpid(pid, 0, 0);
    CHECK(pid > 0 && arrives(c, "held"), "clone(CLONE_VM|CLONE_VFORK) child closing its copies: the parent's held data arrives");
    CHECK(write(s, "next", 4) == 4 && arrives(c, "next"), "clone(CLONE_VM|CLONE_VFORK) child closing its copies: the parent's next response arrives");
    close(s); close(c); close(pp[0]); close(pp[1]);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int l = listener(7410);
    close_then_reuse(l);
    dup_keeps_both_names(l);
    dup2_onto_tracked(l);
    fcntl_dupfd(l);
    close_range_releases(l);
    high_numbers(l);
    vfork_child_shares_the_socket(l);
    vfork_child_closing_its_copies(l);
    clone_vfork_child_closing_its_copies(l);
    return summary();
}
