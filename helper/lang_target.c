/* The language walkers' view of a stopped target (helper/stacks.h's
 * dp_lang_* API): which runtime each mapped object is the core of, the
 * interpreters' root symbols found before the stop, checked reads through a
 * small page cache that records the pages read. */
#include <fcntl.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <elfutils/libdwfl.h>
#include <apr_strings.h>
#include <apr_hash.h>

#include "helper/stacks.h"
#include "helper/lang_target.h"
#include "common/proto.h"

#define USER_MIN 4096ULL
#define USER_MAX 0x7fffffffffffULL

static const char *exe_of(pid_t pid, apr_pool_t *p)
{
    char path[64], buf[4096];
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    n = readlink(path, buf, sizeof(buf) - 1);
    return n > 0 ? apr_pstrndup(p, buf, (apr_size_t)n) : "";
}

typedef struct kinds_arg {
    apr_hash_t *kinds;
    const char *exe;
    pid_t pid;
    apr_pool_t *p;
} kinds_arg;

static int note_kind(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                     void *arg)
{
    kinds_arg *a = arg;
    int is_exe, fd = -1;
    dp_runtime_kind *k;

    (void)mod, (void)userdata, (void)base;
    if (!name || apr_hash_get(a->kinds, name, APR_HASH_KEY_STRING))
        return DWARF_CB_OK;
    is_exe = !strcmp(name, a->exe);
    if (is_exe) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)a->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    k = apr_palloc(a->p, sizeof(*k));
    *k = dp_runtime_of_object(name, is_exe, fd, NULL, a->p);
    if (fd >= 0)
        close(fd);
    apr_hash_set(a->kinds, apr_pstrdup(a->p, name), APR_HASH_KEY_STRING, k);
    return DWARF_CB_OK;
}

/* The runtime each mapped object is the core of (proc/runtime.h), by the
 * module's name: found once, before the target is stopped. */
apr_hash_t *dp_lang_runtime_kinds(Dwfl *dwfl, pid_t pid, apr_pool_t *p)
{
    kinds_arg a = { apr_hash_make(p), exe_of(pid, p), pid, p };
    dwfl_getmodules(dwfl, note_kind, &a, 0);
    return a.kinds;
}

dp_runtime_kind dp_lang_kind_of(apr_hash_t *kinds, const char *mname)
{
    const dp_runtime_kind *k = mname ? apr_hash_get(kinds, mname, APR_HASH_KEY_STRING) : NULL;
    return k ? *k : DP_RUNTIME_NONE;
}

/* An object whose interpreter has a walker here. */
int dp_lang_walked(apr_hash_t *kinds, const char *mname)
{
    dp_runtime_kind k = dp_lang_kind_of(kinds, mname);
    return k == DP_RUNTIME_CPYTHON || k == DP_RUNTIME_PHP;
}

#define CACHE_PAGES 64
struct lang_page {
    uint64_t page;                  /* 0 = empty */
    unsigned char data[4096];
};

typedef struct root_symbol {
    uint64_t addr, size;
    const char *module;
} root_symbol;

/* Every symbol a walker looks for, in one pass over each interpreter
 * object's symbol table, before the target is stopped. */
static const char *const root_names[] = {
    "_PyRuntime", "Py_Version", "PyCode_Type", "PyUnicode_Type",
    "executor_globals", "execute_ex", "zend_execute_ex", "sapi_globals", NULL
};

/* Each defined, named symbol of mod until fn answers nonzero (both look-ups below). */
typedef int symbol_fn(const char *name, const GElf_Sym *sym, GElf_Addr addr, void *arg);
static int each_symbol(Dwfl_Module *mod, symbol_fn *fn, void *arg)
{
    int i, n = dwfl_module_getsymtab(mod);

    for (i = 1; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        const char *name = dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL);
        if (name && name[0] && sym.st_shndx != SHN_UNDEF && fn(name, &sym, addr, arg))
            return 1;
    }
    return 0;
}

typedef struct roots_walk {
    dp_lang_target *t;
    const char *module;
} roots_walk;

static int keep_root(const char *name, const GElf_Sym *sym, GElf_Addr addr, void *arg)
{
    roots_walk *w = arg;
    int k;

    for (k = 0; root_names[k]; k++)
        if (!strcmp(name, root_names[k])
            && !apr_hash_get(w->t->symbols, root_names[k], APR_HASH_KEY_STRING)) {
            root_symbol *r = apr_palloc(w->t->pool, sizeof(*r));
            r->addr = addr;
            r->size = sym->st_size;
            r->module = apr_pstrdup(w->t->pool, w->module);
            apr_hash_set(w->t->symbols, root_names[k], APR_HASH_KEY_STRING, r);
        }
    return 0;
}

static int collect_roots(Dwfl_Module *mod, void **userdata, const char *mname, Dwarf_Addr base,
                         void *arg)
{
    roots_walk w = { arg, mname };
    (void)userdata, (void)base;
    if (dp_lang_walked(w.t->kinds, mname))
        each_symbol(mod, keep_root, &w);
    return DWARF_CB_OK;
}

void dp_lang_target_init(dp_lang_target *t, Dwfl *dwfl, apr_hash_t *kinds, pid_t pid,
                             dp_stacks *s, apr_pool_t *p)
{
    memset(t, 0, sizeof(*t));
    t->dwfl = dwfl;
    t->pid = pid;
    t->kinds = kinds;
    t->out = s;
    t->pool = p;
    t->keep = p;
    t->symbols = apr_hash_make(p);
    t->cache = apr_pcalloc(p, sizeof(struct lang_page) * CACHE_PAGES);
    s->pages = apr_array_make(p, 64, sizeof(uint64_t));
    dwfl_getmodules(dwfl, collect_roots, t, 0);
}

