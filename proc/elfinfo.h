/* What the API reports of an ELF object: is it one, and its GNU build id. */
#ifndef DP_ELFINFO_H
#define DP_ELFINFO_H

#include <stddef.h>

/* 1 when the file starts with the ELF magic. */
int dp_is_elf_fd(int fd);
/* Reads NT_GNU_BUILD_ID from the program headers' PT_NOTE segments with
 * pread (a few small reads). Returns its length (0 when absent), -1 when not ELF. */
int dp_elf_build_id(int fd, unsigned char *id, size_t cap);

#endif
