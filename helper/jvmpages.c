/* The memory jhsdb (HotSpot's Serviceability Agent) reads from a core to
 * attach and list the Java threads, added to a core of any dumpType when the
 * target runs a HotSpot JVM. Found the way the agent finds it: through the
 * vmStructs tables libjvm exports (gHotSpotVMStructs, gHotSpotVMTypes), so
 * that no offset is hard-coded and another JDK's layout is read from itself.
 *
 * What the agent reads, and so what is added:
 * - libjvm's writable data and its .bss, whole: the tables, flags
 *   (UseSharedSpaces, SharedArchivePath) and every VM static it starts from;
 * - the thread list (ThreadsSMRSupport::_java_thread_list), each JavaThread
 *   and OSThread, the handle of its java.lang.Thread, that object and the
 *   Strings it refers to (its name) with their bytes, nothing else of the
 *   Java heap;
 * - the class-data archive's header and cloned vtables (FileMapInfo);
 * - every class of every class loader: its Klass, name Symbol and field
 *   array (the agent looks classes up by name through all of them, even
 *   java.lang.Thread to name a thread); the Thread classes and String fully
 *   (fields, constant pool, mirror).
 * Only pages of writable mappings are added: the agent reads read-only ones
 * from the files themselves. Frames need the methods, the code cache and
 * more: dumpTypes with that memory give them (README). */
#include <stdio.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

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
    F_OOP_KLASS, F_FLAGS, F_NUM_FLAGS, F_FLAG_NAME, F_FLAG_ADDR, F_COUNT
};
#define FIELD(f, type, name) [f] = { type, name }
static const char *const field_names[F_COUNT][2] = {
    FIELD(F_THREAD_LIST, "ThreadsSMRSupport", "_java_thread_list"),
    FIELD(F_TL_LENGTH, "ThreadsList", "_length"), FIELD(F_TL_THREADS, "ThreadsList", "_threads"),
    FIELD(F_JT_THREADOBJ, "JavaThread", "_threadObj"),
    FIELD(F_JT_OSTHREAD, "JavaThread", "_osthread"),
    FIELD(F_NK_BASE, "CompressedKlassPointers", "_narrow_klass._base"),
    FIELD(F_NK_SHIFT, "CompressedKlassPointers", "_narrow_klass._shift"),
    FIELD(F_NO_BASE, "CompressedOops", "_narrow_oop._base"),
    FIELD(F_NO_SHIFT, "CompressedOops", "_narrow_oop._shift"),
    FIELD(F_OOP_CKLASS, "oopDesc", "_metadata._compressed_klass"),
    FIELD(F_K_NAME, "Klass", "_name"), FIELD(F_K_SUPER, "Klass", "_super"),
    FIELD(F_K_LH, "Klass", "_layout_helper"), FIELD(F_K_NEXT, "Klass", "_next_link"),
    FIELD(F_K_SECONDARY, "Klass", "_secondary_supers"),
    FIELD(F_K_MIRROR, "Klass", "_java_mirror"),
    FIELD(F_IK_FIELDS, "InstanceKlass", "_fields"),
    FIELD(F_IK_CONSTANTS, "InstanceKlass", "_constants"),
    FIELD(F_IK_METHODS, "InstanceKlass", "_methods"),
    FIELD(F_IK_LOCAL_IF, "InstanceKlass", "_local_interfaces"),
    FIELD(F_IK_TRANS_IF, "InstanceKlass", "_transitive_interfaces"),
    FIELD(F_CP_LENGTH, "ConstantPool", "_length"), FIELD(F_CP_TAGS, "ConstantPool", "_tags"),
    FIELD(F_SYM_LENGTH, "Symbol", "_length"), FIELD(F_SYM_BODY, "Symbol", "_body"),
    FIELD(F_CLDG_HEAD, "ClassLoaderDataGraph", "_head"),
    FIELD(F_CLD_NEXT, "ClassLoaderData", "_next"),
    FIELD(F_CLD_KLASSES, "ClassLoaderData", "_klasses"),
    FIELD(F_FMI_CURRENT, "FileMapInfo", "_current_info"),
    FIELD(F_FMI_HEADER, "FileMapInfo", "_header"),
    FIELD(F_FMH_BASE, "FileMapHeader", "_mapped_base_address"),
    FIELD(F_FMH_VTABLES, "FileMapHeader", "_cloned_vtables_offset"),
    FIELD(F_OOP_KLASS, "oopDesc", "_metadata._klass"),
    FIELD(F_FLAGS, "JVMFlag", "flags"), FIELD(F_NUM_FLAGS, "JVMFlag", "numFlags"),
    FIELD(F_FLAG_NAME, "JVMFlag", "_name"), FIELD(F_FLAG_ADDR, "JVMFlag", "_addr"),
};

