/* Configuration: the directives, their merging, and the helper's
 * server-wide ceiling collected while the configuration is read. */

#include <ctype.h>
#include <pwd.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "unixd.h"
#include "apr_network_io.h"
#include "apr_lib.h"

#include "httpd/mod_diagproc_config.h"
#include "common/proto.h"
#include "httpd/mod_diagproc_capture.h"
#include "httpd/mod_diagproc_fleet.h"
#include "common/actions.h"
#include "common/helper_config.h"

APLOG_USE_MODULE(diagproc);

/* Server-wide ceiling of the helper, collected while the configuration is
 * read. Lives in pconf; pre_config starts it afresh on every (re)start. */
static dp_ceiling ceiling;
/* The sections using DiagProcAllow / DiagProcUsers, numbered as read. */
static apr_array_header_t *sections;
/* The paths of the plain <Location>s that SetHandler diagproc (or the fleet
 * view): for the answers httpd makes before it has looked the URL up. */
static apr_array_header_t *own_locations;
/* DiagProcListen's addresses, as written. */
static const char *listen_specs[DP_RESERVED_MAX_LISTEN];
static int nlisten;

/* ------------------------------------------------------------------ config */

void *dp_config_create_dir(apr_pool_t *p, char *dir)
{
    dp_dir_conf *c = apr_pcalloc(p, sizeof(dp_dir_conf));
    (void)dir;
    c->self_section = c->allow_section = c->scope_section = -1;
    return c;
}

/* Numbers a section the first time one of its directives is read. Only plain
 * (non-regex) <Location>s keep their path: the helper lets two sections
 * combine only when one such path lies inside the other. */
static int register_section(cmd_parms *cmd, dp_dir_conf *c)
{
    if (c->self_section < 0) {
        const ap_directive_t *parent = cmd->directive ? cmd->directive->parent : NULL;
        dp_section *sec = apr_array_push(sections);
        sec->conf = c;
        sec->path = NULL;
        if (parent && !strcasecmp(parent->directive, "<Location") && cmd->path
            && parent->args && parent->args[0] != '~')
            sec->path = cmd->path;
        c->self_section = sections->nelts - 1;
    }
    return c->self_section;
}

const apr_array_header_t *dp_config_sections(void)
{
    return sections;
}

void *dp_config_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    dp_dir_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    c->allow_set = add->allow_set || base->allow_set;
    c->allow = add->allow_set ? add->allow : base->allow;
    c->uids = add->uids ? add->uids : base->uids;
    c->all_users = add->uids ? add->all_users : base->all_users;
    c->fleet = add->fleet ? add->fleet : base->fleet;
    c->self_section = -1;
    c->allow_section = add->allow_set ? add->allow_section : base->allow_section;
    c->scope_section = add->uids ? add->scope_section : base->scope_section;
    return c;
}

void *dp_config_create_server(apr_pool_t *p, server_rec *s)
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

void *dp_config_merge_server(apr_pool_t *p, void *basev, void *addv)
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
    c->prof_sessions = add->prof_sessions ? add->prof_sessions : base->prof_sessions;
    c->prof_seconds = add->prof_seconds ? add->prof_seconds : base->prof_seconds;
    c->prof_hz = add->prof_hz ? add->prof_hz : base->prof_hz;
    c->prof_bytes = add->prof_bytes ? add->prof_bytes : base->prof_bytes;
    return c;
}

void dp_profile_limits(const dp_server_conf *sc, int *sessions, int *seconds, int *hz,
                       size_t *bytes)
{
    *sessions = sc->prof_sessions ? sc->prof_sessions : DP_PROF_DEF_SESSIONS;
    *seconds = sc->prof_seconds ? sc->prof_seconds : DP_PROF_DEF_SECONDS;
    *hz = sc->prof_hz ? sc->prof_hz : DP_PROF_HZ_MAX;
    *bytes = sc->prof_bytes ? sc->prof_bytes : DP_PROF_DEF_BYTES;
}

