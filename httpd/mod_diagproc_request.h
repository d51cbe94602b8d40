/* What every route uses: answers, errors, the query, the prefix, scope,
 * the route's target and the refusals. Each sends the whole response when it
 * refuses and returns DONE, so that `if ((rv = step(r)) != OK) return rv;`
 * chains them. */
#ifndef MOD_DIAGPROC_REQUEST_H
#define MOD_DIAGPROC_REQUEST_H

#include "httpd.h"
#include <jansson.h>
#include "common/dp_error.h"

/* The <Location> path the handler answers below, without a trailing slash. */
const char *dp_prefix(request_rec *r);
/* The prefix the client used, as a path, and as an absolute URL (the base of
 * every href); and scheme://host[:port] of that URL, the Origin a browser on
 * it sends. Behind a proxy DiagProcTrustedProxies names, what the proxy's
 * client used (Forwarded, X-Forwarded-*), so that every link leads back
 * through the proxy to this instance; from anyone else those headers are
 * ignored. */
const char *dp_client_prefix(request_rec *r);
const char *dp_base_href(request_rec *r);
/* P/{pid} as an absolute URL, with the prefix the client used. */
const char *dp_proc_href(request_rec *r, long pid);
const char *dp_client_origin(request_rec *r);
/* Every answer of ours names the instance (err_headers_out: errors too). */
void dp_set_instance_header(request_rec *r);
/* Sends a JSON body (takes the reference) with the status. */
int dp_send_json(request_rec *r, int status, json_t *body);
/* The query string as a table (decoded), parsed once per request. */
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

/* pid 1, the httpd parent, kernel threads: never killed, dumped or unwound. */
int dp_refuse_protected(request_rec *r, pid_t pid, const struct dp_stat *st);
/* 403 naming the DiagProcAllow word unless this Location enables bit. */
int dp_require_allowed(request_rec *r, unsigned bit);
/* 403 for a DELETE or POST another site's page sent through a browser. */
int dp_refuse_cross_site(request_rec *r);

/* httpd's own error answer in our URL space as the API's JSON error (the
 * filter it needs is registered once with the hooks). */
void dp_json_error_register(void);
void dp_json_error_body(request_rec *r);

/* Runs a privileged route and logs the audit line (who, target, action, outcome). */
/* The audit line of a privileged action on pid (uid, name: its owner and
 * comm, -1 and "-" when unknown) with its HTTP outcome. */
void dp_audit_log(request_rec *r, unsigned action, long pid, long uid, const char *name,
                  int outcome);
int dp_audited(request_rec *r, unsigned action, int (*fn)(request_rec *, const char **),
               const char **seg);

/* A C string as JSON, made valid UTF-8 (NULL = null): every process string. */
json_t *dp_json_cstr(apr_pool_t *p, const char *s);
/* The integer member key of o (o may be NULL); 0 when absent or not an integer. */
long dp_json_long(json_t *o, const char *key);

#endif