enum { T_JAVATHREAD, T_OSTHREAD, T_INSTANCEKLASS, T_CONSTANTPOOL, T_CLD, T_FMI, T_FMH, T_FLAG,
       T_COUNT };
static const char *const type_names[T_COUNT] = {
    "JavaThread", "OSThread", "InstanceKlass", "ConstantPool", "ClassLoaderData",
    "FileMapInfo", "FileMapHeader", "JVMFlag",
};

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
    uint64_t size[T_COUNT];
    uint64_t nk_base, no_base;
    int nk_shift, no_shift;
    int narrow_klass, narrow_oop;   /* UseCompressedClassPointers, UseCompressedOops */
    uint64_t string_klass;          /* java/lang/String's Klass, 0 = not found */
    struct jvm_page *cache;         /* JVM_CACHE_PAGES */
} jvm_walk;

static const dp_map *map_of(const jvm_walk *w, uint64_t addr)
{
    int i;
    for (i = 0; i < w->maps->nelts; i++) {
        const dp_map *m = &APR_ARRAY_IDX(w->maps, i, dp_map);
        if (addr >= m->start && addr < m->end)
            return m;
    }
    return NULL;
}

/* [addr, addr+len) into the core, where it lies in writable memory. */
static void add(jvm_walk *w, uint64_t addr, uint64_t len)
{
    uint64_t pg, end;

    if (!addr || len > (64u << 20) || addr + len < addr)
        return;
    end = addr + (len ? len : 1);
    for (pg = addr & ~4095ULL; pg < end; pg += 4096) {
        const dp_map *m;
        uint64_t *key;
        if (apr_hash_get(w->pages, &pg, sizeof(pg)) || apr_hash_count(w->pages) >= w->max_pages)
            continue;
        if (!(m = map_of(w, pg)) || m->perms[1] != 'w')
            continue;
        key = apr_palloc(w->p, sizeof(*key));
        *key = pg;
        apr_hash_set(w->pages, key, sizeof(*key), key);
    }
}

/* Reads through a small page cache: the walk reads many small fields of
 * few pages while the target is stopped. */
static int rd(jvm_walk *w, uint64_t addr, void *buf, size_t len)
{
    uint64_t pg = addr & ~4095ULL;
    struct jvm_page *c;

    if (addr < 4096)
        return -1;
    if ((addr & 4095) + len > 4096)
        return dp_core_read(w->core, addr, buf, len);
    c = &w->cache[(pg >> 12) % JVM_CACHE_PAGES];
    if (c->page != pg) {
        if (dp_core_read(w->core, pg, c->data, sizeof(c->data)) != 0) {
            c->page = 0;
            return dp_core_read(w->core, addr, buf, len);
        }
        c->page = pg;
    }
    memcpy(buf, c->data + (addr - pg), len);
    return 0;
}

static uint64_t ptr(jvm_walk *w, uint64_t addr)
{
    uint64_t v = 0;
    return rd(w, addr, &v, 8) == 0 ? v : 0;
}

static int32_t s32(jvm_walk *w, uint64_t addr)
{
    int32_t v = 0;
    return rd(w, addr, &v, 4) == 0 ? v : 0;
}

