/* A process that makes one TCP socket call and exits: under socktune, the stub loads the shim. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

int main(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    return fd < 0 ? 1 : close(fd);
}
