/* mod_diagproc: Kudu's "Process list and minidump" API for Linux, as an
 * httpd handler. This file is the glue: module record, directives, policy,
 * and the dispatch table. The work is done in proc/ and dump/ (httpd-free),
 * mod_diagproc_procs.c (read-only routes), mod_diagproc_helper.c (anything
 * privileged: kill, dump, other users' private /proc files) and
 * mod_diagproc_zip.c (the zip output filter). */

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "unixd.h"
#include "apr_strings.h"
#include "apr_network_io.h"
#include "apr_lib.h"
#include "ap_expr.h"

#include "mod_diagproc.h"
#include "mod_diagproc_procs.h"
#include "mod_diagproc_html.h"
#include "mod_diagproc_helper.h"
#include "mod_diagproc_zip.h"
#include "mod_diagproc_reserved.h"
#include "mod_diagproc_scoreboard.h"
#include "helper/daemon.h"
#include "mod_diagproc_fleet.h"
#include "proc/procfs.h"
#include "dump/core.h"

/* Server-wide ceiling of the helper, collected while the configuration is
 * read. Lives in pconf; pre_config starts it afresh on every (re)start. */
static dp_ceiling ceiling;

/* ------------------------------------------------------------------ config */

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    (void)dir;
    return apr_pcalloc(p, sizeof(dp_dir_conf));
}

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    dp_dir_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    c->allow_set = add->allow_set || base->allow_set;
    c->allow = add->allow_set ? add->allow : base->allow;
    c->uids = add->uids ? add->uids : base->uids;
    c->all_users = add->uids ? add->all_users : base->all_users;
    c->fleet = add->fleet ? add->fleet : base->fleet;
    return c;
}

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    dp_server_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->max_dumps = -1;
    c->max_dump_bytes = -1;
    c->dump_timeout = -1;
    c->dump_snapshot = -1;
    c->dump_nice = -1;
    c->dump_ioprio = -1;
    return c;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    dp_server_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    c->instance_name = add->instance_name ? add->instance_name : base->instance_name;
    c->max_dumps = add->max_dumps >= 0 ? add->max_dumps : base->max_dumps;
    c->max_dump_bytes = add->max_dump_bytes >= 0 ? add->max_dump_bytes : base->max_dump_bytes;
    c->dump_timeout = add->dump_timeout >= 0 ? add->dump_timeout : base->dump_timeout;
    c->dump_snapshot = add->dump_snapshot >= 0 ? add->dump_snapshot : base->dump_snapshot;
    c->dump_nice = add->dump_nice >= 0 ? add->dump_nice : base->dump_nice;
    c->dump_ioprio = add->dump_ioprio >= 0 ? add->dump_ioprio : base->dump_ioprio;
    c->trusted_proxies = add->trusted_proxies ? add->trusted_proxies : base->trusted_proxies;
    return c;
}

dp_server_conf *dp_server_config(server_rec *s)
{
    return ap_get_module_config(s->module_config, &diagproc_module);
}

dp_dir_conf *dp_dir_config(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &diagproc_module);
}

/* The <Location> path the handler was mounted at, without a trailing slash.
 * Taken from core's merged section path: our own per-dir config only exists
 * in sections that use one of our directives. */
const char *dp_prefix(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *d = cd && cd->d ? cd->d : "";
    size_t n = strlen(d);

    while (n > 0 && d[n - 1] == '/')
        n--;
    return apr_pstrmemdup(r->pool, d, n);
}

const char *dp_instance_name(server_rec *s)
{
    static char host[256];
    dp_server_conf *sc = dp_server_config(s);

    if (sc->instance_name)
        return sc->instance_name;
    if (!host[0] && gethostname(host, sizeof(host) - 1) != 0)
        strcpy(host, "localhost");
    return host;
}

