/* Unit tests for proc/elfinfo.c: ELF detection and GNU build ids.
 * Real objects (/bin/true, the libc this test is linked with, the test
 * itself) are checked against `readelf -n`; hand-made files cover notes
 * a toolchain would not produce. */
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
#include <apr_strings.h>
#include "proc/elfinfo.h"
#include "common/format.h"
#include "proc/procfs.h"

static apr_pool_t *pool;

/* "Build ID: <hex>" from readelf -n, NULL when readelf is missing or
 * reports no build id. */
static const char *readelf_build_id(const char *path)
{
    char cmd[1200], line[512];
    const char *id = NULL;
    FILE *f;

    if (strchr(path, '\''))
        return NULL;
    snprintf(cmd, sizeof(cmd), "LC_ALL=C readelf -n '%s' 2>/dev/null", path);
    f = popen(cmd, "r");
    if (!f)
        return NULL;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "Build ID: ");
        if (p && !id) {
            p += 10;
            id = apr_pstrmemdup(pool, p, strspn(p, "0123456789abcdef"));
        }
    }
    pclose(f);
    return id;
}

static void check_against_readelf(const char *path)
{
    const char *want = readelf_build_id(path);
    unsigned char id[64];
    int fd, n;

    if (!want) {
        print_message("readelf gives no build id for %s: skipped\n", path);
        skip();
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(dp_is_elf_fd(fd), 1);
    n = dp_elf_build_id(fd, id, sizeof(id));
    assert_int_equal(n, (int)strlen(want) / 2);
    assert_string_equal(dp_hex(id, (size_t)n, pool), want);

    /* a smaller buffer gets the id's first bytes */
    memset(id, 0, sizeof(id));
    assert_int_equal(dp_elf_build_id(fd, id, 4), 4);
    assert_string_equal(dp_hex(id, 4, pool), apr_pstrndup(pool, want, 8));
    assert_int_equal(id[4], 0);
    close(fd);
}

static void test_bin_true(void **state)
{
    (void)state;
    check_against_readelf("/bin/true");
}

/* The libc mapped into this very process, found through dp_parse_maps. */
static void test_libc(void **state)
{
    char *buf;
    size_t len;
    apr_array_header_t *maps;
    const char *libc = NULL;
    int i;
    (void)state;

    assert_int_equal(dp_read_file("/proc/self/maps", &buf, &len, pool), 0);
    maps = dp_parse_maps(buf, len, pool);
    for (i = 0; i < maps->nelts && !libc; i++) {
        const char *p = APR_ARRAY_IDX(maps, i, dp_map).path;
        const char *base = strrchr(p, '/');
        if (base && (strncmp(base + 1, "libc.so.", 8) == 0 || strncmp(base + 1, "libc-", 5) == 0))
            libc = p;
    }
    assert_non_null(libc);
    check_against_readelf(libc);
}

static void test_self(void **state)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    (void)state;

    assert_true(n > 0);
    exe[n] = '\0';
    check_against_readelf(exe);
}

/* ---- files that are not ELF ---------------------------------------------- */

static int temp_with(const void *data, size_t len)
{
    char tmpl[] = "/tmp/dp_test_elf_XXXXXX";
    int fd = mkstemp(tmpl);

    assert_true(fd >= 0);
    unlink(tmpl);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    return fd;
}

static void test_not_elf(void **state)
{
    static const struct { const char *data; size_t len; } files[] = {
        { "", 0 },
        { "#!/bin/sh\necho not an ELF object, but long enough for a header......\n", 69 },
        { "\x7f" "ELF", 4 },                        /* the magic, no header */
        { "\x7f" "ELG\x02\x01\x01" "................................................"
          "..........", 64 },
        { "ELF\x7f", 4 },
    };
    unsigned char id[32];
    size_t i;
    int fd;
    (void)state;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        fd = temp_with(files[i].data, files[i].len);
        assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), -1);
        close(fd);
    }
    fd = temp_with("#!/bin/sh\n", 10);
    assert_int_equal(dp_is_elf_fd(fd), 0);
    close(fd);
    fd = temp_with("\x7f" "ELF", 4);
    assert_int_equal(dp_is_elf_fd(fd), 1);
    close(fd);

    fd = open("/dev/null", O_RDONLY);
    assert_int_equal(dp_is_elf_fd(fd), 0);
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), -1);
    close(fd);
    /* a closed descriptor is not ELF either */
    assert_int_equal(dp_is_elf_fd(fd), 0);
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), -1);
}

/* ---- hand-made ELF objects ------------------------------------------------ */

struct elf_image {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[2];
    unsigned char notes[256];
};

