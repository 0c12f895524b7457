/* AT_SECURE probe. Loads libsocktune.so by absolute path with dlopen (the loader ignores
 * LD_PRELOAD paths in secure-execution mode, dlopen does not) and calls the library's own
 * listen() through dlsym, on a socket bound to 127.0.0.1:PORT. Prints whether the process runs
 * in secure-execution mode, whether SOCKTUNE_DEFER_ACCEPT is still in its environment, and the
 * listener's TCP_DEFER_ACCEPT read back: non-zero means the shim acted; and whether the shim made
 * its control file for socktune ctl (/run/socktune/PID.ctl, for an effective uid of root).
 * usage: secure_probe LIBRARY PORT */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    int (*shim_listen)(int, int) = (int (*)(int, int))dlsym(lib, "listen");
    if (!shim_listen) { fprintf(stderr, "no listen in %s\n", argv[1]); return 2; }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(s, (struct sockaddr *)&a, sizeof a) || shim_listen(s, 5)) { perror("bind/listen"); return 2; }
    int defer = -1;
    socklen_t len = sizeof defer;
    getsockopt(s, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len);
    char ctl[64];
    snprintf(ctl, sizeof ctl, "/run/socktune/%d.ctl", (int)getpid());
    printf("secure=%lu env_kept=%d defer_readback=%d ctl=%d\n", getauxval(AT_SECURE),
           getenv("SOCKTUNE_DEFER_ACCEPT") != NULL, defer, access(ctl, F_OK) == 0);
    return 0;
}