int dp_from_trusted_proxy(request_rec *r)
{
    apr_array_header_t *nets = dp_server_config(r->server)->trusted_proxies;
    int i;

    /* the TCP peer itself, never an address a header claims (mod_remoteip
     * rewrites useragent_addr, not client_addr) */
    for (i = 0; nets && i < nets->nelts; i++)
        if (apr_ipsubnet_test(APR_ARRAY_IDX(nets, i, apr_ipsubnet_t *),
                              r->connection->client_addr))
            return 1;
    return 0;
}

static void ceiling_add(uid_t uid)
{
    int i;
    for (i = 0; i < ceiling.uids->nelts; i++)
        if (APR_ARRAY_IDX(ceiling.uids, i, uid_t) == uid)
            return;
    APR_ARRAY_PUSH(ceiling.uids, uid_t) = uid;
}

const dp_ceiling *dp_global_ceiling(void)
{
    /* the workers' user belongs to the default ceiling; it is only known once
     * the whole configuration is read, hence added here and not at parse
     * time. A httpd started by an ordinary user runs its workers as itself. */
    if (!ceiling.explicit_set)
        ceiling_add(geteuid() == 0 ? ap_unixd_config.user_id : geteuid());
    return &ceiling;
}

static const char *parse_user(cmd_parms *cmd, const char *word, uid_t *uid)
{
    struct passwd *pw;
    char *end;

    if (*word == '#') {
        long v = strtol(word + 1, &end, 10);
        if (*end || v < 0)
            return apr_psprintf(cmd->pool, "%s: '%s' is not a user", cmd->cmd->name, word);
        *uid = (uid_t)v;
        return NULL;
    }
    pw = getpwnam(word);
    if (!pw)
        return apr_psprintf(cmd->pool, "%s: no such user '%s'", cmd->cmd->name, word);
    *uid = pw->pw_uid;
    return NULL;
}

static const char *set_allow(cmd_parms *cmd, void *dconf, const char *word)
{
    static const struct { const char *word; int bit; } words[] = {
        { "kill", DP_ALLOW_KILL }, { "dump", DP_ALLOW_DUMP },
        { "fulldump", DP_ALLOW_FULLDUMP }, { "environment", DP_ALLOW_ENVIRONMENT },
        { "stacks", DP_ALLOW_STACKS }, { "none", 0 },
    };
    dp_dir_conf *c = dconf;
    size_t i;

    if (!c->allow_set) {
        c->allow_set = 1;
        c->allow = 0;
    }
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (!strcasecmp(word, words[i].word)) {
            c->allow |= words[i].bit;
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool, "DiagProcAllow: unknown action '%s' "
                        "(known: kill dump fulldump environment stacks none)", word);
}

static const char *set_users(cmd_parms *cmd, void *dconf, const char *word)
{
    dp_dir_conf *c = dconf;
    uid_t uid;
    const char *err;

    if (!c->uids)
        c->uids = apr_array_make(cmd->pool, 4, sizeof(uid_t));
    if (!strcmp(word, "*")) {
        c->all_users = 1;
        if (!ceiling.explicit_set)
            ceiling.all_users = 1;
        return NULL;
    }
    if ((err = parse_user(cmd, word, &uid)) != NULL)
        return err;
    APR_ARRAY_PUSH(c->uids, uid_t) = uid;
    if (!ceiling.explicit_set)
        ceiling_add(uid);
    return NULL;
}

static const char *set_helper_users(cmd_parms *cmd, void *dconf, const char *word)
{
    uid_t uid;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dconf;
    if (err)
        return err;
    if (!ceiling.explicit_set) {
        ceiling.explicit_set = 1;
        ceiling.all_users = 0;
        apr_array_clear(ceiling.uids);
    }
    if (!strcmp(word, "*")) {
        ceiling.all_users = 1;
        return NULL;
    }
    if ((err = parse_user(cmd, word, &uid)) != NULL)
        return err;
    ceiling_add(uid);
    return NULL;
}