static size_t add_note(unsigned char *at, uint32_t namesz, uint32_t descsz, uint32_t type,
                       const char *name, const unsigned char *desc)
{
    Elf64_Nhdr h = { namesz, descsz, type };
    size_t off = sizeof(h);

    memcpy(at, &h, sizeof(h));
    memcpy(at + off, name, namesz);
    off += (namesz + 3) & ~3U;
    memcpy(at + off, desc, descsz);
    off += (descsz + 3) & ~3U;
    return off;
}

static void make_image(struct elf_image *im, size_t notes_len)
{
    memset(&im->eh, 0, sizeof(im->eh));
    memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
    im->eh.e_ident[EI_CLASS] = ELFCLASS64;
    im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    im->eh.e_ident[EI_VERSION] = EV_CURRENT;
    im->eh.e_type = ET_DYN;
    im->eh.e_machine = EM_X86_64;
    im->eh.e_version = EV_CURRENT;
    im->eh.e_phoff = offsetof(struct elf_image, ph);
    im->eh.e_ehsize = sizeof(Elf64_Ehdr);
    im->eh.e_phentsize = sizeof(Elf64_Phdr);
    im->eh.e_phnum = 2;
    memset(im->ph, 0, sizeof(im->ph));
    im->ph[0].p_type = PT_LOAD;
    im->ph[1].p_type = PT_NOTE;
    im->ph[1].p_offset = offsetof(struct elf_image, notes);
    im->ph[1].p_filesz = notes_len;
    im->ph[1].p_align = 4;
}

static const unsigned char want_id[8] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67 };

static void test_crafted_notes(void **state)
{
    struct elf_image im;
    unsigned char id[32], abi[16] = { 0 };
    size_t n = 0;
    int fd;
    (void)state;

    memset(&im, 0, sizeof(im));
    /* a foreign note of the same type, a GNU note of another type, then the id */
    n += add_note(im.notes + n, 6, 3, NT_GNU_BUILD_ID, "Other", (const unsigned char *)"xyz");
    n += add_note(im.notes + n, 4, 16, NT_GNU_ABI_TAG, "GNU", abi);
    n += add_note(im.notes + n, 4, 8, NT_GNU_BUILD_ID, "GNU", want_id);
    make_image(&im, n);
    fd = temp_with(&im, sizeof(im));
    memset(id, 0, sizeof(id));
    assert_int_equal(dp_is_elf_fd(fd), 1);
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 8);
    assert_memory_equal(id, want_id, 8);
    close(fd);

    /* the same note cut off by the segment's size: not found, no over-read */
    make_image(&im, n - 4);
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);

    /* no PT_NOTE at all, no program headers, 32-bit: 0 */
    make_image(&im, n);
    im.ph[1].p_type = PT_LOAD;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);
    make_image(&im, n);
    im.eh.e_phnum = 0;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);
    make_image(&im, n);
    im.eh.e_ident[EI_CLASS] = ELFCLASS32;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_is_elf_fd(fd), 1);
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);
}

static void test_hostile_notes(void **state)
{
    struct elf_image im;
    unsigned char id[32];
    Elf64_Nhdr h;
    int fd;
    (void)state;

    /* sizes that wrap when rounded up to 4 */
    memset(&im, 0, sizeof(im));
    h.n_namesz = 0xFFFFFFFFu;
    h.n_descsz = 4;
    h.n_type = NT_GNU_BUILD_ID;
    memcpy(im.notes, &h, sizeof(h));
    make_image(&im, sizeof(im.notes));
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);

    h.n_namesz = 4;
    h.n_descsz = 0xFFFFFFFEu;
    memcpy(im.notes, &h, sizeof(h));
    memcpy(im.notes + sizeof(h), "GNU", 4);
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);

    /* a note segment beyond the end of the file, and one far too big */
    make_image(&im, 64);
    im.ph[1].p_offset = 1u << 30;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);
    make_image(&im, 64);
    im.ph[1].p_filesz = ~0ULL;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);

    /* program headers past the end, and a bogus entry size */
    make_image(&im, 64);
    im.eh.e_phoff = 1u << 30;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);
    make_image(&im, 64);
    im.eh.e_phentsize = 1;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);
    make_image(&im, 64);
    im.eh.e_phnum = 0xFFFF;
    fd = temp_with(&im, sizeof(im));
    assert_int_equal(dp_elf_build_id(fd, id, sizeof(id)), 0);
    close(fd);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bin_true),
        cmocka_unit_test(test_libc),
        cmocka_unit_test(test_self),
        cmocka_unit_test(test_not_elf),
        cmocka_unit_test(test_crafted_notes),
        cmocka_unit_test(test_hostile_notes),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests_name("elfinfo", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc ? 1 : 0;
}
