/* Looks like a CPython and is nothing of the kind: it exports Py_Version and
 * a _PyRuntime of 32 bytes. Py_Version says 3.8.0, a version with no layout
 * entry; with the argument "3.11" it says 3.11.2, whose entry the walk finds
 * and then refuses, since the walk reads past 32 bytes of _PyRuntime; with
 * "3.13" 3.13.5, whose _PyRuntime should start with the 584 bytes of its
 * _Py_DebugOffsets. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((used)) unsigned int Py_Version = 0x030800f0;
__attribute__((used)) char _PyRuntime[32];

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "3.11"))
        Py_Version = 0x030b02f0;
    if (argc > 1 && !strcmp(argv[1], "3.13"))
        Py_Version = 0x030d05f0;
    puts("ready");
    fflush(stdout);
    for (;;)
        pause();
}