static const char *set_instance(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    dp_server_config(cmd->server)->instance_name = arg;
    return NULL;
}

/* addr or addr/bits (IPv4 or IPv6), as mod_authz_host's Require ip. */
static const char *set_trusted_proxy(cmd_parms *cmd, void *d, const char *arg)
{
    dp_server_conf *sc = dp_server_config(cmd->server);
    char *ip = apr_pstrdup(cmd->pool, arg), *mask = strchr(ip, '/');
    apr_ipsubnet_t *net;
    apr_status_t rv;

    (void)d;
    if (mask)
        *mask++ = '\0';
    if ((rv = apr_ipsubnet_create(&net, ip, mask, cmd->pool)) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "DiagProcTrustedProxies: '%s' is not an IP address "
                            "or address/bits", arg);
    if (!sc->trusted_proxies)
        sc->trusted_proxies = apr_array_make(cmd->pool, 2, sizeof(apr_ipsubnet_t *));
    APR_ARRAY_PUSH(sc->trusted_proxies, apr_ipsubnet_t *) = net;
    return NULL;
}

static const char *set_fleet_member(cmd_parms *cmd, void *dconf, const char *name,
                                    const char *path)
{
    dp_dir_conf *c = dconf;
    dp_fleet_member *m;
    const char *s;

    for (s = name; *s; s++)
        if (!apr_isalnum(*s) && !strchr("-._", *s))
            return "DiagProcFleetMember: the name may hold letters, digits, '-', '.' and '_'";
    if (path[0] != '/' || strchr(path, '?') || strchr(path, '#'))
        return "DiagProcFleetMember: the path is a URL-path on this server, e.g. "
               "/diagnostics/instances/web1/processes";
    if (!c->fleet)
        c->fleet = apr_array_make(cmd->pool, 4, sizeof(dp_fleet_member));
    m = apr_array_push(c->fleet);
    m->name = name;
    m->path = path;
    while (strlen(m->path) > 1 && m->path[strlen(m->path) - 1] == '/')
        m->path = apr_pstrmemdup(cmd->pool, m->path, strlen(m->path) - 1);
    return NULL;
}

/* The helper is one per httpd and takes its policy from the main server: a
 * value inside <VirtualHost> could not be honoured, so it is refused. */
static const char *main_server_only(cmd_parms *cmd)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    return err ? apr_pstrcat(cmd->pool, err, ": the diagproc helper serves the whole server, "
                             "so only the main server's value can apply", NULL) : NULL;
}

static const char *set_max_dumps(cmd_parms *cmd, void *d, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);
    const char *err = main_server_only(cmd);
    (void)d;
    if (err)
        return err;
    if (*end || end == arg || v < 1 || v > 1000)
        return "DiagProcMaxDumps takes a number from 1 to 1000";
    dp_server_config(cmd->server)->max_dumps = (int)v;
    return NULL;
}

static const char *set_max_dump_size(cmd_parms *cmd, void *d, const char *arg)
{
    const char *usage = "DiagProcMaxDumpSize takes a size in bytes, with an optional K, M, "
                        "G or T; 0 = no cap";
    char *end;
    unsigned long long v;
    int shift = 0;

    (void)d;
    if (!apr_isdigit(arg[0]))
        return usage;       /* strtoull would take "-1" as a huge size */
    errno = 0;
    v = strtoull(arg, &end, 10);
    switch (apr_toupper(*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    }
    if (*end)
        return usage;
    /* checked before shifting: a signed shift past the top is undefined */
    if (errno == ERANGE || v > ((unsigned long long)APR_INT64_MAX >> shift))
        return apr_psprintf(cmd->pool, "DiagProcMaxDumpSize %s is larger than any file "
                            "can be (at most %" APR_INT64_T_FMT " bytes)", arg, APR_INT64_MAX);
    dp_server_config(cmd->server)->max_dump_bytes = (apr_off_t)(v << shift);
    return NULL;
}

static const char *set_dump_timeout(cmd_parms *cmd, void *d, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);
    (void)d;
    if (*end || v < 0)
        return "DiagProcDumpTimeout takes seconds; 0 = no limit";
    dp_server_config(cmd->server)->dump_timeout = (int)v;
    return NULL;
}

