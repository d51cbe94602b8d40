/* The configuration every glue file reads: directives, per-Location and
 * per-server records, the helper's ceiling. The cores never include this. */
#ifndef MOD_DIAGPROC_CONFIG_H
#define MOD_DIAGPROC_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"
#include <jansson.h>
#include "common/dp_error.h"
#include "httpd/mod_diagproc_log.h"

/* DiagProcAllow words */

typedef struct dp_dir_conf {
    int allow;                  /* DP_ACT_* bits (common/actions.h) */
    int allow_set;
    int all_users;              /* DiagProcUsers * */
    apr_array_header_t *uids;   /* uid_t; NULL = not set (default: httpd User) */
    apr_array_header_t *fleet;  /* dp_fleet_member; DiagProcFleetMember, NULL = none */
    /* The sections (numbered as the configuration was read, -1 = none) whose
     * DiagProcAllow and DiagProcUsers apply: the helper knows them by these
     * numbers and checks every request against them. */
    int self_section;           /* this section's own number, once it uses a directive */
    int allow_section, scope_section;
} dp_dir_conf;

/* A section that uses DiagProcAllow or DiagProcUsers, as the helper gets it. */
typedef struct dp_section {
    const dp_dir_conf *conf;    /* its final contents once the configuration is read */
    const char *path;           /* the <Location> path; NULL for any other kind of section */
} dp_section;

/* Every section that uses one of the per-directory directives (dp_section). */
const apr_array_header_t *dp_config_sections(void);

/* One member of a fleet view: its instance name and the URL-path on this
 * (front) server that reaches its list, usually through mod_proxy. */
typedef struct dp_fleet_member {
    const char *name;
    const char *path;
} dp_fleet_member;

typedef struct dp_server_conf {
    const char *instance_name;          /* DiagProcInstanceName */
    int max_dumps;                      /* DiagProcMaxDumps, -1 unset */
    apr_off_t max_dump_bytes;           /* DiagProcMaxDumpSize, 0 = no cap, -1 unset */
    int dump_timeout;                   /* DiagProcDumpTimeout seconds, 0 = none, -1 unset */
    int dump_snapshot;                  /* DiagProcDumpSnapshot on/off, -1 unset (on) */
    int dump_nice;                      /* DiagProcDumpNice 0-19, -1 unset (10) */
    int dump_ioprio;                    /* DiagProcDumpIOPriority, -1 unset (best-effort:7) */
    apr_array_header_t *trusted_proxies; /* apr_ipsubnet_t *; DiagProcTrustedProxies */
    /* DiagProcProfileLimits sessions= seconds= hz= memory=, 0 unset */
    int prof_sessions, prof_seconds, prof_hz;
    apr_size_t prof_bytes;
} dp_server_conf;

/* The profiles' limits in force: DiagProcProfileLimits, else the defaults. */
void dp_profile_limits(const dp_server_conf *sc, int *sessions, int *seconds, int *hz,
                       size_t *bytes);

/* The helper's server-wide ceiling: whose processes may be read, killed or
 * dumped at all. Filled while the configuration is read (only root can write
 * it): User + every DiagProcUsers name, or narrowed/widened by
 * DiagProcHelperUsers. */
typedef struct dp_ceiling {
    int all_users;              /* '*' named somewhere */
    int explicit_set;           /* DiagProcHelperUsers given: it alone decides */
    apr_array_header_t *uids;   /* uid_t */
} dp_ceiling;

extern module AP_MODULE_DECLARE_DATA diagproc_module;

dp_server_conf *dp_server_config(server_rec *s);
dp_dir_conf *dp_dir_config(request_rec *r);
/* machineName and X-Diagproc-Instance: DiagProcInstanceName, else the host name. */
const char *dp_instance_name(server_rec *s);
/* Is the peer of this connection a proxy DiagProcTrustedProxies names? */
int dp_from_trusted_proxy(request_rec *r);
const dp_ceiling *dp_global_ceiling(void);

/* DiagProcListen: the addresses as written, in order (at most
 * DP_RESERVED_MAX_LISTEN, each shorter than DP_LISTEN_SPEC_MAX). */
#define DP_RESERVED_MAX_LISTEN 8
#define DP_LISTEN_SPEC_MAX 128
const char *const *dp_config_listen(int *n);

/* For the module record in mod_diagproc.c */
void *dp_config_create_dir(apr_pool_t *p, char *dir);
void *dp_config_merge_dir(apr_pool_t *p, void *basev, void *addv);
void *dp_config_create_server(apr_pool_t *p, server_rec *s);
void *dp_config_merge_server(apr_pool_t *p, void *basev, void *addv);
extern const command_rec dp_config_cmds[];
int dp_config_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int dp_config_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
/* Does uri (as the client sent it) lie below a plain <Location> that sets
 * the diagproc handler? For the answers httpd makes before its Location
 * walk (an encoded '/' or NUL in the path). */
int dp_config_uri_is_ours(const char *uri);

#endif
