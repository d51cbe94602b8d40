/* The JVM walk's means (helper/jvmpages.c says what it adds and why): the
 * target's memory read through the stopped core with a small page cache,
 * the pages a walk wants, and the field offsets and type sizes read from the
 * VM's own vmStructs tables, so that no offset is hard-coded. */
#include <stdio.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "helper/jvm_walk.h"

/* type, field, and the type and field in newer JDKs where they changed:
 * JDK 21 replaced InstanceKlass::_fields (u2 records) by _fieldinfo_stream
 * (bytes); the compressed-pointer statics lost their _narrow_klass. /
 * _narrow_oop. prefix; JDK 25 declares _osthread in Thread, JavaThread's
 * base class. Without the newer names a JDK 21 or 25 lacked a required
 * field, the walk stopped, and jhsdb found no thread list in the core. */
#define FIELD(f, type, name) [f] = { type, name, NULL, NULL }
#define FIELD2(f, type, name, newer) [f] = { type, name, type, newer }
#define FIELD3(f, type, name, newer_type, newer) [f] = { type, name, newer_type, newer }
static const char *const field_names[F_COUNT][4] = {
    FIELD(F_THREAD_LIST, "ThreadsSMRSupport", "_java_thread_list"),
    FIELD(F_TL_LENGTH, "ThreadsList", "_length"), FIELD(F_TL_THREADS, "ThreadsList", "_threads"),
    FIELD(F_JT_THREADOBJ, "JavaThread", "_threadObj"),
    FIELD3(F_JT_OSTHREAD, "JavaThread", "_osthread", "Thread", "_osthread"),
    FIELD2(F_NK_BASE, "CompressedKlassPointers", "_narrow_klass._base", "_base"),
    FIELD2(F_NK_SHIFT, "CompressedKlassPointers", "_narrow_klass._shift", "_shift"),
    FIELD2(F_NO_BASE, "CompressedOops", "_narrow_oop._base", "_base"),
    FIELD2(F_NO_SHIFT, "CompressedOops", "_narrow_oop._shift", "_shift"),
    FIELD(F_OOP_CKLASS, "oopDesc", "_metadata._compressed_klass"),
    FIELD(F_K_NAME, "Klass", "_name"), FIELD(F_K_SUPER, "Klass", "_super"),
    FIELD(F_K_LH, "Klass", "_layout_helper"), FIELD(F_K_NEXT, "Klass", "_next_link"),
    FIELD(F_K_SECONDARY, "Klass", "_secondary_supers"),
    FIELD(F_K_MIRROR, "Klass", "_java_mirror"),
    FIELD2(F_IK_FIELDS, "InstanceKlass", "_fields", "_fieldinfo_stream"),
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
    FIELD(F_HEAP, "Universe", "_collectedHeap"),
};

static const char *const type_names[T_COUNT] = {
    "JavaThread", "OSThread", "InstanceKlass", "ConstantPool", "ClassLoaderData",
    "FileMapInfo", "FileMapHeader", "JVMFlag",
};

const dp_map *dp_jvm_map_of(const jvm_walk *w, uint64_t addr)
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
void dp_jvm_add(jvm_walk *w, uint64_t addr, uint64_t len)
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
        if (!(m = dp_jvm_map_of(w, pg)) || m->perms[1] != 'w')
            continue;
        key = apr_palloc(w->p, sizeof(*key));
        *key = pg;
        apr_hash_set(w->pages, key, sizeof(*key), key);
    }
}

/* Reads through a small page cache: the walk reads many small fields of
 * few pages while the target is stopped. */
int dp_jvm_read(jvm_walk *w, uint64_t addr, void *buf, size_t len)
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

uint64_t dp_jvm_ptr(jvm_walk *w, uint64_t addr)
{
    uint64_t v = 0;
    return dp_jvm_read(w, addr, &v, 8) == 0 ? v : 0;
}

int32_t dp_jvm_s32(jvm_walk *w, uint64_t addr)
{
    int32_t v = 0;
    return dp_jvm_read(w, addr, &v, 4) == 0 ? v : 0;
}

uint32_t dp_jvm_u32(jvm_walk *w, uint64_t addr)
{
    uint32_t v = 0;
    return dp_jvm_read(w, addr, &v, 4) == 0 ? v : 0;
}

