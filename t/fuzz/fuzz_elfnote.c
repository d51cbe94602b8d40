/* libFuzzer harness: the ELF readers (program headers, PT_NOTE, the GNU build
 * id) on an arbitrary file. */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include "proc/elfinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    unsigned char id[64];

    if (fd < 0)
        fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
    dp_is_elf_fd(fd);
    dp_elf_build_id(fd, id, sizeof(id));
    dp_elf_build_id(fd, id, 4);
    return 0;
}
