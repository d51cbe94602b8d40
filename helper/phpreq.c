/* The request a PHP process serves, from PHP's own memory: the
 * sapi_globals symbol of the object that is PHP's core (the php binary, or
 * libphp*.so in httpd), found like phpstack.c's executor_globals, and
 * SG(request_info)'s request_method, request_uri, query_string and
 * path_translated at the offsets of the running version's layout entry
 * (helper/lang.h). The target is left running: only its memory is read, a
 * page at a time, with every pointer and string bounded. Between two
 * requests (SG(sapi_started) 0: request_info still points at the last
 * request's strings) or before the first (request_method NULL) the answer
 * is four empty fields. */
#include <string.h>
#include <sys/uio.h>
#include <elfutils/libdwfl.h>
#include <apr_strings.h>

#include "helper/phpreq.h"
#include "helper/lang.h"
#include "helper/lang_target.h"
#include "helper/stacks.h"

/* A C string of the target, at most DP_PHPREQ_STR_MAX bytes: "" when the
 * pointer is NULL or unreadable. */
static const char *cstr(dp_lang_target *t, uint64_t at)
{
    char *out = apr_palloc(t->pool, DP_PHPREQ_STR_MAX + 1);
    size_t n = 0;

    while (at && n < DP_PHPREQ_STR_MAX) {
        size_t k = 4096 - (size_t)((at + n) & 4095);
        char *nul;
        if (k > DP_PHPREQ_STR_MAX - n)
            k = DP_PHPREQ_STR_MAX - n;
        if (dp_lang_read(t, at + n, out + n, k) != 0)
            break;
        if ((nul = memchr(out + n, '\0', k)))
            return out;
        n += k;
    }
    out[n] = '\0';
    return out;
}

/* n bytes of the target read again, past the walkers' page cache: 0 when
 * read whole. */
static int read_again(pid_t pid, uint64_t addr, void *buf, size_t n)
{
    struct iovec local = { buf, n }, remote = { (void *)(uintptr_t)addr, n };
    return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

int dp_phpreq_locate(dp_lang_target *t, dp_phpreq_at *at, dp_error *err)
{
    uint64_t addr, size, need;
    const char *module, *api;
    const dp_php_layout *l;
    int pid = (int)t->pid;

    if (dp_lang_symbol(t, DP_RUNTIME_PHP, "sapi_globals", &at->sg, &size, &module) != 0) {
        if (dp_lang_symbol(t, DP_RUNTIME_PHP, "zend_execute_ex", &addr, NULL, &module) != 0
            && dp_lang_symbol(t, DP_RUNTIME_PHP, "executor_globals", &addr, NULL, &module) != 0)
            return dp_fail(err, 404, "Process %d runs no PHP.", pid);
        return dp_fail(err, 501, "Process %d runs PHP (%s) without a sapi_globals symbol "
                       "(a thread-safe build keeps it per thread).", pid, module);
    }
    api = dp_php_build_id(t, module);
    if (api && strlen(api) > 3 && !strcmp(api + strlen(api) - 3, ",TS"))
        return dp_fail(err, 501, "Process %d runs a thread-safe (ZTS) PHP (module API %s): "
                       "its request is kept per thread.", pid, api);
    if (!(l = at->layout = dp_php_layout_find(api)))
        return dp_fail(err, 501, "Process %d runs PHP with module API %s, which has no layout "
                       "table entry (known: %s).", pid, api ? api : "(not found)",
                       dp_php_layouts_known(t->pool));
    need = l->sg_sapi_started;
    if (l->sg_request_method > need)
        need = l->sg_request_method;
    if (l->sg_query_string > need)
        need = l->sg_query_string;
    if (l->sg_request_uri > need)
        need = l->sg_request_uri;
    if (l->sg_path_translated > need)
        need = l->sg_path_translated;
    if (size < need + 8)
        return dp_fail(err, 501, "sapi_globals in %s has %llu bytes, fewer than the %llu that "
                       "the read takes with PHP %s's layout.", module, (unsigned long long)size,
                       (unsigned long long)need + 8, l->version);
    return 0;
}

void dp_phpreq_read_at(dp_lang_target *t, const dp_phpreq_at *at, dp_phpreq *out)
{
    const dp_php_layout *l = at->layout;
    uint64_t sg = at->sg, method = 0, uri = 0, query = 0, script = 0, again = 0;
    unsigned char started = 0;

    out->method = out->uri = out->query = out->script = "";
    /* between requests request_info keeps the last one's pointers: only
       sapi_started says that a request is on */
    if (dp_lang_read(t, sg + l->sg_sapi_started, &started, 1) == 0 && started
        && dp_lang_ptr(t, sg + l->sg_request_method, &method) == 0 && method) {
        /* each read on its own: one that fails leaves its field empty */
        if (dp_lang_ptr(t, sg + l->sg_request_uri, &uri) != 0)
            uri = 0;
        if (dp_lang_ptr(t, sg + l->sg_query_string, &query) != 0)
            query = 0;
        if (dp_lang_ptr(t, sg + l->sg_path_translated, &script) != 0)
            script = 0;
        out->method = cstr(t, method);
        out->uri = cstr(t, uri);
        out->query = cstr(t, query);
        out->script = cstr(t, script);
        /* the request went on meanwhile: ended, or another began (its
           strings may be torn): say idle rather than mix two requests */
        if (read_again(t->pid, sg + l->sg_sapi_started, &started, 1) != 0 || !started
            || read_again(t->pid, sg + l->sg_request_method, &again, 8) != 0 || again != method)
            out->method = out->uri = out->query = out->script = "";
    }
}

int dp_phpreq_read(pid_t pid, dp_phpreq *out, apr_pool_t *p, dp_error *err)
{
    dp_phpreq_at at;
    dp_lang_target t;
    dp_stacks s;
    Dwfl *dwfl;
    int rc;

    out->method = out->uri = out->query = out->script = "";
    if (!(dwfl = dp_lang_report_modules(pid, err)))
        return -1;
    memset(&s, 0, sizeof(s));
    dp_lang_target_init(&t, dwfl, dp_lang_runtime_kinds(dwfl, pid, p), pid, &s, p);
    t.core = NULL;      /* read while it runs */
    if ((rc = dp_phpreq_locate(&t, &at, err)) == 0)
        dp_phpreq_read_at(&t, &at, out);
    dwfl_end(dwfl);
    return rc;
}