dp_server_conf *dp_server_config(server_rec *s)
{
    return ap_get_module_config(s->module_config, &diagproc_module);
}

dp_dir_conf *dp_dir_config(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &diagproc_module);
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

static const char *set_listen(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *host = NULL, *scope = NULL;
    apr_port_t port = 0;

    (void)dconf;
    if (err)
        return err;
    if (apr_parse_addr_port(&host, &scope, &port, arg, cmd->pool) != APR_SUCCESS
        || port == 0 || scope)
        return apr_psprintf(cmd->pool, "DiagProcListen: '%s' is not [address:]port", arg);
    if (strlen(arg) >= DP_LISTEN_SPEC_MAX)
        return "DiagProcListen: address too long";
    if (nlisten == DP_RESERVED_MAX_LISTEN)
        return "DiagProcListen: at most 8 listeners";
    listen_specs[nlisten++] = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

const char *const *dp_config_listen(int *n)
{
    *n = nlisten;
    return listen_specs;
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
    dp_dir_conf *c = dconf;
    const dp_action *a = dp_action_by_word(word);
    char known[128];

    if (!c->allow_set) {
        c->allow_set = 1;
        c->allow = 0;
        c->allow_section = register_section(cmd, c);
    }
    if (a)
        c->allow |= (int)a->bit;
    else if (strcasecmp(word, "none") != 0)
        return apr_psprintf(cmd->pool, "DiagProcAllow: unknown action '%s' (known: %s none)",
                            word, dp_action_words(~0u, known, sizeof(known)));
    return NULL;
}

static const char *set_users(cmd_parms *cmd, void *dconf, const char *word)
{
    dp_dir_conf *c = dconf;
    uid_t uid;
    const char *err;

    if (!c->uids) {
        c->uids = apr_array_make(cmd->pool, 4, sizeof(uid_t));
        c->scope_section = register_section(cmd, c);
    }
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

/* DiagProcProfileLimits sessions=N seconds=N hz=N memory=SIZE: one word at a time */
static const char *set_profile_limits(cmd_parms *cmd, void *d, const char *word)
{
    static const struct { const char *key; long lo, hi; } keys[] = {
        { "sessions", 1, DP_PROF_SESSIONS }, { "seconds", 1, DP_PROF_MAX_SECONDS },
        { "hz", DP_PROF_HZ_MIN, DP_PROF_HZ_MAX },
        { "memory", DP_PROF_MIN_BYTES, DP_PROF_MAX_BYTES_LIMIT },
    };
    dp_server_conf *sc = dp_server_config(cmd->server);
    const char *eq = strchr(word, '='), *err = main_server_only(cmd);
    char *end;
    long v;
    size_t i;

    (void)d;
    if (err)
        return err;
    for (i = 0; eq && i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i].key) == (size_t)(eq - word) && !strncmp(word, keys[i].key, eq - word))
            break;
    if (!eq || i == sizeof(keys) / sizeof(keys[0]))
        return apr_psprintf(cmd->pool, "DiagProcProfileLimits: '%s' is not one of sessions=N, "
                            "seconds=N, hz=N, memory=SIZE", word);
    v = strtol(eq + 1, &end, 10);
    if (i == 3 && (*end == 'K' || *end == 'k' || *end == 'M' || *end == 'm'
                   || *end == 'G' || *end == 'g') && !end[1] && v > 0 && v < 1L << 20)
        v <<= (*end == 'K' || *end == 'k') ? 10 : (*end == 'M' || *end == 'm') ? 20 : 30, end++;
    if (*end || end == eq + 1 || v < keys[i].lo || v > keys[i].hi)
        return apr_psprintf(cmd->pool, "DiagProcProfileLimits: '%s' is out of range: %s takes "
                            "%ld to %ld%s", word, keys[i].key, keys[i].lo, keys[i].hi,
                            i == 3 ? " bytes (K, M or G may follow the number)" : "");
    if (i == 0)
        sc->prof_sessions = (int)v;
    else if (i == 1)
        sc->prof_seconds = (int)v;
    else if (i == 2)
        sc->prof_hz = (int)v;
    else
        sc->prof_bytes = (apr_size_t)v;
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

const command_rec dp_config_cmds[] = {
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
    AP_INIT_ITERATE("DiagProcProfileLimits", set_profile_limits, NULL, RSRC_CONF,
                    "sessions=N seconds=N hz=N memory=SIZE: profiles at once (12), a profile's "
                    "longest run (900 s), highest rate (1000 Hz) and store of stacks (64M)"),
    AP_INIT_TAKE1("DiagProcDumpNice", set_dump_nice, NULL, RSRC_CONF,
                  "CPU priority (nice) of the process writing a dump (default 10)"),
    AP_INIT_TAKE1("DiagProcDumpIOPriority", set_dump_ioprio, NULL, RSRC_CONF,
                  "I/O priority of the process writing a dump: idle, best-effort[:0-7], "
                  "unchanged (default best-effort:7)"),
    AP_INIT_TAKE3("DiagProcSpool", dp_capture_cmd_spool, NULL, RSRC_CONF,
                  "DIR BYTES FILES: the capture spool (root's, mode 0700) and its quota"),
    AP_INIT_RAW_ARGS("DiagProcCapture", dp_capture_cmd_rule, NULL, RSRC_CONF,
                     "NAME when=TRIGGER [path=GLOB] [vhost=GLOB] [users=LIST] do=ACTION "
                     "[limit=COUNT/WINDOW] [cooldown=DURATION]: a capture rule"),
    AP_INIT_TAKE1("DiagProcListen", set_listen, NULL, RSRC_CONF,
                  "[address:]port served by a reserved diagnostics process (may repeat)"),
    { NULL }
};

/* "/p>" or "\"/p\">" as the section's arguments hold them: the path alone */
static const char *section_path(apr_pool_t *p, const char *args)
{
    size_t n = strlen(args);
    if (n && args[n - 1] == '>')
        n--;
    if (n >= 2 && (args[0] == '"' || args[0] == '\'') && args[n - 1] == args[0])
        return apr_pstrmemdup(p, args + 1, n - 2);
    return apr_pstrmemdup(p, args, n);
}

static void collect_locations(apr_pool_t *p, const ap_directive_t *d)
{
    for (; d; d = d->next) {
        const ap_directive_t *c;
        if (strcasecmp(d->directive, "<Location") != 0 || !d->args || d->args[0] == '~') {
            collect_locations(p, d->first_child);
            continue;
        }
        for (c = d->first_child; c; c = c->next)
            if (!strcasecmp(c->directive, "SetHandler") && c->args
                && (!strcasecmp(c->args, "diagproc") || !strcasecmp(c->args, DP_FLEET_HANDLER)))
                APR_ARRAY_PUSH(own_locations, const char *) = section_path(p, d->args);
    }
}

int dp_config_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)plog; (void)ptemp; (void)s;
    own_locations = apr_array_make(pconf, 4, sizeof(const char *));
    collect_locations(pconf, ap_conftree);
    return OK;
}

int dp_config_uri_is_ours(const char *uri)
{
    int i;
    for (i = 0; uri && own_locations && i < own_locations->nelts; i++) {
        const char *loc = APR_ARRAY_IDX(own_locations, i, const char *);
        size_t n = strlen(loc);
        if (!strncmp(uri, loc, n) && (uri[n] == '\0' || uri[n] == '/' || (n && loc[n - 1] == '/')))
            return 1;
    }
    return 0;
}

int dp_config_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog; (void)ptemp;
    memset(&ceiling, 0, sizeof(ceiling));
    ceiling.uids = apr_array_make(pconf, 4, sizeof(uid_t));
    sections = apr_array_make(pconf, 8, sizeof(dp_section));
    nlisten = 0;
    return OK;
}