static const char *set_dump_snapshot(cmd_parms *cmd, void *d, int on)
{
    const char *err = main_server_only(cmd);
    (void)d;
    if (err)
        return err;
    dp_server_config(cmd->server)->dump_snapshot = on;
    return NULL;
}

static const char *set_dump_nice(cmd_parms *cmd, void *d, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)d;
    if (err)
        return err;
    if (*end || end == arg || v < 0 || v > 19)
        return "DiagProcDumpNice takes a nice value from 0 (the site's own) to 19 (lowest)";
    dp_server_config(cmd->server)->dump_nice = (int)v;
    return NULL;
}

static const char *set_dump_ioprio(cmd_parms *cmd, void *d, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *usage = "DiagProcDumpIOPriority takes idle, best-effort[:0-7] or unchanged";
    (void)d;
    if (err)
        return err;
    if (!strcasecmp(arg, "idle"))
        dp_server_config(cmd->server)->dump_ioprio = DP_IOPRIO_VALUE(DP_IOPRIO_CLASS_IDLE, 0);
    else if (!strcasecmp(arg, "unchanged"))
        dp_server_config(cmd->server)->dump_ioprio = 0;
    else if (!strncasecmp(arg, "best-effort", 11)) {
        long level = 4;
        if (arg[11] == ':') {
            char *end;
            level = strtol(arg + 12, &end, 10);
            if (*end || end == arg + 12 || level < 0 || level > 7)
                return usage;
        }
        else if (arg[11])
            return usage;
        dp_server_config(cmd->server)->dump_ioprio = DP_IOPRIO_VALUE(DP_IOPRIO_CLASS_BE,
                                                                     (int)level);
    }
    else
        return usage;
    return NULL;
}

static const command_rec dp_cmds[] = {
    /* ACCESS_CONF only: none of them may be set from .htaccess */
    AP_INIT_ITERATE("DiagProcAllow", set_allow, NULL, ACCESS_CONF,
                    "actions to enable: kill dump fulldump environment stacks"),
    AP_INIT_ITERATE("DiagProcUsers", set_users, NULL, ACCESS_CONF,
                    "users whose processes this location may see and act on, or *"),
    AP_INIT_ITERATE("DiagProcHelperUsers", set_helper_users, NULL, RSRC_CONF,
                    "server-wide ceiling of the privileged helper (default: User + DiagProcUsers)"),
    AP_INIT_TAKE1("DiagProcInstanceName", set_instance, NULL, RSRC_CONF,
                  "machineName and X-Diagproc-Instance (default: the host name)"),
    AP_INIT_ITERATE("DiagProcTrustedProxies", set_trusted_proxy, NULL, RSRC_CONF,
                    "addresses (addr or addr/bits) of proxies whose X-Forwarded-* and "
                    "Forwarded headers build the hrefs (default: none)"),
    AP_INIT_TAKE2("DiagProcFleetMember", set_fleet_member, NULL, ACCESS_CONF,
                  "a member of a fleet view (SetHandler diagproc-fleet): instance name "
                  "and the URL-path of its list on this server"),
    AP_INIT_TAKE1("DiagProcMaxDumps", set_max_dumps, NULL, RSRC_CONF,
                  "concurrent dumps server-wide (default 2)"),
    AP_INIT_TAKE1("DiagProcMaxDumpSize", set_max_dump_size, NULL, RSRC_CONF,
                  "largest core a dump may produce (default: no cap)"),
    AP_INIT_TAKE1("DiagProcDumpTimeout", set_dump_timeout, NULL, RSRC_CONF,
                  "longest a dump may take, in seconds (default: no limit)"),
    AP_INIT_FLAG("DiagProcDumpSnapshot", set_dump_snapshot, NULL, RSRC_CONF,
                 "On: a large dump pauses the target only for a copy-on-write fork (default On)"),
    AP_INIT_TAKE1("DiagProcDumpNice", set_dump_nice, NULL, RSRC_CONF,
                  "CPU priority (nice) of the process writing a dump (default 10)"),
    AP_INIT_TAKE1("DiagProcDumpIOPriority", set_dump_ioprio, NULL, RSRC_CONF,
                  "I/O priority of the process writing a dump: idle, best-effort[:0-7], "
                  "unchanged (default best-effort:7)"),
    AP_INIT_TAKE1("DiagProcListen", dp_reserved_set_listen, NULL, RSRC_CONF,
                  "[address:]port served by a reserved diagnostics process (may repeat)"),
    { NULL }
};

