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
 *   and OSThread, the handle of its java.lang.Thread, that object, the
 *   Strings it refers to (its name) with their bytes and its
 *   Thread$FieldHolder (JDK 19+: status, priority), nothing else of the
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

#include "helper/jvm_walk.h"

#define HAVE(w, f) ((w)->have[f])
#define FLD(w, f) ((w)->field[f])

static uint64_t symbol_len(jvm_walk *w, uint64_t sym)
{
    uint16_t n = 0;
    dp_jvm_read(w, sym + FLD(w, F_SYM_LENGTH), &n, 2);
    return FLD(w, F_SYM_BODY) + n;
}

static void add_array(jvm_walk *w, uint64_t a, uint64_t elem)
{
    int32_t n = a ? dp_jvm_s32(w, a) : 0;
    if (n >= 0 && n < (1 << 20))
        dp_jvm_add(w, a, 8 + elem * (uint64_t)n);
}

/* The element size of a class's field array: u2 records up to JDK 20, the
 * bytes of a stream (_fieldinfo_stream) from JDK 21 */
static uint64_t fields_elem(jvm_walk *w)
{
    return w->newer[F_IK_FIELDS] ? 1 : 2;
}

/* A constant pool, its tags and the Symbols of its Utf8 entries: the names
 * and signatures of the class's fields (JDK 21's field stream refers to
 * them by index; without a class-data archive they live in metaspace, not
 * in a file the agent reads itself). */
static void add_constants(jvm_walk *w, uint64_t cp)
{
    int32_t n = dp_jvm_s32(w, cp + FLD(w, F_CP_LENGTH)), i;
    uint64_t tags = dp_jvm_ptr(w, cp + FLD(w, F_CP_TAGS));

    if (n <= 0 || n >= (1 << 16))
        return;
    dp_jvm_add(w, cp, w->size[T_CONSTANTPOOL] + 8 * (uint64_t)n);
    add_array(w, tags, 1);
    for (i = 1; tags && i < n; i++) {
        unsigned char tag = 0;
        uint64_t sym;
        /* Array<u1>: an int length, then the bytes; tag 1 = JVM_CONSTANT_Utf8 */
        if (dp_jvm_read(w, tags + 4 + (uint64_t)i, &tag, 1) != 0 || tag != 1)
            continue;
        if ((sym = dp_jvm_ptr(w, cp + w->size[T_CONSTANTPOOL] + 8 * (uint64_t)i)) != 0)
            dp_jvm_add(w, sym, symbol_len(w, sym));
    }
}

/* A class as the agent reads it to name a field: the Klass, its name, field
 * array, constant pool, interfaces, mirror; then its superclasses. */
static void add_class_fully(jvm_walk *w, uint64_t k)
{
    int depth;

    for (depth = 0; k && depth < 32; depth++, k = dp_jvm_ptr(w, k + FLD(w, F_K_SUPER))) {
        uint64_t cp, mirror;
        dp_jvm_add(w, k, w->size[T_INSTANCEKLASS]);
        dp_jvm_add(w, dp_jvm_ptr(w, k + FLD(w, F_K_NAME)), symbol_len(w, dp_jvm_ptr(w, k + FLD(w, F_K_NAME))));
        add_array(w, dp_jvm_ptr(w, k + FLD(w, F_IK_FIELDS)), fields_elem(w));
        add_array(w, dp_jvm_ptr(w, k + FLD(w, F_IK_METHODS)), 8);
        add_array(w, dp_jvm_ptr(w, k + FLD(w, F_IK_LOCAL_IF)), 8);
        add_array(w, dp_jvm_ptr(w, k + FLD(w, F_IK_TRANS_IF)), 8);
        add_array(w, dp_jvm_ptr(w, k + FLD(w, F_K_SECONDARY)), 8);
        if ((cp = dp_jvm_ptr(w, k + FLD(w, F_IK_CONSTANTS))) != 0)
            add_constants(w, cp);
        if ((mirror = dp_jvm_ptr(w, k + FLD(w, F_K_MIRROR))) != 0) {
            dp_jvm_add(w, mirror, 8);
            dp_jvm_add(w, dp_jvm_ptr(w, mirror), 512);
        }
    }
}

static uint64_t klass_of(jvm_walk *w, uint64_t oop)
{
    if (!w->narrow_klass)
        return dp_jvm_ptr(w, oop + FLD(w, F_OOP_KLASS));
    return w->nk_base + ((uint64_t)dp_jvm_u32(w, oop + FLD(w, F_OOP_CKLASS)) << w->nk_shift);
}

/* The reference in the field at addr, when it leads into writable memory
 * (the heap, or the archive's heap regions mapped from classes.jsa). */
static uint64_t ref_at(jvm_walk *w, uint64_t addr)
{
    uint64_t to;
    const dp_map *m;

    if (w->narrow_oop) {
        uint32_t v = dp_jvm_u32(w, addr);
        to = v ? w->no_base + ((uint64_t)v << w->no_shift) : 0;
    }
    else
        to = dp_jvm_ptr(w, addr);
    return to && (m = dp_jvm_map_of(w, to)) && m->perms[1] == 'w' ? to : 0;
}