static uint32_t u32(jvm_walk *w, uint64_t addr)
{
    uint32_t v = 0;
    return rd(w, addr, &v, 4) == 0 ? v : 0;
}

static int str_is_prefix(jvm_walk *w, uint64_t addr, const char *s)
{
    char buf[96];
    size_t n = strlen(s);
    return n <= sizeof(buf) && rd(w, addr, buf, n) == 0 && memcmp(buf, s, n) == 0;
}

/* A NUL-terminated name of at most cap-1 bytes at addr into buf ("" when
 * unreadable): read up to the page's end first, so that the last string of
 * a mapping is read too. */
static const char *name_at(jvm_walk *w, uint64_t addr, char *buf, size_t cap)
{
    size_t got = 0;

    while (addr && got < cap - 1) {
        size_t n = 4096 - (size_t)((addr + got) & 4095);
        if (n > cap - 1 - got)
            n = cap - 1 - got;
        if (rd(w, addr + got, buf + got, n) != 0)
            break;
        if (memchr(buf + got, '\0', n))
            return buf;
        got += n;
    }
    buf[0] = '\0';         /* unreadable, or longer than any name looked for */
    return buf;
}

/* The value of one of libjvm's exported gHotSpot* words. */
static int exported(dp_lang_target *t, jvm_walk *w, const char *name, uint64_t *v)
{
    uint64_t addr;
    if (dp_lang_symbol(t, DP_RUNTIME_JVM, name, &addr, NULL, NULL) != 0)
        return -1;
    *v = ptr(w, addr);
    return 0;
}

/* The fields and type sizes the walk needs, from the VM's own tables. */
static int read_tables(dp_lang_target *t, jvm_walk *w)
{
    uint64_t tab, stride, o_type, o_field, o_static, o_off, o_addr, o_size, e;
    int n, k;

    if (exported(t, w, "gHotSpotVMStructs", &tab) || exported(t, w, "gHotSpotVMStructEntryArrayStride", &stride)
        || exported(t, w, "gHotSpotVMStructEntryTypeNameOffset", &o_type)
        || exported(t, w, "gHotSpotVMStructEntryFieldNameOffset", &o_field)
        || exported(t, w, "gHotSpotVMStructEntryIsStaticOffset", &o_static)
        || exported(t, w, "gHotSpotVMStructEntryOffsetOffset", &o_off)
        || exported(t, w, "gHotSpotVMStructEntryAddressOffset", &o_addr) || !tab || !stride)
        return -1;
    for (n = 0, e = tab; n < MAX_VMSTRUCTS; n++, e += stride) {
        uint64_t tn = ptr(w, e + o_type);
        char type[96], field[96];
        if (!tn)
            break;
        name_at(w, tn, type, sizeof(type));
        name_at(w, ptr(w, e + o_field), field, sizeof(field));
        for (k = 0; k < F_COUNT; k++)
            if (!w->have[k] && !strcmp(field, field_names[k][1])
                && !strcmp(type, field_names[k][0])) {
                w->field[k] = s32(w, e + o_static) ? ptr(w, e + o_addr) : ptr(w, e + o_off);
                w->have[k] = 1;
            }
    }
    if (exported(t, w, "gHotSpotVMTypes", &tab) || exported(t, w, "gHotSpotVMTypeEntryArrayStride", &stride)
        || exported(t, w, "gHotSpotVMTypeEntryTypeNameOffset", &o_type)
        || exported(t, w, "gHotSpotVMTypeEntrySizeOffset", &o_size) || !tab || !stride)
        return -1;
    for (n = 0, e = tab; n < MAX_VMSTRUCTS; n++, e += stride) {
        uint64_t tn = ptr(w, e + o_type);
        char type[96];
        if (!tn)
            break;
        name_at(w, tn, type, sizeof(type));
        for (k = 0; k < T_COUNT; k++)
            if (!w->size[k] && !strcmp(type, type_names[k]))
                w->size[k] = ptr(w, e + o_size);
    }
    return 0;
}

