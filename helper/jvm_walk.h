/* What the JVM walk's two files share (helper/jvm_walk.c: reading the
 * target and the VM's tables; helper/jvmpages.c: what jhsdb needs). */
#ifndef DP_JVM_WALK_H
#define DP_JVM_WALK_H

#include <stdint.h>
#include <apr_tables.h>
#include <apr_hash.h>
#include "helper/stacks.h"
#include "helper/lang_target.h"
#include "proc/procfs.h"

#define MAX_VMSTRUCTS 8192
#define MAX_THREADS 65536
#define MAX_KLASSES 262144
#define MAX_LOADERS 65536

enum {  /* the fields the walk follows */
    F_THREAD_LIST, F_TL_LENGTH, F_TL_THREADS, F_JT_THREADOBJ, F_JT_OSTHREAD,
    F_NK_BASE, F_NK_SHIFT, F_NO_BASE, F_NO_SHIFT, F_OOP_CKLASS,
    F_K_NAME, F_K_SUPER, F_K_LH, F_K_NEXT, F_K_SECONDARY, F_K_MIRROR,
    F_IK_FIELDS, F_IK_CONSTANTS, F_IK_METHODS, F_IK_LOCAL_IF, F_IK_TRANS_IF,
    F_CP_LENGTH, F_CP_TAGS, F_SYM_LENGTH, F_SYM_BODY,
    F_CLDG_HEAD, F_CLD_NEXT, F_CLD_KLASSES,
    F_OPTIONAL,         /* from here on: a JVM may lack them (no archive, no such flag) */
    F_FMI_CURRENT = F_OPTIONAL, F_FMI_HEADER, F_FMH_BASE, F_FMH_VTABLES,
    F_OOP_KLASS, F_FLAGS, F_NUM_FLAGS, F_FLAG_NAME, F_FLAG_ADDR, F_HEAP, F_COUNT
};
enum { T_JAVATHREAD, T_OSTHREAD, T_INSTANCEKLASS, T_CONSTANTPOOL, T_CLD, T_FMI, T_FMH, T_FLAG,
       T_COUNT };
#define JVM_CACHE_PAGES 64
struct jvm_page {
    uint64_t page;                  /* 0 = empty */
    unsigned char data[4096];
};

typedef struct jvm_walk {
    dp_core *core;
    apr_array_header_t *maps;       /* dp_map of the target */
    apr_hash_t *pages;              /* the page addresses the core gets */
    unsigned max_pages;
    apr_pool_t *p;
    uint64_t field[F_COUNT];        /* offset, or address for statics */
    int have[F_COUNT];              /* 0 = not in this JVM's tables */
    int newer[F_COUNT];             /* 1 = found under its newer JDK's names (jvm_walk.c) */
    uint64_t size[T_COUNT];
    uint64_t nk_base, no_base;
    int nk_shift, no_shift;
    int narrow_klass, narrow_oop;   /* UseCompressedClassPointers, UseCompressedOops */
    uint64_t string_klass;          /* java/lang/String's Klass, 0 = not found */
    struct jvm_page *cache;         /* JVM_CACHE_PAGES */
} jvm_walk;

/* The mapping that holds addr, NULL when none. */
const dp_map *dp_jvm_map_of(const jvm_walk *w, uint64_t addr);
/* Add [addr, addr + len) to the pages the core gets (writable mappings only,
 * within the page budget). */
void dp_jvm_add(jvm_walk *w, uint64_t addr, uint64_t len);
/* The target's memory as the core holds it: 0, or -1 unless all was read;
 * the typed readers give 0 for what cannot be read. */
int dp_jvm_read(jvm_walk *w, uint64_t addr, void *buf, size_t len);
uint64_t dp_jvm_ptr(jvm_walk *w, uint64_t addr);
int32_t dp_jvm_s32(jvm_walk *w, uint64_t addr);
uint32_t dp_jvm_u32(jvm_walk *w, uint64_t addr);
int dp_jvm_str_is_prefix(jvm_walk *w, uint64_t addr, const char *s);
const char *dp_jvm_name_at(jvm_walk *w, uint64_t addr, char *buf, size_t cap);
/* The fields and type sizes the walk needs, from the VM's own tables. */
int dp_jvm_read_tables(dp_lang_target *t, jvm_walk *w);

#endif