/* The Strings a java.lang.Thread refers to (its name), each with its byte
 * array: nothing else of the heap, which holds the application's data. */
static void add_strings_of(jvm_walk *w, uint64_t obj, uint64_t len)
{
    uint64_t off, str, arr, step = w->narrow_oop ? 4 : 8;
    uint64_t len_at = w->narrow_klass ? 12 : 16;    /* an array's length, after its header */
    int32_t slh;

    if (!w->string_klass || (slh = dp_jvm_s32(w, w->string_klass + FLD(w, F_K_LH))) <= 0 || slh > 256)
        return;
    for (off = 8; off + step <= len; off += step) {
        if (!(str = ref_at(w, obj + off)) || klass_of(w, str) != w->string_klass)
            continue;
        dp_jvm_add(w, str, (uint64_t)slh);
        for (uint64_t o = 12; o + step <= (uint64_t)slh; o += step) {
            uint32_t n;
            if (!(arr = ref_at(w, str + o)))
                continue;
            n = dp_jvm_u32(w, arr + len_at);
            if (n <= 65536)
                dp_jvm_add(w, arr, len_at + 4 + (uint64_t)n);
        }
    }
}

/* The java.lang.Thread$FieldHolder a java.lang.Thread refers to (JDK 19
 * and later keep a thread's status, priority and daemon flag there, and
 * jhsdb reads them to list the thread), with its class: references, ints
 * and booleans, none of the objects it refers to. */
static void add_holder_of(jvm_walk *w, uint64_t obj, uint64_t len)
{
    static const char want[] = "java/lang/Thread$FieldHolder";
    uint64_t off, ref, k, name, step = w->narrow_oop ? 4 : 8;
    int32_t lh;

    for (off = 8; off + step <= len; off += step) {
        if (!(ref = ref_at(w, obj + off)) || !(k = klass_of(w, ref))
            || !(name = dp_jvm_ptr(w, k + FLD(w, F_K_NAME)))
            || symbol_len(w, name) != FLD(w, F_SYM_BODY) + sizeof(want) - 1
            || !dp_jvm_str_is_prefix(w, name + FLD(w, F_SYM_BODY), want))
            continue;
        lh = dp_jvm_s32(w, k + FLD(w, F_K_LH));
        dp_jvm_add(w, ref, lh > 0 && lh < 4096 ? (uint64_t)lh : 256);
        add_class_fully(w, k);
        return;
    }
}

/* A bool flag's value (-XX:±name); dflt when it cannot be read. */
static int flag(jvm_walk *w, const char *name, int dflt)
{
    uint64_t arr = dp_jvm_ptr(w, FLD(w, F_FLAGS)), n = dp_jvm_ptr(w, FLD(w, F_NUM_FLAGS)), i;
    char buf[96];

    if (!arr || !w->size[T_FLAG] || n > 8192)
        return dflt;
    for (i = 0; i < n; i++) {
        uint64_t e = arr + i * w->size[T_FLAG];
        if (!strcmp(dp_jvm_name_at(w, dp_jvm_ptr(w, e + FLD(w, F_FLAG_NAME)), buf, sizeof(buf)), name)) {
            unsigned char v;
            return dp_jvm_read(w, dp_jvm_ptr(w, e + FLD(w, F_FLAG_ADDR)), &v, 1) == 0 ? v != 0 : dflt;
        }
    }
    return dflt;
}

static void add_threads(jvm_walk *w)
{
    uint64_t tl = dp_jvm_ptr(w, FLD(w, F_THREAD_LIST)), arr;
    uint32_t n, i;

    if (!tl)
        return;
    dp_jvm_add(w, tl, 32);
    n = dp_jvm_u32(w, tl + FLD(w, F_TL_LENGTH));
    arr = dp_jvm_ptr(w, tl + FLD(w, F_TL_THREADS));
    if (n > MAX_THREADS || !arr)
        return;
    dp_jvm_add(w, arr, 8 * (uint64_t)n);
    for (i = 0; i < n; i++) {
        uint64_t jt = dp_jvm_ptr(w, arr + 8 * (uint64_t)i), slot, oop, k;
        int32_t lh;
        if (!jt)
            continue;
        dp_jvm_add(w, jt, w->size[T_JAVATHREAD]);
        dp_jvm_add(w, dp_jvm_ptr(w, jt + FLD(w, F_JT_OSTHREAD)), w->size[T_OSTHREAD]);
        slot = dp_jvm_ptr(w, jt + FLD(w, F_JT_THREADOBJ));
        dp_jvm_add(w, slot, 8);
        if (!slot || !(oop = dp_jvm_ptr(w, slot)))
            continue;
        k = klass_of(w, oop);
        add_class_fully(w, k);
        lh = dp_jvm_s32(w, k + FLD(w, F_K_LH));
        dp_jvm_add(w, oop, lh > 0 && lh < 4096 ? (uint64_t)lh : 256);
        add_strings_of(w, oop, lh > 0 && lh < 4096 ? (uint64_t)lh : 256);
        add_holder_of(w, oop, lh > 0 && lh < 4096 ? (uint64_t)lh : 256);
    }
}