#define HAVE(w, f) ((w)->have[f])
#define FLD(w, f) ((w)->field[f])

static uint64_t symbol_len(jvm_walk *w, uint64_t sym)
{
    uint16_t n = 0;
    rd(w, sym + FLD(w, F_SYM_LENGTH), &n, 2);
    return FLD(w, F_SYM_BODY) + n;
}

static void add_array(jvm_walk *w, uint64_t a, uint64_t elem)
{
    int32_t n = a ? s32(w, a) : 0;
    if (n >= 0 && n < (1 << 20))
        add(w, a, 8 + elem * (uint64_t)n);
}

/* A class as the agent reads it to name a field: the Klass, its name, field
 * array, constant pool, interfaces, mirror; then its superclasses. */
static void add_class_fully(jvm_walk *w, uint64_t k)
{
    int depth;

    for (depth = 0; k && depth < 32; depth++, k = ptr(w, k + FLD(w, F_K_SUPER))) {
        uint64_t cp, mirror;
        add(w, k, w->size[T_INSTANCEKLASS]);
        add(w, ptr(w, k + FLD(w, F_K_NAME)), symbol_len(w, ptr(w, k + FLD(w, F_K_NAME))));
        add_array(w, ptr(w, k + FLD(w, F_IK_FIELDS)), 2);
        add_array(w, ptr(w, k + FLD(w, F_IK_METHODS)), 8);
        add_array(w, ptr(w, k + FLD(w, F_IK_LOCAL_IF)), 8);
        add_array(w, ptr(w, k + FLD(w, F_IK_TRANS_IF)), 8);
        add_array(w, ptr(w, k + FLD(w, F_K_SECONDARY)), 8);
        if ((cp = ptr(w, k + FLD(w, F_IK_CONSTANTS))) != 0) {
            int32_t n = s32(w, cp + FLD(w, F_CP_LENGTH));
            if (n > 0 && n < (1 << 16))
                add(w, cp, w->size[T_CONSTANTPOOL] + 8 * (uint64_t)n);
            add_array(w, ptr(w, cp + FLD(w, F_CP_TAGS)), 1);
        }
        if ((mirror = ptr(w, k + FLD(w, F_K_MIRROR))) != 0) {
            add(w, mirror, 8);
            add(w, ptr(w, mirror), 512);
        }
    }
}

static uint64_t klass_of(jvm_walk *w, uint64_t oop)
{
    if (!w->narrow_klass)
        return ptr(w, oop + FLD(w, F_OOP_KLASS));
    return w->nk_base + ((uint64_t)u32(w, oop + FLD(w, F_OOP_CKLASS)) << w->nk_shift);
}

/* The reference in the field at addr, when it leads into writable memory
 * (the heap, or the archive's heap regions mapped from classes.jsa). */
static uint64_t ref_at(jvm_walk *w, uint64_t addr)
{
    uint64_t to;
    const dp_map *m;

    if (w->narrow_oop) {
        uint32_t v = u32(w, addr);
        to = v ? w->no_base + ((uint64_t)v << w->no_shift) : 0;
    }
    else
        to = ptr(w, addr);
    return to && (m = map_of(w, to)) && m->perms[1] == 'w' ? to : 0;
}

/* The Strings a java.lang.Thread refers to (its name), each with its byte
 * array: nothing else of the heap, which holds the application's data. */
static void add_strings_of(jvm_walk *w, uint64_t obj, uint64_t len)
{
    uint64_t off, str, arr, step = w->narrow_oop ? 4 : 8;
    uint64_t len_at = w->narrow_klass ? 12 : 16;    /* an array's length, after its header */
    int32_t slh;

    if (!w->string_klass || (slh = s32(w, w->string_klass + FLD(w, F_K_LH))) <= 0 || slh > 256)
        return;
    for (off = 8; off + step <= len; off += step) {
        if (!(str = ref_at(w, obj + off)) || klass_of(w, str) != w->string_klass)
            continue;
        add(w, str, (uint64_t)slh);
        for (uint64_t o = 12; o + step <= (uint64_t)slh; o += step) {
            uint32_t n;
            if (!(arr = ref_at(w, str + o)))
                continue;
            n = u32(w, arr + len_at);
            if (n <= 65536)
                add(w, arr, len_at + 4 + (uint64_t)n);
        }
    }
}

