/* mod_diagproc: Kudu's "Process list and minidump" API for Linux, as an
 * httpd handler. This file is the top of the module: its record, its hooks
 * and the dispatch table; it only calls outward. Configuration lives in
 * mod_diagproc_config.c, what every route uses in mod_diagproc_request.c,
 * each route family in its own file, the helper's two sides in
 * mod_diagproc_helperd.c (parent) and mod_diagproc_helper_client.c (worker);
 * the work itself in the httpd-free cores proc/, dump/, helper/, worker/. */

#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_expr.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_modules.h"
#include "httpd/mod_diagproc_threads.h"
#include "httpd/mod_diagproc_kill.h"
#include "httpd/mod_diagproc_dump.h"
#include "httpd/mod_diagproc_stacks.h"
#include "httpd/mod_diagproc_profile.h"
#include "httpd/mod_diagproc_html.h"
#include "httpd/mod_diagproc_helperd.h"
#include "httpd/mod_diagproc_zip.h"
#include "httpd/mod_diagproc_reserved.h"
#include "httpd/mod_diagproc_scoreboard.h"
#include "httpd/mod_diagproc_fleet.h"
#include "httpd/mod_diagproc_dumpable.h"
#include "httpd/mod_diagproc_capture.h"
#include "httpd/mod_diagproc_captures.h"
#include "worker/route.h"
#include "common/actions.h"
#include "apr_strings.h"

typedef int (*dp_route_fn)(request_rec *r, const char **seg);

/* The dispatch table: a pattern of segments ("{}" = a parameter), the
 * methods it answers, and per method its function and the privileged action
 * it performs (common/actions.h), which leaves an audit line; 0 = read-only. */
typedef struct dp_method {
    dp_route_fn fn;
    unsigned action;
} dp_method;

#define READ(fn)        { fn, 0 }
#define ACT(fn, action) { fn, action }
#define NONE            { NULL, 0 }
static const struct dp_route {
    const char *pattern;
    const char *methods;        /* Allow header; GET implies HEAD */
    dp_method get, del, post;
} routes[] = {
    { "",                   "GET, HEAD",         READ(dp_route_list),     NONE, NONE },
    { "requests",           "GET, HEAD",         READ(dp_route_requests), NONE, NONE },
    { "profile",            "GET, HEAD",         ACT(dp_route_profile_site, DP_ACT_PROFILE),
                                                 NONE, NONE },
    { "ui/{}",              "GET, HEAD",         READ(dp_route_ui),       NONE, NONE },
    /* captures audit themselves: their line names the capture */
    { "captures",           "GET, HEAD",         READ(dp_route_captures), NONE, NONE },
    { "captures/{}",        "DELETE",            NONE, READ(dp_route_capture_delete), NONE },
    { "captures/{}/{}",     "GET, HEAD",         READ(dp_route_capture_artifact), NONE, NONE },
    { "{}",                 "GET, HEAD, DELETE", READ(dp_route_detail),
                                                 ACT(dp_route_kill, DP_ACT_KILL), NONE },
    { "{}/stop",            "POST",              NONE, NONE, ACT(dp_route_kill, DP_ACT_KILL) },
    { "{}/dump",            "GET, HEAD",         ACT(dp_route_dump, DP_ACT_DUMP), NONE, NONE },
    { "{}/threads",         "GET, HEAD",         READ(dp_route_threads),  NONE, NONE },
    { "{}/threads/{}",      "GET, HEAD",         READ(dp_route_thread),   NONE, NONE },
    { "{}/modules",         "GET, HEAD",         READ(dp_route_modules),  NONE, NONE },
    { "{}/modules/{}",      "GET, HEAD",         READ(dp_route_module),   NONE, NONE },
    { "{}/environments/{}", "GET, HEAD",         ACT(dp_route_environment, DP_ACT_ENVIRONMENT),
                                                 NONE, NONE },
    { "{}/stacks",          "GET, HEAD",         ACT(dp_route_stacks, DP_ACT_STACKS), NONE, NONE },
    { "{}/profile",         "GET, HEAD",         ACT(dp_route_profile, DP_ACT_PROFILE), NONE, NONE },
    { "{}/profile/start",   "POST",              NONE, NONE,
                                                 ACT(dp_route_profile_start, DP_ACT_PROFILE) },
    { "{}/profile/stop",    "GET, HEAD",         ACT(dp_route_profile_stop, DP_ACT_PROFILE),
                                                 NONE, NONE },
};
#undef READ
#undef ACT
#undef NONE

