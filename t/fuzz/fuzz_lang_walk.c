/* The language walkers (helper/pystack.c, helper/phpstack.c) over an
 * arbitrary memory image: the target's memory is the fuzzer's, so every
 * pointer, length and string the walkers follow is hostile. The harness
 * stands in for helper/lang_target.c (reads, symbols, the mapped file):
 *
 *   byte 0   which walker (even: CPython, odd: PHP)
 *   byte 1   which layout entry (its version is written where the walker
 *            reads it: Py_Version, or the PHP build id string in the file)
 *   byte 2   registers of the threads: which of them look like PHP's
 *            execute_ex (r14/r15 pointing into the image)
 *   rest     the memory image, mapped at IMAGE_BASE
 *
 * Every symbol resolves into the image at an offset derived from its name;
 * three threads have tids 1, 2, 3. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/user.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "helper/lang.h"
#include "helper/stacks.h"
#include "common/proto.h"

#define IMAGE_BASE 0x7f1200000000ull

static const unsigned char *image;
static size_t image_len;
static char file_bytes[256];
static size_t file_len;

int dp_lang_read(dp_lang_target *t, uint64_t addr, void *buf, size_t len)
{
    (void)t;
    if (addr < IMAGE_BASE || len > image_len || addr - IMAGE_BASE > image_len - len)
        return -1;
    memcpy(buf, image + (addr - IMAGE_BASE), len);
    return 0;
}

int dp_lang_ptr(dp_lang_target *t, uint64_t addr, uint64_t *v)
{
    return dp_lang_read(t, addr, v, sizeof(*v));
}

static uint64_t name_offset(const char *name)
{
    uint64_t h = 1469598103934665603ull;

    if (!strcmp(name, "_PyRuntime") || !strcmp(name, "executor_globals"))
        return 0;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ull;
    return image_len >= 8 ? (h % (image_len / 8)) * 8 : 0;
}

int dp_lang_symbol(dp_lang_target *t, dp_runtime_kind kind, const char *name, uint64_t *addr,
                   uint64_t *size, const char **module)
{
    (void)t;
    (void)kind;
    *addr = IMAGE_BASE + name_offset(name);
    if (size)
        *size = image_len - name_offset(name);
    if (module)
        *module = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0";
    return 0;
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

const char *dp_lang_file(dp_lang_target *t, const char *module, size_t *size)
{
    (void)t;
    (void)module;
    *size = file_len;
    return file_bytes;
}

/* "3.11" -> Py_Version 0x030b00f0 */
static uint32_t py_version(const char *v)
{
    unsigned major = 0, minor = 0;

    sscanf(v, "%u.%u", &major, &minor);
    return major << 24 | minor << 16 | 0xf0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    static unsigned char buf[1 << 16];
    struct user_regs_struct regs[3];
    apr_pool_t *p;
    dp_stacks out;
    dp_lang_target t;
    int i;

    if (size < 3)
        return 0;
    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    image_len = size - 3 > sizeof(buf) ? sizeof(buf) : size - 3;
    memcpy(buf, data + 3, image_len);
    image = buf;
    apr_pool_create(&p, root);
    memset(&out, 0, sizeof(out));
    out.threads = apr_array_make(p, 3, sizeof(dp_stack_thread));
    memset(regs, 0, sizeof(regs));
    for (i = 0; i < 3; i++) {
        dp_stack_thread *th = apr_array_push(out.threads);
        memset(th, 0, sizeof(*th));
        th->tid = i + 1;
        th->native = apr_array_make(p, 1, sizeof(dp_native_frame));
        th->lang = apr_array_make(p, 8, sizeof(dp_lang_frame));
        if (data[2] & (1u << i)) {
            regs[i].r14 = IMAGE_BASE + (data[2] >> 3) * 8;
            regs[i].r15 = IMAGE_BASE + (data[2] >> 5) * 32;
            regs[i].rip = IMAGE_BASE;
        }
        regs[i].fs_base = IMAGE_BASE + (uint64_t)i * 64;
        th->regs = &regs[i];
    }
    memset(&t, 0, sizeof(t));
    t.pid = 1;
    t.out = &out;
    t.pool = p;
    t.keep = p;
    if (data[0] % 2 == 0 && dp_py_nlayouts) {
        /* the entries' versions, and 3.13/3.14 (their _Py_DebugOffsets in the image) */
        unsigned n = (unsigned)dp_py_nlayouts + 2, k = data[1] % n;
        uint32_t v = k < dp_py_nlayouts ? py_version(dp_py_layouts[k]->version)
                                        : py_version(k == dp_py_nlayouts ? "3.13" : "3.14");
        uint64_t at = name_offset("Py_Version");
        if (image_len >= 4 && at <= image_len - 4)
            memcpy(buf + at, &v, 4);
        dp_pystack_walk(&t);
    }
    else if (dp_php_nlayouts) {
        const dp_php_layout *l = dp_php_layouts[data[1] % dp_php_nlayouts];
        file_len = (size_t)snprintf(file_bytes, sizeof(file_bytes), "PHP/%s %s", l->version,
                                    l->api) + 1;
        dp_phpstack_walk(&t);
    }
    apr_pool_destroy(p);
    return 0;
}
