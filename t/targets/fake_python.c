/* Looks like a CPython of a version with no layout table entry: it exports
 * Py_Version (3.12.0) and a _PyRuntime, and is nothing of the kind. */
#include <stdio.h>
#include <unistd.h>

__attribute__((used)) const unsigned int Py_Version = 0x030c00f0;
__attribute__((used)) char _PyRuntime[4096];

int main(void)
{
    puts("ready");
    fflush(stdout);
    for (;;)
        pause();
}