/* A bool flag's value (-XX:±name); dflt when it cannot be read. */
static int flag(jvm_walk *w, const char *name, int dflt)
{
    uint64_t arr = ptr(w, FLD(w, F_FLAGS)), n = ptr(w, FLD(w, F_NUM_FLAGS)), i;
    char buf[96];

    if (!arr || !w->size[T_FLAG] || n > 8192)
        return dflt;
    for (i = 0; i < n; i++) {
        uint64_t e = arr + i * w->size[T_FLAG];
        if (!strcmp(name_at(w, ptr(w, e + FLD(w, F_FLAG_NAME)), buf, sizeof(buf)), name)) {
            unsigned char v;
            return rd(w, ptr(w, e + FLD(w, F_FLAG_ADDR)), &v, 1) == 0 ? v != 0 : dflt;
        }
    }
    return dflt;
}

static void add_threads(jvm_walk *w)
{
    uint64_t tl = ptr(w, FLD(w, F_THREAD_LIST)), arr;
    uint32_t n, i;

    if (!tl)
        return;
    add(w, tl, 32);
    n = u32(w, tl + FLD(w, F_TL_LENGTH));
    arr = ptr(w, tl + FLD(w, F_TL_THREADS));
    if (n > MAX_THREADS || !arr)
        return;
    add(w, arr, 8 * (uint64_t)n);
    for (i = 0; i < n; i++) {
        uint64_t jt = ptr(w, arr + 8 * (uint64_t)i), slot, oop, k;
        int32_t lh;
        if (!jt)
            continue;
        add(w, jt, w->size[T_JAVATHREAD]);
        add(w, ptr(w, jt + FLD(w, F_JT_OSTHREAD)), w->size[T_OSTHREAD]);
        slot = ptr(w, jt + FLD(w, F_JT_THREADOBJ));
        add(w, slot, 8);
        if (!slot || !(oop = ptr(w, slot)))
            continue;
        k = klass_of(w, oop);
        add_class_fully(w, k);
        lh = s32(w, k + FLD(w, F_K_LH));
        add(w, oop, lh > 0 && lh < 4096 ? (uint64_t)lh : 256);
        add_strings_of(w, oop, lh > 0 && lh < 4096 ? (uint64_t)lh : 256);
    }
}

static void add_archive_header(jvm_walk *w)
{
    uint64_t fi = HAVE(w, F_FMI_CURRENT) ? ptr(w, FLD(w, F_FMI_CURRENT)) : 0, hd;

    if (!fi)
        return;
    add(w, fi, w->size[T_FMI]);
    if (!(hd = ptr(w, fi + FLD(w, F_FMI_HEADER))))
        return;
    add(w, hd, w->size[T_FMH]);
    add(w, ptr(w, hd + FLD(w, F_FMH_BASE)) + ptr(w, hd + FLD(w, F_FMH_VTABLES)), 4096);
}

/* Every class loader's classes (record: into the core; else only looking
 * for java/lang/String's Klass, which naming the threads needs). */
