/* dumpType: the Windows MINIDUMP_TYPE bits a dump request carries. The worker
 * validates them and decides which DiagProcAllow word they need; the helper
 * checks them again and the core writer acts on them. */
#ifndef DP_DUMPTYPE_H
#define DP_DUMPTYPE_H

/* MINIDUMP_TYPE bits (Windows' names). Every bit of MiniDumpValidTypeFlags is
 * accepted: the ones below add memory to the core; the rest are no-ops on
 * Linux, because the minimal core already holds what they ask for or Linux
 * has no counterpart (README, Dumps). */
#define DP_DUMP_NORMAL                  0x0UL
#define DP_DUMP_DATA_SEGS               0x1UL       /* writable segments of files, + .bss */
#define DP_DUMP_FULL_MEMORY             0x2UL       /* every readable mapping */
#define DP_DUMP_INDIRECT_MEMORY         0x40UL      /* pages stacks and registers point into */
#define DP_DUMP_PROCESS_THREAD_DATA     0x100UL     /* each thread's TCB and static TLS */
#define DP_DUMP_PRIVATE_RW_MEMORY       0x200UL     /* private anonymous read-write memory */
#define DP_DUMP_CODE_SEGS               0x2000UL    /* executable mappings of files */
#define DP_DUMP_PRIVATE_WRITE_COPY      0x10000UL   /* private writable file mappings */
#define DP_DUMP_IGNORE_INACCESSIBLE     0x20000UL
#define DP_DUMP_VALID                   0x01ffffffUL    /* MiniDumpValidTypeFlags */
#define DP_DUMP_SUPPORTED DP_DUMP_VALID
/* Bits that add memory beyond the minimal dump (need `DiagProcAllow fulldump`). */
#define DP_DUMP_NEEDS_FULLDUMP (DP_DUMP_DATA_SEGS | DP_DUMP_FULL_MEMORY | DP_DUMP_INDIRECT_MEMORY \
        | DP_DUMP_PROCESS_THREAD_DATA | DP_DUMP_PRIVATE_RW_MEMORY | DP_DUMP_CODE_SEGS \
        | DP_DUMP_PRIVATE_WRITE_COPY)
/* What DP_DUMP_INDIRECT_MEMORY may add in all, and how much of each stack is
 * scanned for pointers. */
#define DP_INDIRECT_MAX (4ULL << 20)
#define DP_INDIRECT_SCAN_MAX (1ULL << 20)

#endif
