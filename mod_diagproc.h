/* Shared between the httpd glue files (mod_diagproc*.c): configuration and
 * the few entry points one glue file offers the others. The cores in proc/,
 * dump/ and helper/ never include this. */
#ifndef MOD_DIAGPROC_H
#define MOD_DIAGPROC_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"
#include <jansson.h>
#include "proc/dp_error.h"

/* DiagProcAllow words */
#define DP_ALLOW_KILL        0x01
#define DP_ALLOW_DUMP        0x02
#define DP_ALLOW_FULLDUMP    0x04
#define DP_ALLOW_ENVIRONMENT 0x08
#define DP_ALLOW_STACKS      0x10

typedef struct dp_dir_conf {
    int allow;                  /* DP_ALLOW_* bits */
    int allow_set;
    int all_users;              /* DiagProcUsers * */
    apr_array_header_t *uids;   /* uid_t; NULL = not set (default: httpd User) */
    apr_array_header_t *fleet;  /* dp_fleet_member; DiagProcFleetMember, NULL = none */
} dp_dir_conf;

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
} dp_server_conf;

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
const char *dp_prefix(request_rec *r);
/* machineName and X-Diagproc-Instance: DiagProcInstanceName, else the host name. */
const char *dp_instance_name(server_rec *s);
/* Every answer of ours names the instance (err_headers_out: errors too). */
void dp_set_instance_header(request_rec *r);
/* Is the peer of this connection a proxy DiagProcTrustedProxies names? */
int dp_from_trusted_proxy(request_rec *r);
const dp_ceiling *dp_global_ceiling(void);

/* Send a whole response and return DONE (a 5xx if even that failed), so
 * that `if ((rv = step(r)) != OK) return rv;` chains policy checks. */
/* Sends a JSON body (takes the reference) with the status. */
int dp_send_json(request_rec *r, int status, json_t *body);
/* The query string as a table (decoded). */
apr_table_t *dp_query(request_rec *r);
/* May this Location see and act on processes of uid (DiagProcUsers)? */
int dp_in_scope(request_rec *r, long uid);

/* Resolves {id} of a route (0 = this process) to a running process within
 * the Location's scope; on failure sends the error and returns it. */
struct dp_stat;
int dp_resolve_target(request_rec *r, const char *idstr, pid_t *pid, struct dp_stat *st);

/* Sends {"Message": ...} with the status. */
int dp_send_error(request_rec *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int dp_send_dp_error(request_rec *r, const dp_error *err);

#endif
