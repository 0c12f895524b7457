/* Load in turns: keep-alive clients against two or three servers that run side by side, one
 * server at a time, in turns of TURN_MS, so that every server sees the same host. Runs of a few
 * seconds taken apart differ by up to x2 on a shared 2-core host; turns a fraction of a second
 * long, many of them, compare like with like (the matrix's twins do the same).
 *
 * usage: load_turns http|redis CONNS TURN_MS ROUNDS PORT:PATH:PIDS [PORT:PATH:PIDS [PORT:PATH:PIDS]]
 *   PIDS: the server's processes, comma-separated, whose CPU time (/proc/PID/stat) is read at
 *   each turn's start and end. Each round gives every server one turn, the order reversed every
 *   other round. In its turn a server gets CONNS connections each with one request outstanding,
 *   as wrk -c CONNS does; at the turn's end no new request is sent and the turn ends when every
 *   response has come. A server that closes after a response gets a new connection.
 * Prints per turn: "turn ROUND SERVER REQUESTS SECONDS CPU_TICKS". Exits 1 on any error or bad
 * response: a figure from a broken run means nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAX_SERVERS 3
#define MAX_PIDS 16
#define HEAD_MAX 4096

struct server {
    int port, epoll, pids[MAX_PIDS], npids;
    char request[512];
    size_t request_len;
};

struct conn {
    int fd;
    struct server *srv;
    char head[HEAD_MAX];
    size_t head_len;   /* bytes of the response's start gathered, up to HEAD_MAX */
    long body_left;    /* -1: head not complete yet */
    int closes;        /* the response said Connection: close */
};

static int redis_mode;

static void die(const char *what) {
    fprintf(stderr, "load_turns: %s\n", what);
    exit(1);
}

/* A system call failed: errno says why. */
static void die_sys(const char *call) {
    fprintf(stderr, "load_turns: %s: %s\n", call, strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long cpu_ticks(const struct server *s) {
    long total = 0;
    for (int i = 0; i < s->npids; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", s->pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* a worker gone: its time went with it */
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        long utime = 0, stime = 0;
        /* After the command: state, then fields 4..13; utime and stime are fields 14 and 15. */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) == 2)
            total += utime + stime;
    }
    return total;
}

static void open_conn(struct conn *c) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->srv->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
        die_sys("connect");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(c->srv->epoll, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die_sys("epoll_ctl");
}

static void send_request(struct conn *c) {
    c->head_len = 0;
    c->body_left = -1;
    c->closes = 0;
    ssize_t n = write(c->fd, c->srv->request, c->srv->request_len);
    if (n < 0)
        die_sys("write");
    if (n != (ssize_t)c->srv->request_len)
        die("a request written in part");
}

/* The head, `end` bytes, is complete and `extra` bytes of body came with it: what it says of
 * the body and the connection. */
static int read_head(struct conn *c, size_t end, size_t extra) {
    if (redis_mode) { /* "$-1\r\n" (nil) or "$N\r\n" and N bytes, then CRLF */
        long n = strtol(c->head + 1, NULL, 10);
        if (c->head[0] != '$')
            return -1;
        c->body_left = n < 0 ? 0 : n + 2;
    } else {
        c->head[end - 1] = 0;
        if (strncmp(c->head, "HTTP/1.", 7) || strncmp(c->head + 9, "200", 3))
            return -1;
        char *cl = strcasestr(c->head, "\r\ncontent-length:");
        if (!cl)
            return -1;
        c->body_left = strtol(cl + 17, NULL, 10);
        c->closes = strcasestr(c->head, "\r\nconnection: close") != NULL;
    }
    c->body_left -= (long)extra;
    return c->body_left < 0 ? -1 : 0;
}