/* An object jhsdb types by its vtable (a C++ object of libjvm in the C
 * heap), and, depth levels down, each such object it points to. */
static void add_vtabled(jvm_walk *w, uint64_t obj, uint64_t len, const char *libjvm, int depth)
{
    uint64_t off;

    dp_jvm_add(w, obj, len);
    for (off = 8; depth > 0 && off + 8 <= len; off += 8) {
        uint64_t to = dp_jvm_ptr(w, obj + off), vt;
        const dp_map *m = to ? dp_jvm_map_of(w, to) : NULL, *vm;
        if (!m || m->perms[1] != 'w' || m->path[0] == '/' || to == obj)
            continue;
        vm = (vt = dp_jvm_ptr(w, to)) ? dp_jvm_map_of(w, vt) : NULL;
        if (vm && !strcmp(vm->path, libjvm))
            add_vtabled(w, to, 512, libjvm, depth - 1);
    }
}

/* The collected heap (Universe::_collectedHeap: SerialHeap, G1CollectedHeap
 * ...), which jhsdb from JDK 21 types by its vtable before it resolves the
 * thread objects, with the generations and spaces it points to. */
static void add_heap(jvm_walk *w, const char *libjvm)
{
    uint64_t heap = HAVE(w, F_HEAP) ? dp_jvm_ptr(w, FLD(w, F_HEAP)) : 0;

    if (heap)
        add_vtabled(w, heap, 2048, libjvm, 2);
}

static void add_archive_header(jvm_walk *w)
{
    uint64_t fi = HAVE(w, F_FMI_CURRENT) ? dp_jvm_ptr(w, FLD(w, F_FMI_CURRENT)) : 0, hd;

    if (!fi)
        return;
    dp_jvm_add(w, fi, w->size[T_FMI]);
    if (!(hd = dp_jvm_ptr(w, fi + FLD(w, F_FMI_HEADER))))
        return;
    dp_jvm_add(w, hd, w->size[T_FMH]);
    dp_jvm_add(w, dp_jvm_ptr(w, hd + FLD(w, F_FMH_BASE)) + dp_jvm_ptr(w, hd + FLD(w, F_FMH_VTABLES)), 4096);
}

/* Every class loader's classes (record: into the core; else only looking
 * for java/lang/String's Klass, which naming the threads needs). */
static void walk_classes(jvm_walk *w, int record)
{
    uint64_t cld = dp_jvm_ptr(w, FLD(w, F_CLDG_HEAD));
    unsigned loaders = 0, klasses = 0;
    static const char want[] = "java/lang/String";

    for (; cld && loaders < MAX_LOADERS; loaders++, cld = dp_jvm_ptr(w, cld + FLD(w, F_CLD_NEXT))) {
        uint64_t k = dp_jvm_ptr(w, cld + FLD(w, F_CLD_KLASSES));
        if (record)
            dp_jvm_add(w, cld, w->size[T_CLD]);
        for (; k && klasses < MAX_KLASSES; klasses++, k = dp_jvm_ptr(w, k + FLD(w, F_K_NEXT))) {
            uint64_t name = dp_jvm_ptr(w, k + FLD(w, F_K_NAME));
            if (!record) {
                if (name && symbol_len(w, name) == FLD(w, F_SYM_BODY) + sizeof(want) - 1
                    && dp_jvm_str_is_prefix(w, name + FLD(w, F_SYM_BODY), want)) {
                    w->string_klass = k;
                    return;
                }
                continue;
            }
            dp_jvm_add(w, k, w->size[T_INSTANCEKLASS]);
            if (name)
                dp_jvm_add(w, name, symbol_len(w, name));
            if (dp_jvm_s32(w, k + FLD(w, F_K_LH)) > 0)
                add_array(w, dp_jvm_ptr(w, k + FLD(w, F_IK_FIELDS)), fields_elem(w));
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
    const char *libjvm;
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
    if (!(libjvm = add_libjvm_data(&w)) || dp_jvm_read_tables(t, &w) != 0)
        return;
    for (k = 0; k < F_COUNT; k++)
        if (!w.have[k] && k < F_OPTIONAL)
            return;         /* another layout than the one this walk knows: data and .bss only */
    w.nk_base = dp_jvm_ptr(&w, FLD(&w, F_NK_BASE));
    w.nk_shift = dp_jvm_s32(&w, FLD(&w, F_NK_SHIFT));
    w.no_base = dp_jvm_ptr(&w, FLD(&w, F_NO_BASE));
    w.no_shift = dp_jvm_s32(&w, FLD(&w, F_NO_SHIFT));
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
    add_heap(&w, libjvm);
    walk_classes(&w, 1);
    for (hi = apr_hash_first(w.p, w.pages); hi; hi = apr_hash_next(hi)) {
        const uint64_t *pg;
        apr_hash_this(hi, (const void **)&pg, NULL, NULL);
        dp_core_want(c, *pg, *pg + 4096);
    }
}
