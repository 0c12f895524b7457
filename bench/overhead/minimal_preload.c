/* The floor a preload library's start-up is compared with: one hook, resolved on first use. */
#define _GNU_SOURCE
#include <dlfcn.h>

int close(int fd) {
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "close");
    return real(fd);
}
