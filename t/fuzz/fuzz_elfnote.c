/* libFuzzer harness: the ELF readers (program headers, PT_NOTE, the GNU build
 * id; section headers and .dynsym for the runtime an executable embeds) on an
 * arbitrary file. */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include <apr_general.h>
#include "proc/elfinfo.h"
#include "proc/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static apr_pool_t *root;
    apr_pool_t *p;
    unsigned char id[64];

    if (!root && (apr_initialize() != APR_SUCCESS || apr_pool_create(&root, NULL) != APR_SUCCESS))
        return 0;
    if (fd < 0)
        fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
    dp_is_elf_fd(fd);
    dp_elf_build_id(fd, id, sizeof(id));
    dp_elf_build_id(fd, id, 4);
    if (apr_pool_create(&p, root) == APR_SUCCESS) {
        dp_runtime_of_object("/srv/app/prog", 1, fd, NULL, p);
        apr_pool_destroy(p);
    }
    return 0;
}
