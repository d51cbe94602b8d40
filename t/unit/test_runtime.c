/* Unit tests for proc/runtime.c: which runtime a mapped object is the core
 * of. Names as Debian installs them; executables of other names by their
 * .dynsym, on Debian's own interpreters (python3.11, php8.2, installed by
 * the test dependencies) and on hand-made objects for what a toolchain
 * gives too (an undefined reference, no .dynsym, not ELF). */
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <apr_general.h>
#include "proc/runtime.h"

static apr_pool_t *pool;

static void expect(const char *path, int is_exe, dp_runtime_kind kind, const char *version)
{
    const char *v = "unset";
    dp_runtime_kind k = dp_runtime_of_object(path, is_exe, -1, &v, pool);

    if (k != kind)
        fail_msg("%s (exe %d): kind %d, not %d", path, is_exe, (int)k, (int)kind);
    if (version)
        assert_string_equal(v, version);
    else
        assert_null(v);
}

static void test_names(void **state)
{
    (void)state;
    expect("/usr/bin/python3.11", 1, DP_RUNTIME_CPYTHON, "3.11");
    expect("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", 0, DP_RUNTIME_CPYTHON, "3.11");
    expect("/usr/bin/php8.2", 1, DP_RUNTIME_PHP, "8.2");
    expect("/usr/sbin/php-fpm8.2", 1, DP_RUNTIME_PHP, "8.2");
    expect("/usr/lib/apache2/modules/libphp8.2.so", 0, DP_RUNTIME_PHP, "8.2");
    expect("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so", 0, DP_RUNTIME_JVM, NULL);
    expect("/usr/bin/node", 1, DP_RUNTIME_NODE, NULL);
    expect("/usr/lib/x86_64-linux-gnu/libnode.so.108", 0, DP_RUNTIME_NODE, NULL);
    /* an executable's name counts only for the executable */
    expect("/usr/bin/python3.11", 0, DP_RUNTIME_NONE, NULL);
    expect("/usr/bin/php8.2", 0, DP_RUNTIME_NONE, NULL);
    expect("/usr/lib/node", 0, DP_RUNTIME_NONE, NULL);
    /* names that only look alike */
    expect("/usr/bin/python3", 1, DP_RUNTIME_NONE, NULL);      /* no minor: not a versioned binary */
    expect("/usr/bin/pythonista", 1, DP_RUNTIME_NONE, NULL);
    expect("/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", 0,
           DP_RUNTIME_NONE, NULL);
    expect("/usr/lib/apache2/modules/mod_wsgi.so", 0, DP_RUNTIME_NONE, NULL);
    expect("/usr/lib/jvm/java-17-openjdk-amd64/lib/libjava.so", 0, DP_RUNTIME_NONE, NULL);
    expect("/opt/lib/server/libjvm.so.bak", 0, DP_RUNTIME_NONE, NULL);
    expect("/usr/sbin/apache2", 1, DP_RUNTIME_NONE, NULL);
    expect("", 1, DP_RUNTIME_NONE, NULL);
}

static dp_runtime_kind of_file(const char *renamed, const char *file)
{
    const char *v = "unset";
    int fd = open(file, O_RDONLY);
    dp_runtime_kind k;

    if (fd < 0)
        fail_msg("%s: not installed (t/install-deps.sh installs it)", file);
    k = dp_runtime_of_object(renamed, 1, fd, &v, pool);
    close(fd);
    assert_null(v);         /* the name carries no version */
    return k;
}