/* ------------------------------------------------- for the walkers */

static void record_page(dp_lang_target *t, uint64_t page)
{
    int i;
    for (i = t->out->pages->nelts - 1; i >= 0 && i >= t->out->pages->nelts - 16; i--)
        if (APR_ARRAY_IDX(t->out->pages, i, uint64_t) == page)
            return;
    if (t->out->pages->nelts < DP_LANG_MAX_PAGES)
        APR_ARRAY_PUSH(t->out->pages, uint64_t) = page;
}

/* One page of the target: through the stopped target's core, or (no core:
 * a target left running) straight from its memory. */
static int live_read(dp_lang_target *t, uint64_t page, unsigned char *data)
{
    struct iovec local = { data, 4096 }, remote = { (void *)(uintptr_t)page, 4096 };

    if (t->core)
        return dp_core_read(t->core, page, data, 4096);
    return process_vm_readv(t->pid, &local, 1, &remote, 1, 0) == 4096 ? 0 : -1;
}

void dp_lang_target_live(dp_lang_target *t, dp_stacks *out, apr_pool_t *p)
{
    t->core = NULL;
    t->out = out;
    t->pool = p;
    out->pages = apr_array_make(p, 16, sizeof(uint64_t));
    memset(t->cache, 0, sizeof(struct lang_page) * CACHE_PAGES);
}

/* Through a small page cache: a walk reads many small fields of few pages. */
int dp_lang_read(dp_lang_target *t, uint64_t addr, void *buf, size_t len)
{
    unsigned char *out = buf;

    if (addr < USER_MIN || addr >= USER_MAX || len > USER_MAX - addr)
        return -1;
    while (len) {
        uint64_t page = addr & ~4095ULL, off = addr - page;
        size_t n = len < 4096 - off ? len : (size_t)(4096 - off);
        struct lang_page *c = &t->cache[(page >> 12) % CACHE_PAGES];
        if (c->page != page) {
            if (live_read(t, page, c->data) != 0) {
                c->page = 0;
                return -1;
            }
            c->page = page;
            record_page(t, page);
        }
        memcpy(out, c->data + off, n);
        out += n;
        addr += n;
        len -= n;
    }
    return 0;
}

int dp_lang_ptr(dp_lang_target *t, uint64_t addr, uint64_t *v)
{
    return dp_lang_read(t, addr, v, 8);
}

dp_lang_frame *dp_lang_push(dp_stack_thread *th)
{
    dp_lang_frame *l;
    if (th->lang->nelts >= DP_STACK_MAX_FRAMES) {
        th->flags |= DP_ST_TRUNCATED;
        return NULL;
    }
    l = apr_array_push(th->lang);
    memset(l, 0, sizeof(*l));
    return l;
}

typedef struct sym_query {
    dp_lang_target *t;
    dp_runtime_kind kind;
    const char *name;
    uint64_t addr, size;
    const char *module;
    int found;
} sym_query;

static int match_query(const char *name, const GElf_Sym *sym, GElf_Addr addr, void *arg)
{
    sym_query *q = arg;

    if (strcmp(name, q->name) != 0)
        return 0;
    q->addr = addr;
    q->size = sym->st_size;
    q->found = 1;
    return 1;
}

static int find_in_module(Dwfl_Module *mod, void **userdata, const char *mname, Dwarf_Addr base,
                          void *arg)
{
    sym_query *q = arg;

    (void)userdata;
    (void)base;
    if (!mname || dp_lang_kind_of(q->t->kinds, mname) != q->kind || !each_symbol(mod, match_query, q))
        return DWARF_CB_OK;
    q->module = mname;
    return DWARF_CB_ABORT;
}

int dp_lang_symbol(dp_lang_target *t, dp_runtime_kind kind, const char *name,
                   uint64_t *addr, uint64_t *size, const char **module)
{
    sym_query q = { t, kind, name, 0, 0, NULL, 0 };
    const root_symbol *r = apr_hash_get(t->symbols, name, APR_HASH_KEY_STRING);

    if (r && dp_lang_kind_of(t->kinds, r->module) == kind) {
        *addr = r->addr;
        if (size)
            *size = r->size;
        if (module)
            *module = r->module;
        return 0;
    }
    for (size_t k = 0; root_names[k]; k++)
        if (!strcmp(root_names[k], name))
            return -1;      /* a root: the table above was complete */
    dwfl_getmodules(t->dwfl, find_in_module, &q, 0);
    if (!q.found)
        return -1;
    *addr = q.addr;
    if (size)
        *size = q.size;
    if (module)
        *module = q.module;
    return 0;
}

typedef struct file_query {
    const char *module;
    Dwfl_Module *found;
} file_query;

static int module_named(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                        void *arg)
{
    file_query *q = arg;
    (void)userdata;
    (void)base;
    if (name && !strcmp(name, q->module)) {
        q->found = mod;
        return DWARF_CB_ABORT;
    }
    return DWARF_CB_OK;
}

const char *dp_lang_file(dp_lang_target *t, const char *module, size_t *size)
{
    file_query q = { module, NULL };
    Dwarf_Addr bias;
    Elf *elf;

    dwfl_getmodules(t->dwfl, module_named, &q, 0);
    elf = q.found ? dwfl_module_getelf(q.found, &bias) : NULL;
    return elf ? elf_rawfile(elf, size) : NULL;
}
