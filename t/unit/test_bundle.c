/* The bundle of this very process into a recording entry sink: the entries
 * it must hold, the manifest's fields, script quoting, a failing sink. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "dump/bundle.h"

typedef struct rec {
    apr_pool_t *p;
    apr_array_header_t *names;      /* const char * */
    char *manifest;
    size_t manifest_len, bytes, fail_after;
    int in_manifest, open;
} rec;

static int rec_begin(dp_entry_sink *s, const char *name, long long mtime, unsigned mode)
{
    rec *r = s->ctx;
    (void)mtime;
    (void)mode;
    assert_false(r->open);
    r->open = 1;
    APR_ARRAY_PUSH(r->names, const char *) = apr_pstrdup(r->p, name);
    r->in_manifest = !strcmp(name, "manifest.json");
    return 0;
}

static int rec_data(dp_sink *s, const void *buf, size_t len)
{
    rec *r = s->ctx;
    assert_true(r->open);
    if (r->fail_after && r->bytes + len > r->fail_after)
        return -1;
    r->bytes += len;
    if (r->in_manifest) {
        r->manifest = realloc(r->manifest, r->manifest_len + len + 1);
        memcpy(r->manifest + r->manifest_len, buf, len);
        r->manifest_len += len;
        r->manifest[r->manifest_len] = '\0';
    }
    return 0;
}

static int rec_end(dp_entry_sink *s)
{
    rec *r = s->ctx;
    assert_true(r->open);
    r->open = 0;
    return 0;
}

static apr_pool_t *pool;

static void sink_init(dp_entry_sink *s, rec *r)
{
    memset(r, 0, sizeof(*r));
    r->p = pool;
    r->names = apr_array_make(pool, 16, sizeof(const char *));
    s->begin = rec_begin;
    s->end = rec_end;
    s->data.write = rec_data;
    s->data.ctx = r;
    s->ctx = r;
}

static int has(const rec *r, const char *prefix)
{
    int i;
    for (i = 0; i < r->names->nelts; i++)
        if (!strncmp(APR_ARRAY_IDX(r->names, i, const char *), prefix, strlen(prefix)))
            return 1;
    return 0;
}

static int fake_core(void *arg, dp_sink *data, dp_error *err)
{
    (void)arg;
    (void)err;
    return dp_sink_write(data, "ELF-ish", 7);
}

static void test_self_bundle(void **state)
{
    dp_bundle_opts o = { .pid = getpid(), .dump_type = 0x2, .instance_name = "unit" };
    dp_entry_sink s;
    dp_error err = { 0 };
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    json_t *m, *mods;
    rec r;
    (void)state;

    assert_true(n > 0);
    self[n] = '\0';
    sink_init(&s, &r);
    assert_int_equal(dp_bundle_write(&o, &s, fake_core, NULL, pool, &err), 0);
    assert_string_equal(APR_ARRAY_IDX(r.names, 0, const char *), "core");
    assert_true(has(&r, apr_pstrcat(pool, "sysroot", self, NULL)));
    assert_true(has(&r, "sysroot/usr/lib/x86_64-linux-gnu/libc.so") || has(&r, "sysroot/lib"));
    assert_true(has(&r, "manifest.json"));
    assert_true(has(&r, "open-gdb.sh"));
    assert_true(has(&r, "open-lldb.sh"));
    m = json_loads(r.manifest, 0, NULL);
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "pid")), getpid());
    assert_int_equal(json_integer_value(json_object_get(m, "dumpType")), 2);
    assert_string_equal(json_string_value(json_object_get(m, "instanceName")), "unit");
    assert_string_equal(json_string_value(json_object_get(m, "executable")), self);
    mods = json_object_get(m, "modules");
    assert_true(json_array_size(mods) >= 2);
    assert_true(json_array_size(json_object_get(m, "maps")) > 5);
    json_decref(m);
    free(r.manifest);
}

static void test_failing_sink(void **state)
{
    dp_bundle_opts o = { .pid = getpid() };
    dp_entry_sink s;
    dp_error err = { 0 };
    rec r;
    (void)state;

    sink_init(&s, &r);
    r.fail_after = 50000;
    assert_int_equal(dp_bundle_write(&o, &s, fake_core, NULL, pool, &err), -1);
    assert_int_equal(err.status, 500);
    assert_false(has(&r, "manifest.json"));
}

static void test_not_running(void **state)
{
    dp_bundle_opts o = { .pid = 4194303 };      /* above any pid in use */
    dp_entry_sink s;
    dp_error err = { 0 };
    rec r;
    (void)state;

    sink_init(&s, &r);
    assert_int_equal(dp_bundle_write(&o, &s, fake_core, NULL, pool, &err), -1);
    assert_int_equal(err.status, 404);
    assert_int_equal(r.names->nelts, 0);
}

static void test_shell_quote(void **state)
{
    (void)state;
    assert_string_equal(dp_shell_quote("/usr/lib", pool), "'/usr/lib'");
    assert_string_equal(dp_shell_quote("it's $(x)", pool), "'it'\\''s $(x)'");
    assert_string_equal(dp_shell_quote("", pool), "''");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_bundle),
        cmocka_unit_test(test_failing_sink),
        cmocka_unit_test(test_not_running),
        cmocka_unit_test(test_shell_quote),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
