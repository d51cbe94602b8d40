#include <elf.h>
#include <string.h>
#include <unistd.h>
#include "proc/elfinfo.h"

int dp_is_elf_fd(int fd)
{
    unsigned char m[4];
    return pread(fd, m, 4, 0) == 4 && memcmp(m, ELFMAG, SELFMAG) == 0;
}

static int build_id_in_notes(const unsigned char *n, size_t len, unsigned char *id, size_t cap)
{
    size_t off = 0;

    while (off + sizeof(Elf64_Nhdr) <= len) {
        Elf64_Nhdr h;       /* copied: the buffer gives no alignment */
        size_t name_off = off + sizeof(h), desc_off, next;
        memcpy(&h, n + off, sizeof(h));
        desc_off = name_off + (((size_t)h.n_namesz + 3) & ~(size_t)3);
        next = desc_off + (((size_t)h.n_descsz + 3) & ~(size_t)3);
        if (desc_off > len || h.n_descsz > len - desc_off)
            break;
        if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4
            && memcmp(n + name_off, "GNU", 4) == 0) {
            size_t k = h.n_descsz < cap ? h.n_descsz : cap;
            memcpy(id, n + desc_off, k);
            return (int)k;
        }
        off = next;
    }
    return 0;
}

int dp_elf_build_id(int fd, unsigned char *id, size_t cap)
{
    Elf64_Ehdr eh;
    int i;

    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh)
        || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return -1;
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        return 0;
    for (i = 0; i < eh.e_phnum && i < 256; i++) {
        Elf64_Phdr ph;
        unsigned char notes[4096];
        size_t len;
        int r;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof(ph)))
            != (ssize_t)sizeof(ph))
            return 0;
        if (ph.p_type != PT_NOTE)
            continue;
        len = ph.p_filesz < sizeof(notes) ? ph.p_filesz : sizeof(notes);
        if (pread(fd, notes, len, (off_t)ph.p_offset) != (ssize_t)len)
            continue;
        r = build_id_in_notes(notes, len, id, cap);
        if (r > 0)
            return r;
    }
    return 0;
}