/* Reads what came; returns 1 once the response is whole. */
static int on_readable(struct conn *c) {
    char buf[65536];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0)
        die_sys("read");
    if (n == 0)
        die("the server closed a connection mid-response");
    if (c->body_left < 0) {
        size_t take = (size_t)n < HEAD_MAX - c->head_len ? (size_t)n : HEAD_MAX - c->head_len;
        memcpy(c->head + c->head_len, buf, take);
        size_t from = c->head_len;
        c->head_len += take;
        const char *mark = redis_mode ? "\r\n" : "\r\n\r\n";
        char *end = memmem(c->head + (from > 3 ? from - 3 : 0), c->head_len - (from > 3 ? from - 3 : 0), mark,
                           strlen(mark));
        if (!end) {
            if (c->head_len == HEAD_MAX)
                die("head too long");
            return 0;
        }
        size_t head_end = end - c->head + strlen(mark);
        if (read_head(c, head_end, c->head_len - head_end + ((size_t)n - take)) < 0)
            die("not a 200 with a Content-Length (or a Redis bulk reply)");
    } else {
        c->body_left -= n;
        if (c->body_left < 0)
            die("more than the response's length");
    }
    return c->body_left == 0;
}

/* One turn of `s`: requests answered, and the seconds it took. */
static long turn(struct server *s, struct conn *conns, int nconns, double turn_s, double *secs) {
    double start = now(), stop = start + turn_s;
    long done = 0;
    int outstanding = 0;
    for (int i = 0; i < nconns; i++) {
        send_request(&conns[i]);
        outstanding++;
    }
    struct epoll_event evs[256];
    while (outstanding > 0) {
        int n = epoll_wait(s->epoll, evs, 256, 1000);
        if (n < 0 && errno != EINTR)
            die_sys("epoll_wait");
        if (n == 0)
            die("no response within 1 s");
        int more = now() < stop;
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!on_readable(c))
                continue;
            done++;
            if (c->closes) {
                close(c->fd);
                open_conn(c);
            }
            if (more)
                send_request(c);
            else
                outstanding--;
        }
    }
    *secs = now() - start;
    return done;
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 5 + MAX_SERVERS) {
        fprintf(stderr, "usage: load_turns http|redis CONNS TURN_MS ROUNDS PORT:PATH:PIDS [PORT:PATH:PIDS ...]\n");
        return 2;
    }
    redis_mode = strcmp(argv[1], "redis") == 0;
    int nconns = atoi(argv[2]), rounds = atoi(argv[4]), nservers = argc - 5;
    double turn_s = atof(argv[3]) / 1000;
    struct server servers[MAX_SERVERS];
    struct conn *conns[MAX_SERVERS];
    for (int k = 0; k < nservers; k++) {
        struct server *s = &servers[k];
        char *spec = argv[5 + k], *path = strchr(spec, ':'), *pids = path ? strchr(path + 1, ':') : NULL;
        if (!pids)
            die("a server is PORT:PATH:PIDS");
        *path++ = 0;
        *pids++ = 0;
        s->port = atoi(spec);
        s->npids = 0;
        for (char *p = strtok(pids, ","); p && s->npids < MAX_PIDS; p = strtok(NULL, ","))
            s->pids[s->npids++] = atoi(p);
        s->request_len = redis_mode
            ? (size_t)snprintf(s->request, sizeof s->request, "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n")
            : (size_t)snprintf(s->request, sizeof s->request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
        s->epoll = epoll_create1(EPOLL_CLOEXEC);
        conns[k] = calloc(nconns, sizeof(struct conn));
        for (int i = 0; i < nconns; i++) {
            conns[k][i].srv = s;
            open_conn(&conns[k][i]);
        }
    }
    for (int r = 0; r < rounds; r++)
        for (int j = 0; j < nservers; j++) {
            int k = r % 2 ? nservers - 1 - j : j;
            double secs;
            long cpu0 = cpu_ticks(&servers[k]);
            long done = turn(&servers[k], conns[k], nconns, turn_s, &secs);
            printf("turn %d %d %ld %.6f %ld\n", r, k, done, secs, cpu_ticks(&servers[k]) - cpu0);
        }
    return 0;
}