/* Debian's interpreters, as if linked into a program of another name. */
static void test_real_symbols(void **state)
{
    (void)state;
    assert_int_equal(of_file("/srv/app/embedded", "/usr/bin/python3.11"), DP_RUNTIME_CPYTHON);
    assert_int_equal(of_file("/srv/app/embedded", "/usr/bin/php8.2"), DP_RUNTIME_PHP);
    assert_int_equal(of_file("/srv/app/true", "/bin/true"), DP_RUNTIME_NONE);
    /* a library's symbols count only for the executable */
    {
        int fd = open("/usr/bin/python3.11", O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(dp_runtime_of_object("/srv/lib/libapp.so", 0, fd, NULL, pool),
                         DP_RUNTIME_NONE);
        close(fd);
    }
}

/* A minimal ELF: null section, .dynstr, .dynsym with one symbol. */
struct tiny_elf {
    Elf64_Ehdr eh;
    Elf64_Shdr sh[3];
    Elf64_Sym sym[2];
    char str[64];
};

static int tiny_fd(const char *name, int defined, unsigned dynsym_type)
{
    struct tiny_elf im;
    char tmpl[] = "/tmp/dp_test_rt_XXXXXX";
    int fd = mkstemp(tmpl);

    assert_true(fd >= 0);
    unlink(tmpl);
    memset(&im, 0, sizeof(im));
    memcpy(im.eh.e_ident, ELFMAG, SELFMAG);
    im.eh.e_ident[EI_CLASS] = ELFCLASS64;
    im.eh.e_shoff = offsetof(struct tiny_elf, sh);
    im.eh.e_shentsize = sizeof(Elf64_Shdr);
    im.eh.e_shnum = 3;
    strcpy(im.str + 1, name);
    im.sh[1].sh_type = SHT_STRTAB;
    im.sh[1].sh_offset = offsetof(struct tiny_elf, str);
    im.sh[1].sh_size = sizeof(im.str);
    im.sh[2].sh_type = dynsym_type;
    im.sh[2].sh_link = 1;
    im.sh[2].sh_offset = offsetof(struct tiny_elf, sym);
    im.sh[2].sh_size = sizeof(im.sym);
    im.sym[1].st_name = 1;
    im.sym[1].st_shndx = defined ? 12 : SHN_UNDEF;
    assert_int_equal(write(fd, &im, sizeof(im)), (ssize_t)sizeof(im));
    return fd;
}

static void test_made_objects(void **state)
{
    static const struct { const char *sym; int defined; unsigned type; dp_runtime_kind k; } c[] = {
        { "_PyRuntime", 1, SHT_DYNSYM, DP_RUNTIME_CPYTHON },
        { "executor_globals", 1, SHT_DYNSYM, DP_RUNTIME_PHP },
        { "zend_execute_ex", 1, SHT_DYNSYM, DP_RUNTIME_PHP },
        { "gHotSpotVMStructs", 1, SHT_DYNSYM, DP_RUNTIME_JVM },
        { "node_module_register", 1, SHT_DYNSYM, DP_RUNTIME_NODE },
        { "_PyRuntime", 0, SHT_DYNSYM, DP_RUNTIME_NONE },       /* only a reference to it */
        { "_PyRuntime", 1, SHT_SYMTAB, DP_RUNTIME_NONE },       /* not exported */
        { "_PyRuntimeX", 1, SHT_DYNSYM, DP_RUNTIME_NONE },
        { "main", 1, SHT_DYNSYM, DP_RUNTIME_NONE },
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        int fd = tiny_fd(c[i].sym, c[i].defined, c[i].type);
        dp_runtime_kind k = dp_runtime_of_object("/srv/app/prog", 1, fd, NULL, pool);
        close(fd);
        if (k != c[i].k)
            fail_msg("%s (defined %d, section type %u): kind %d, not %d", c[i].sym,
                     c[i].defined, c[i].type, (int)k, (int)c[i].k);
    }
    {   /* not ELF, and a truncated header */
        char tmpl[] = "/tmp/dp_test_rt_XXXXXX";
        int fd = mkstemp(tmpl);
        assert_true(fd >= 0);
        unlink(tmpl);
        assert_int_equal(write(fd, "#!/bin/sh\n_PyRuntime\n", 21), 21);
        assert_int_equal(dp_runtime_of_object("/srv/app/prog", 1, fd, NULL, pool),
                         DP_RUNTIME_NONE);
        close(fd);
    }
}

static void test_names_of_kinds(void **state)
{
    (void)state;
    assert_string_equal(dp_runtime_name(DP_RUNTIME_CPYTHON), "CPython");
    assert_string_equal(dp_runtime_name(DP_RUNTIME_PHP), "PHP");
    assert_string_equal(dp_runtime_name(DP_RUNTIME_JVM), "Java (HotSpot JVM)");
    assert_string_equal(dp_runtime_name(DP_RUNTIME_NODE), "Node.js");
    assert_null(dp_runtime_name(DP_RUNTIME_NONE));
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_real_symbols),
        cmocka_unit_test(test_made_objects),
        cmocka_unit_test(test_names_of_kinds),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc ? 1 : 0;
}