static int dp_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog; (void)ptemp;
    memset(&ceiling, 0, sizeof(ceiling));
    ceiling.uids = apr_array_make(pconf, 4, sizeof(uid_t));
    return OK;
}

/* --------------------------------------------------------------- responses */

int dp_send_json(request_rec *r, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return HTTP_INTERNAL_SERVER_ERROR;
    r->status = status;
    ap_set_content_type(r, "application/json; charset=utf-8");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only)
        ap_rwrite(text, (int)strlen(text), r);
    free(text);
    return DONE;    /* the response is complete: callers test `!= OK` */
}

int dp_send_error(request_rec *r, int status, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    if (status >= 500)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APLOGNO(10800) "%s", msg);
    else
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APLOGNO(10801) "%d: %s", status, msg);
    return dp_send_json(r, status, json_pack("{s:s}", "Message", msg));
}

int dp_send_dp_error(request_rec *r, const dp_error *err)
{
    if (err->status == 503 && !apr_table_get(r->headers_out, "Retry-After"))
        apr_table_setn(r->headers_out, "Retry-After", "5");
    return dp_send_error(r, err->status ? err->status : 500, "%s",
                         err->msg[0] ? err->msg : "internal error");
}

/* ------------------------------------------------------------------ policy */

apr_table_t *dp_query(request_rec *r)
{
    apr_table_t *t = apr_table_make(r->pool, 4);
    char *args = r->args ? apr_pstrdup(r->pool, r->args) : NULL, *pair;

    while (args && (pair = strsep(&args, "&")) != NULL) {
        char *eq = strchr(pair, '=');
        if (!*pair)
            continue;
        if (eq)
            *eq++ = '\0';
        ap_unescape_url(pair);
        if (eq)
            ap_unescape_url(eq);
        apr_table_set(t, pair, eq ? eq : "");
    }
    return t;
}

int dp_in_scope(request_rec *r, long uid)
{
    dp_dir_conf *c = dp_dir_config(r);
    int i;

    if (!c->uids) {     /* default: the httpd User, i.e. whoever the worker runs as */
        static long worker_uid = -1;    /* fixed once the worker started: ask once */
        if (worker_uid < 0)
            worker_uid = (long)geteuid();
        return uid == worker_uid;
    }
    if (c->all_users)
        return 1;
    for (i = 0; i < c->uids->nelts; i++)
        if ((long)APR_ARRAY_IDX(c->uids, i, uid_t) == uid)
            return 1;
    return 0;
}

/* The target as the routes see it: pid resolved (0 = this process), running,
 * within this Location's scope. */