int dp_jvm_str_is_prefix(jvm_walk *w, uint64_t addr, const char *s)
{
    char buf[96];
    size_t n = strlen(s);
    return n <= sizeof(buf) && dp_jvm_read(w, addr, buf, n) == 0 && memcmp(buf, s, n) == 0;
}

/* A NUL-terminated name of at most cap-1 bytes at addr into buf ("" when
 * unreadable): read up to the page's end first, so that the last string of
 * a mapping is read too. */
const char *dp_jvm_name_at(jvm_walk *w, uint64_t addr, char *buf, size_t cap)
{
    size_t got = 0;

    while (addr && got < cap - 1) {
        size_t n = 4096 - (size_t)((addr + got) & 4095);
        if (n > cap - 1 - got)
            n = cap - 1 - got;
        if (dp_jvm_read(w, addr + got, buf + got, n) != 0)
            break;
        if (memchr(buf + got, '\0', n))
            return buf;
        got += n;
    }
    buf[0] = '\0';         /* unreadable, or longer than any name looked for */
    return buf;
}

/* The value of one of libjvm's exported gHotSpot* words. */
static int jvm_exported(dp_lang_target *t, jvm_walk *w, const char *name, uint64_t *v)
{
    uint64_t addr;
    if (dp_lang_symbol(t, DP_RUNTIME_JVM, name, &addr, NULL, NULL) != 0)
        return -1;
    *v = dp_jvm_ptr(w, addr);
    return 0;
}

/* The fields and type sizes the walk needs, from the VM's own tables. */
int dp_jvm_read_tables(dp_lang_target *t, jvm_walk *w)
{
    uint64_t tab, stride, o_type, o_field, o_static, o_off, o_addr, o_size, e;
    int n, k;

    if (jvm_exported(t, w, "gHotSpotVMStructs", &tab) || jvm_exported(t, w, "gHotSpotVMStructEntryArrayStride", &stride)
        || jvm_exported(t, w, "gHotSpotVMStructEntryTypeNameOffset", &o_type)
        || jvm_exported(t, w, "gHotSpotVMStructEntryFieldNameOffset", &o_field)
        || jvm_exported(t, w, "gHotSpotVMStructEntryIsStaticOffset", &o_static)
        || jvm_exported(t, w, "gHotSpotVMStructEntryOffsetOffset", &o_off)
        || jvm_exported(t, w, "gHotSpotVMStructEntryAddressOffset", &o_addr) || !tab || !stride)
        return -1;
    for (n = 0, e = tab; n < MAX_VMSTRUCTS; n++, e += stride) {
        uint64_t tn = dp_jvm_ptr(w, e + o_type);
        char type[96], field[96];
        if (!tn)
            break;
        dp_jvm_name_at(w, tn, type, sizeof(type));
        dp_jvm_name_at(w, dp_jvm_ptr(w, e + o_field), field, sizeof(field));
        for (k = 0; k < F_COUNT; k++) {
            int newer = field_names[k][3] && !strcmp(field, field_names[k][3])
                        && !strcmp(type, field_names[k][2]);
            if (!w->have[k] && (newer || (!strcmp(field, field_names[k][1])
                                          && !strcmp(type, field_names[k][0])))) {
                w->field[k] = dp_jvm_s32(w, e + o_static) ? dp_jvm_ptr(w, e + o_addr) : dp_jvm_ptr(w, e + o_off);
                w->have[k] = 1;
                w->newer[k] = newer;
            }
        }
    }
    if (jvm_exported(t, w, "gHotSpotVMTypes", &tab) || jvm_exported(t, w, "gHotSpotVMTypeEntryArrayStride", &stride)
        || jvm_exported(t, w, "gHotSpotVMTypeEntryTypeNameOffset", &o_type)
        || jvm_exported(t, w, "gHotSpotVMTypeEntrySizeOffset", &o_size) || !tab || !stride)
        return -1;
    for (n = 0, e = tab; n < MAX_VMSTRUCTS; n++, e += stride) {
        uint64_t tn = dp_jvm_ptr(w, e + o_type);
        char type[96];
        if (!tn)
            break;
        dp_jvm_name_at(w, tn, type, sizeof(type));
        for (k = 0; k < T_COUNT; k++)
            if (!w->size[k] && !strcmp(type, type_names[k]))
                w->size[k] = dp_jvm_ptr(w, e + o_size);
    }
    return 0;
}
