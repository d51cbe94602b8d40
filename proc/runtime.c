#include <elf.h>
#include <string.h>
#include <unistd.h>
#include <apr_strings.h>
#include "common/format.h"
#include "proc/runtime.h"

/* "3.11" from "python3.11", "libpython3.11.so.1.0": digits and dots right
 * after prefix in the base name, with at least one dot; NULL otherwise. */
static const char *version_after(const char *base, const char *prefix, apr_pool_t *p)
{
    size_t k = strlen(prefix);
    const char *v, *e;

    if (strncmp(base, prefix, k) != 0)
        return NULL;
    v = base + k;
    for (e = v; (*e >= '0' && *e <= '9') || (*e == '.' && e[1] >= '0' && e[1] <= '9'); e++)
        ;
    if (e == v || !memchr(v, '.', (size_t)(e - v)))
        return NULL;
    return apr_pstrndup(p, v, (apr_size_t)(e - v));
}

static dp_runtime_kind kind_of_path(const char *path, int is_exe, const char **version,
                                    apr_pool_t *p)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, *v;

    if ((is_exe && (v = version_after(base, "python", p)) != NULL)
        || (v = version_after(base, "libpython", p)) != NULL) {
        *version = v;
        return DP_RUNTIME_CPYTHON;
    }
    if ((is_exe && ((v = version_after(base, "php-fpm", p)) != NULL
                    || (v = version_after(base, "php", p)) != NULL))
        || (v = version_after(base, "libphp", p)) != NULL) {
        *version = v;
        return DP_RUNTIME_PHP;
    }
    if (dp_ends_with(path, "/lib/server/libjvm.so"))
        return DP_RUNTIME_JVM;
    if ((is_exe && (!strcmp(base, "node") || !strcmp(base, "nodejs")))
        || !strncmp(base, "libnode.so", 10))
        return DP_RUNTIME_NODE;
    return DP_RUNTIME_NONE;
}

static const struct {
    const char *symbol;
    dp_runtime_kind kind;
} root_symbols[] = {
    { "_PyRuntime", DP_RUNTIME_CPYTHON },
    { "executor_globals", DP_RUNTIME_PHP },
    { "zend_execute_ex", DP_RUNTIME_PHP },         /* a thread-safe PHP has no executor_globals */
    { "gHotSpotVMStructs", DP_RUNTIME_JVM },
    { "node_module_register", DP_RUNTIME_NODE },
};

#define DYNSTR_MAX (4u << 20)       /* a larger .dynstr is not an interpreter's */
#define SYM_CHUNK 256

/* The kind whose root symbol the object's .dynsym defines (pread only). */
static dp_runtime_kind kind_of_symbols(int fd, apr_pool_t *p)
{
    Elf64_Ehdr eh;
    Elf64_Shdr sym, str;
    char *names;
    Elf64_Sym chunk[SYM_CHUNK];
    size_t i, n, k;
    int s;

    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh)
        || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64
        || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum > 4096)
        return DP_RUNTIME_NONE;
    for (s = 0; s < eh.e_shnum; s++) {
        if (pread(fd, &sym, sizeof(sym), (off_t)(eh.e_shoff + (Elf64_Off)s * sizeof(sym)))
            != (ssize_t)sizeof(sym))
            return DP_RUNTIME_NONE;
        if (sym.sh_type == SHT_DYNSYM)
            break;
    }
    if (s == eh.e_shnum || sym.sh_link >= eh.e_shnum
        || pread(fd, &str, sizeof(str), (off_t)(eh.e_shoff + (Elf64_Off)sym.sh_link * sizeof(str)))
           != (ssize_t)sizeof(str)
        || str.sh_size == 0 || str.sh_size > DYNSTR_MAX)
        return DP_RUNTIME_NONE;
    names = apr_palloc(p, str.sh_size + 1);
    if (pread(fd, names, str.sh_size, (off_t)str.sh_offset) != (ssize_t)str.sh_size)
        return DP_RUNTIME_NONE;
    names[str.sh_size] = '\0';
    n = sym.sh_size / sizeof(Elf64_Sym);
    for (i = 0; i < n; i += SYM_CHUNK) {
        size_t want = (n - i < SYM_CHUNK ? n - i : SYM_CHUNK) * sizeof(Elf64_Sym);
        if (pread(fd, chunk, want, (off_t)(sym.sh_offset + i * sizeof(Elf64_Sym)))
            != (ssize_t)want)
            return DP_RUNTIME_NONE;
        for (size_t j = 0; j < want / sizeof(Elf64_Sym); j++) {
            if (chunk[j].st_shndx == SHN_UNDEF || chunk[j].st_name >= str.sh_size)
                continue;
            for (k = 0; k < sizeof(root_symbols) / sizeof(root_symbols[0]); k++)
                if (!strcmp(names + chunk[j].st_name, root_symbols[k].symbol))
                    return root_symbols[k].kind;
        }
    }
    return DP_RUNTIME_NONE;
}

dp_runtime_kind dp_runtime_of_object(const char *path, int is_exe, int fd, const char **version,
                                     apr_pool_t *p)
{
    const char *v = NULL;
    dp_runtime_kind k = path ? kind_of_path(path, is_exe, &v, p) : DP_RUNTIME_NONE;

    if (k == DP_RUNTIME_NONE && is_exe && fd >= 0)
        k = kind_of_symbols(fd, p);
    if (version)
        *version = v;
    return k;
}

const char *dp_runtime_name(dp_runtime_kind kind)
{
    switch (kind) {
    case DP_RUNTIME_CPYTHON: return "CPython";
    case DP_RUNTIME_PHP: return "PHP";
    case DP_RUNTIME_JVM: return "Java (HotSpot JVM)";
    case DP_RUNTIME_NODE: return "Node.js";
    default: return NULL;
    }
}