int dp_resolve_target(request_rec *r, const char *idstr, pid_t *pid, dp_stat *st)
{
    dp_error err = { 0 };
    long owner;

    switch (dp_parse_pid(idstr, pid)) {
    case 0:
        break;
    case DP_PID_NONE:       /* a number, but no process can have it: as Kudu answers */
        return dp_send_error(r, HTTP_NOT_FOUND, "Process with an Id of %s is not running.",
                             idstr);
    default:
        return dp_send_error(r, HTTP_BAD_REQUEST, "'%s' is not a valid process id: use a "
                             "decimal pid, or 0 for the httpd process serving this request",
                             idstr);
    }
    if (*pid == 0)
        *pid = getpid();
    if (dp_read_stat(*pid, 0, st, &err) != 0 || (owner = dp_proc_owner(*pid)) < 0) {
        dp_fail_not_running(&err, *pid);
        return dp_send_dp_error(r, &err);
    }
    if (!dp_in_scope(r, owner))
        return dp_send_error(r, HTTP_FORBIDDEN, "Process %d belongs to user '%s', outside "
                             "this location's scope (DiagProcUsers).", (int)*pid,
                             dp_user_name(owner, r->pool));
    return OK;
}

/* pid 1, the httpd parent, kernel threads: never killed or dumped from here. */
static int refuse_protected(request_rec *r, pid_t pid, const dp_stat *st)
{
    if (pid == 1)
        return dp_send_error(r, HTTP_FORBIDDEN, "Process 1 (init) is protected.");
    if (pid == getppid())
        return dp_send_error(r, HTTP_FORBIDDEN, "Process %d is the httpd parent process; "
                             "it is protected (use apachectl to restart httpd).", (int)pid);
    if ((st->flags & DP_PF_KTHREAD) || pid == 2 || st->ppid == 2)
        return dp_send_error(r, HTTP_FORBIDDEN, "Process %d is a kernel thread; kernel "
                             "threads are protected.", (int)pid);
    return OK;
}

static int require_allowed(request_rec *r, int bit, const char *word, const char *what)
{
    if (dp_dir_config(r)->allow & bit)
        return OK;
    return dp_send_error(r, HTTP_FORBIDDEN, "%s: not enabled here; add "
                         "'DiagProcAllow %s' to this <Location> to enable it.", what, word);
}

/* A page on another site must not be able to kill or dump through the
 * operator's browser (a plain form post needs no CORS preflight). */
static int refuse_cross_site(request_rec *r)
{
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *origin = apr_table_get(r->headers_in, "Origin");

    if (site && !strcasecmp(site, "cross-site"))
        return dp_send_error(r, HTTP_FORBIDDEN, "Cross-site requests may not change "
                             "processes (Sec-Fetch-Site: cross-site).");
    if (origin && strcmp(origin, "null") != 0) {
        const char *own = ap_construct_url(r->pool, "", r);
        size_t n = strlen(own);
        while (n && own[n - 1] == '/')
            n--;
        if (strlen(origin) != n || strncasecmp(origin, own, n) != 0)
            return dp_send_error(r, HTTP_FORBIDDEN, "Requests from another origin (%s) may "
                                 "not change processes.", origin);
    }
    else if (origin)
        return dp_send_error(r, HTTP_FORBIDDEN, "Requests from an opaque origin may not "
                             "change processes.");
    return OK;
}

/* ------------------------------------------------------------------ routes */

