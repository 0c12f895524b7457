/* One keep-alive connection served as a plain C server would: accept, read the request, write
 * header and body in two writes, read (the client's close), close. dup(998) and dup(999) mark the
 * start and the end for bench/crossings/count.py. usage: one_connection PORT */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
int main(int argc, char **argv) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])), .sin_addr.s_addr = htonl(0x7f000001) };
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind(l, (void *)&a, sizeof a); listen(l, 4);
    dup(998); /* start marker */
    char buf[256];
    int s = accept(l, 0, 0);
    read(s, buf, sizeof buf);
    write(s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 38);
    write(s, "hello", 5);
    read(s, buf, sizeof buf);
    close(s);
    dup(999); /* end marker */
    return 0;
}