static int dp_handler(request_rec *r)
{
    const char *seg[8];
    const char *rest, *prefix;
    int n;
    size_t i, plen;

    if (!r->handler || strcmp(r->handler, "diagproc"))
        return DECLINED;
    dp_set_instance_header(r);
    prefix = dp_prefix(r);
    plen = strlen(prefix);
    if (strncmp(r->uri, prefix, plen) != 0
        || (r->uri[plen] != '\0' && r->uri[plen] != '/'))
        return dp_send_error(r, HTTP_NOT_FOUND, "mod_diagproc answers below the <Location> "
                             "it is mounted at; '%s' is not below it.", r->uri);
    r->allowed |= (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_DELETE)
        | (AP_METHOD_BIT << M_POST);
    rest = r->uri + plen;
    n = dp_route_split(r->pool, rest, seg, 8);
    for (i = 0; n >= 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct dp_route *rt = &routes[i];
        const dp_method *m = NULL;
        if (!dp_route_match(rt->pattern, seg, n))
            continue;
        if (r->method_number == M_GET)
            m = &rt->get;
        else if (r->method_number == M_DELETE)
            m = &rt->del;
        else if (r->method_number == M_POST)
            m = &rt->post;
        if (!m || !m->fn) {
            apr_table_setn(r->headers_out, "Allow", rt->methods);
            return dp_send_error(r, HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on this "
                                 "route; allowed: %s.", r->method, rt->methods);
        }
        return m->action ? dp_audited(r, m->action, m->fn, seg) : m->fn(r, seg);
    }
    return dp_send_error(r, HTTP_NOT_FOUND, "No such route: '%s'. See the API reference "
                         "for the routes below %s.", r->uri, prefix);
}

/* Answers httpd makes itself in our Locations (a Require that fails, a
 * request too large) carry the instance and a JSON body too: SetHandler is
 * only applied after access checks, so the section's expression is
 * evaluated here; and an answer made before the Location walk (an encoded
 * '/' or NUL in the path) goes by the Location paths themselves. */
static void dp_error_instance(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *h = r->handler, *err = NULL;

    if (!h && cd && cd->expr_handler) {
        h = ap_expr_str_exec(r, cd->expr_handler, &err);
        if (err)
            h = NULL;
    }
    if (h ? (!strcmp(h, "diagproc") || !strcmp(h, DP_FLEET_HANDLER))
          : dp_config_uri_is_ours(r->uri)) {
        dp_set_instance_header(r);
        dp_json_error_body(r);
    }
}

/* The module owns its URL space: httpd must neither map it to a file name
 * nor look for files under it (a long segment would get core's 403, or at
 * LogLevel info core's "Module bug?" line, per request). translate_name sees
 * the Location's configuration and marks the request; map_to_storage runs
 * with the server's defaults only, so it goes by that mark. */
#define DP_OWN_URL_NOTE "diagproc-own-url"

static int dp_own_url_space(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *err = NULL, *h;

    if (!cd || !cd->expr_handler)
        return DECLINED;
    h = ap_expr_str_exec(r, cd->expr_handler, &err);
    if (err || !h || strcmp(h, "diagproc") != 0)
        return DECLINED;
    r->filename = apr_pstrcat(r->pool, "/diagproc", r->uri, NULL);    /* never a file */
    apr_table_setn(r->notes, DP_OWN_URL_NOTE, "1");
    return OK;
}

/* No directory walk for our URLs: the Location walk that follows applies
 * the section's configuration again. */
static int dp_no_storage(request_rec *r)
{
    return apr_table_get(r->notes, DP_OWN_URL_NOTE) ? OK : DECLINED;
}

static void dp_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(dp_config_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(dp_config_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(dp_own_url_space, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(dp_no_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(dp_handler, NULL, NULL, APR_HOOK_MIDDLE);
    dp_scoreboard_register_hooks(p);
    ap_hook_insert_error_filter(dp_error_instance, NULL, NULL, APR_HOOK_MIDDLE);
    dp_fleet_register_hooks(p);
    dp_helperd_register_hooks(p);
    dp_capture_register_hooks(p);
    dp_dumpable_register_hooks(p);
    dp_reserved_register_hooks(p);
    dp_zip_filter_register(p);
    dp_json_error_register();
}

AP_DECLARE_MODULE(diagproc) = {
    STANDARD20_MODULE_STUFF,
    dp_config_create_dir,
    dp_config_merge_dir,
    dp_config_create_server,
    dp_config_merge_server,
    dp_config_cmds,
    dp_register_hooks,
    AP_MODULE_FLAG_NONE
};