static int route_kill(request_rec *r, const char **seg)
{
    pid_t pid;
    dp_stat st;
    int rv;

    if ((rv = refuse_cross_site(r)) != OK
        || (rv = require_allowed(r, DP_ALLOW_KILL, "kill", "Killing processes")) != OK
        || (rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK
        || (rv = refuse_protected(r, pid, &st)) != OK)
        return rv;
    return dp_handle_kill(r, pid);
}

static int parse_dump_type(const char *s, unsigned long *type)
{
    char *end;
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');

    if (!*s || (!hex && !isdigit((unsigned char)s[0])) || (hex && !isxdigit((unsigned char)s[2])))
        return -1;
    errno = 0;
    *type = strtoul(hex ? s + 2 : s, &end, hex ? 16 : 10);
    return *end || errno ? -1 : 0;
}

static int route_dump(request_rec *r, const char **seg)
{
    apr_table_t *q = dp_query(r);
    const char *ts = apr_table_get(q, "dumpType");
    const char *fmt = apr_table_get(q, "format");
    unsigned long type = 0;
    pid_t pid;
    dp_stat st;
    int rv, zip = 0;

    if (ts && parse_dump_type(ts, &type) != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "dumpType '%s' is not a number: give the "
                             "MINIDUMP_TYPE bits in decimal or 0x-hex (0 = minimal).", ts);
    if (type & ~DP_DUMP_SUPPORTED)
        return dp_send_error(r, HTTP_BAD_REQUEST, "dumpType 0x%lx has bits that Windows "
                             "does not define (0x%lx): MINIDUMP_TYPE's valid bits are "
                             "0x%lx (MiniDumpValidTypeFlags).", type,
                             type & ~DP_DUMP_SUPPORTED, DP_DUMP_VALID);
    /* as Kudu parses it: any case, empty = raw */
    if (fmt && !strcasecmp(fmt, "zip"))
        zip = 1;
    else if (fmt && *fmt && strcasecmp(fmt, "raw") != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "format '%s' is unknown: use raw (an ELF "
                             "core) or zip (the core with its binaries and scripts).", fmt);
    if ((rv = require_allowed(r, DP_ALLOW_DUMP, "dump", "Dumps")) != OK)
        return rv;
    if ((type & DP_DUMP_NEEDS_FULLDUMP)
        && (rv = require_allowed(r, DP_ALLOW_FULLDUMP, "fulldump",
                                 "Dumps with more than the minimal memory")) != OK)
        return rv;
    if ((rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK
        || (rv = refuse_protected(r, pid, &st)) != OK)
        return rv;
    if (st.state == 'Z' || st.state == 'X')
        return dp_send_error(r, HTTP_CONFLICT, "Process %d is a zombie: it has exited and "
                             "has no memory left to dump.", (int)pid);
    return dp_handle_dump(r, pid, type, zip);
}

static int route_stacks(request_rec *r, const char **seg)
{
    pid_t pid;
    dp_stat st;
    int rv;

    if ((rv = require_allowed(r, DP_ALLOW_STACKS, "stacks", "Live stacks")) != OK
        || (rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK
        || (rv = refuse_protected(r, pid, &st)) != OK)
        return rv;
    if (st.state == 'Z' || st.state == 'X')
        return dp_send_error(r, HTTP_CONFLICT, "Process %d is a zombie: it has no stacks left.",
                             (int)pid);
    return dp_handle_stacks(r, pid, dp_proc_href(r, pid));
}

static int route_environment(request_rec *r, const char **seg)
{
    int rv;
    if ((rv = require_allowed(r, DP_ALLOW_ENVIRONMENT, "environment",
                              "Reading environments")) != OK)
        return rv;
    return dp_route_environment(r, seg);
}

typedef int (*dp_route_fn)(request_rec *r, const char **seg);

/* The dispatch table: a pattern of segments ("{}" = a parameter), the
 * methods it answers and its function. */
static const struct dp_route {
    const char *pattern;
    const char *methods;        /* Allow header; GET implies HEAD */
    dp_route_fn get, del, post;
} routes[] = {
    { "",                   "GET, HEAD",         dp_route_list,        NULL,       NULL },
    { "requests",           "GET, HEAD",         dp_route_requests,    NULL,       NULL },
    { "ui/{}",              "GET, HEAD",         dp_route_ui,          NULL,       NULL },
    { "{}",                 "GET, HEAD, DELETE", dp_route_detail,      route_kill, NULL },
    { "{}/stop",            "POST",              NULL,                 NULL,       route_kill },
    { "{}/dump",            "GET, HEAD",         route_dump,           NULL,       NULL },
    { "{}/threads",         "GET, HEAD",         dp_route_threads,     NULL,       NULL },
    { "{}/threads/{}",      "GET, HEAD",         dp_route_thread,      NULL,       NULL },
    { "{}/modules",         "GET, HEAD",         dp_route_modules,     NULL,       NULL },
    { "{}/modules/{}",      "GET, HEAD",         dp_route_module,      NULL,       NULL },
    { "{}/environments/{}", "GET, HEAD",         route_environment,    NULL,       NULL },
    { "{}/stacks",          "GET, HEAD",         route_stacks,         NULL,       NULL },
};

/* Splits rest ("/123/threads/", "") into at most 8 segments; a single
 * trailing slash is accepted, empty segments elsewhere are not. */
static int split_route(apr_pool_t *p, const char *rest, const char **seg, int max)
{
    int n = 0;
    char *s = apr_pstrdup(p, rest), *tok;

    if (*s == '/')
        s++;
    if (*s && s[strlen(s) - 1] == '/')
        s[strlen(s) - 1] = '\0';
    if (!*s)
        return 0;
    while ((tok = strsep(&s, "/")) != NULL) {
        if (!*tok || n == max)
            return -1;
        seg[n++] = tok;
    }
    return n;
}

static int pattern_matches(const char *pattern, const char **seg, int n)
{
    const char *p = pattern;
    int i;

    for (i = 0; i < n; i++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0)
            return 0;
        if (!(len == 2 && !strncmp(p, "{}", 2)) && (strlen(seg[i]) != len || strncmp(seg[i], p, len)))
            return 0;
        p = slash ? slash + 1 : p + len;
        if (!slash && i + 1 < n)
            return 0;
    }
    return *p == '\0';
}

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
    n = split_route(r->pool, rest, seg, 8);
    for (i = 0; n >= 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct dp_route *rt = &routes[i];
        dp_route_fn fn = NULL;
        if (!pattern_matches(rt->pattern, seg, n))
            continue;
        if (r->method_number == M_GET)
            fn = rt->get;
        else if (r->method_number == M_DELETE)
            fn = rt->del;
        else if (r->method_number == M_POST)
            fn = rt->post;
        if (!fn) {
            apr_table_setn(r->headers_out, "Allow", rt->methods);
            return dp_send_error(r, HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on this "
                                 "route; allowed: %s.", r->method, rt->methods);
        }
        return fn(r, seg);
    }
    return dp_send_error(r, HTTP_NOT_FOUND, "No such route: '%s'. See the API reference "
                         "for the routes below %s.", r->uri, prefix);
}

/* Answers httpd makes itself in our Locations (a Require that fails, a
 * request too large) carry the instance too: SetHandler is only applied
 * after access checks, so the section's expression is evaluated here. */
static void dp_error_instance(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *h = r->handler, *err = NULL;

    if (!h && cd && cd->expr_handler) {
        h = ap_expr_str_exec(r, cd->expr_handler, &err);
        if (err)
            h = NULL;
    }
    if (h && (!strcmp(h, "diagproc") || !strcmp(h, DP_FLEET_HANDLER)))
        dp_set_instance_header(r);
}

void dp_set_instance_header(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "X-Diagproc-Instance", dp_instance_name(r->server));
}

static void dp_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(dp_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(dp_handler, NULL, NULL, APR_HOOK_MIDDLE);
    dp_scoreboard_register_hooks(p);
    ap_hook_insert_error_filter(dp_error_instance, NULL, NULL, APR_HOOK_MIDDLE);
    dp_fleet_register_hooks(p);
    dp_helper_register_hooks(p);
    dp_reserved_register_hooks(p);
    dp_zip_filter_register(p);
}

AP_DECLARE_MODULE(diagproc) = {
    STANDARD20_MODULE_STUFF,
    create_dir_conf,
    merge_dir_conf,
    create_server_conf,
    merge_server_conf,
    dp_cmds,
    dp_register_hooks,
    AP_MODULE_FLAG_NONE
};