static void walk_classes(jvm_walk *w, int record)
{
    uint64_t cld = ptr(w, FLD(w, F_CLDG_HEAD));
    unsigned loaders = 0, klasses = 0;
    static const char want[] = "java/lang/String";

    for (; cld && loaders < MAX_LOADERS; loaders++, cld = ptr(w, cld + FLD(w, F_CLD_NEXT))) {
        uint64_t k = ptr(w, cld + FLD(w, F_CLD_KLASSES));
        if (record)
            add(w, cld, w->size[T_CLD]);
        for (; k && klasses < MAX_KLASSES; klasses++, k = ptr(w, k + FLD(w, F_K_NEXT))) {
            uint64_t name = ptr(w, k + FLD(w, F_K_NAME));
            if (!record) {
                if (name && symbol_len(w, name) == FLD(w, F_SYM_BODY) + sizeof(want) - 1
                    && str_is_prefix(w, name + FLD(w, F_SYM_BODY), want)) {
                    w->string_klass = k;
                    return;
                }
                continue;
            }
            add(w, k, w->size[T_INSTANCEKLASS]);
            if (name)
                add(w, name, symbol_len(w, name));
            if (s32(w, k + FLD(w, F_K_LH)) > 0)
                add_array(w, ptr(w, k + FLD(w, F_IK_FIELDS)), 2);
        }
    }
}

/* libjvm's writable mappings and the .bss right after them, whole. */
static const char *add_libjvm_data(jvm_walk *w)
{
    const char *libjvm = NULL;
    int i;

    for (i = 0; i < w->maps->nelts; i++) {
        const dp_map *m = &APR_ARRAY_IDX(w->maps, i, dp_map);
        if (!libjvm && m->path[0] == '/'
            && dp_runtime_of_object(m->path, 0, -1, NULL, w->p) == DP_RUNTIME_JVM)
            libjvm = m->path;
        if (libjvm && !strcmp(m->path, libjvm) && m->perms[1] == 'w') {
            const dp_map *next = i + 1 < w->maps->nelts
                                 ? &APR_ARRAY_IDX(w->maps, i + 1, dp_map) : NULL;
            dp_core_want(w->core, m->start, m->end);
            if (next && !next->path[0] && !next->inode && next->start == m->end
                && next->perms[1] == 'w')
                dp_core_want(w->core, next->start, next->end);
        }
    }
    return libjvm;
}

void dp_jvm_add_pages(dp_lang_target *t, dp_core *c)
{
    jvm_walk w;
    char path[64], *buf;
    size_t len;
    apr_hash_index_t *hi;
    int k;

    memset(&w, 0, sizeof(w));
    w.core = c;
    w.p = t->pool;
    w.max_pages = DP_JVM_MAX_PAGES;
    w.pages = apr_hash_make(w.p);
    w.cache = apr_pcalloc(w.p, sizeof(*w.cache) * JVM_CACHE_PAGES);
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)t->pid);
    if (dp_read_file(path, &buf, &len, w.p) != 0)
        return;
    w.maps = dp_parse_maps(buf, len, w.p);
    if (!add_libjvm_data(&w) || read_tables(t, &w) != 0)
        return;
    for (k = 0; k < F_COUNT; k++)
        if (!w.have[k] && k < F_OPTIONAL)
            return;         /* another layout than the one this walk knows: data and .bss only */
    w.nk_base = ptr(&w, FLD(&w, F_NK_BASE));
    w.nk_shift = s32(&w, FLD(&w, F_NK_SHIFT));
    w.no_base = ptr(&w, FLD(&w, F_NO_BASE));
    w.no_shift = s32(&w, FLD(&w, F_NO_SHIFT));
    if (w.nk_shift < 0 || w.nk_shift > 8 || w.no_shift < 0 || w.no_shift > 8)
        return;
    w.narrow_klass = flag(&w, "UseCompressedClassPointers", 1);
    w.narrow_oop = flag(&w, "UseCompressedOops", 1);
    /* the threads first, should the page budget run out in a large class list */
    walk_classes(&w, 0);
    add_archive_header(&w);
    if (w.string_klass)
        add_class_fully(&w, w.string_klass);
    add_threads(&w);
    walk_classes(&w, 1);
    for (hi = apr_hash_first(w.p, w.pages); hi; hi = apr_hash_next(hi)) {
        const uint64_t *pg;
        apr_hash_this(hi, (const void **)&pg, NULL, NULL);
        dp_core_want(c, *pg, *pg + 4096);
    }
}
