/* DiagProcSpool, DiagProcCapture and the status counters (see the .h). */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "scoreboard.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_capture.h"
#include "httpd/mod_diagproc_log.h"
#include "common/capture.h"

APLOG_USE_MODULE(diagproc);

/* The configuration as read (reset before each read). */
static const char *spool_dir;
static unsigned long long quota_bytes;
static long quota_files;
static apr_array_header_t *rules;       /* dp_capture_rule */
static dp_cap_counts *counts;           /* retained across generations */

#define DP_COUNTS_KEY "mod_diagproc_capture_counts"
#define DEFAULT_QUOTA_BYTES (1ULL << 30)
#define DEFAULT_QUOTA_FILES 200

typedef struct counts_retained {
    dp_cap_counts *m;
} counts_retained;

const char *dp_capture_cmd_spool(cmd_parms *cmd, void *d, const char *dir, const char *bytes,
                                 const char *files)
{
    char err[256];
    const char *ctx = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)d;
    if (ctx)
        return ctx;
    if (dir[0] != '/')
        return apr_psprintf(cmd->pool, "DiagProcSpool: the directory '%s' must be an absolute "
                            "path", dir);
    if (dp_spool_parse_quota(bytes, files, &quota_bytes, &quota_files, err, sizeof(err)) != 0)
        return apr_pstrdup(cmd->pool, err);
    spool_dir = apr_pstrdup(cmd->pool, dir);
    return NULL;
}

static const char *resolve_users(cmd_parms *cmd, dp_capture_rule *r)
{
    int i;

    for (i = 0; i < r->nusers; i++) {
        struct passwd *pw;
        char *end;
        long v;
        if (!strcmp(r->users[i], "*"))
            continue;
        errno = 0;
        v = strtol(r->users[i] + (r->users[i][0] == '#'), &end, 10);
        if (r->users[i][0] == '#' && !*end && !errno && v >= 0) {
            r->uids[i] = (uid_t)v;
            continue;
        }
        if ((pw = getpwnam(r->users[i])) == NULL)
            return apr_psprintf(cmd->pool, "DiagProcCapture %s: unknown user '%s' in users=",
                                r->name, r->users[i]);
        r->uids[i] = pw->pw_uid;
    }
    return NULL;
}

const char *dp_capture_cmd_rule(cmd_parms *cmd, void *d, const char *args)
{
    char err[512];
    dp_capture_rule r;
    const char *ctx = ap_check_cmd_context(cmd, GLOBAL_ONLY), *bad;
    int i;

    (void)d;
    if (ctx)
        return ctx;
    if (dp_capture_parse(args, &r, err, sizeof(err)) != 0)
        return apr_pstrdup(cmd->pool, err);
    if ((bad = resolve_users(cmd, &r)) != NULL)
        return bad;
    if (!rules)
        rules = apr_array_make(cmd->pool, 4, sizeof(dp_capture_rule));
    for (i = 0; i < rules->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(rules, i, dp_capture_rule).name, r.name))
            return apr_psprintf(cmd->pool, "DiagProcCapture %s: a rule of that name is "
                                "already defined", r.name);
    if (rules->nelts == DP_CAP_MAX_RULES)
        return apr_psprintf(cmd->pool, "DiagProcCapture %s: at most %d rules",
                            r.name, DP_CAP_MAX_RULES);
    APR_ARRAY_PUSH(rules, dp_capture_rule) = r;
    return NULL;
}

const char *dp_capture_spool(void)
{
    return spool_dir;
}

/* The spool must be usable before httpd starts: made (ours, 0700) when
 * missing, and writable. NULL, or why not. */
static const char *check_spool(apr_pool_t *p, const char *dir)
{
    struct stat sb;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return apr_psprintf(p, "cannot create it (%s)", strerror(errno));
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return "it is not a directory";
    if (sb.st_uid != geteuid() && chown(dir, geteuid(), getegid()) != 0)
        return apr_psprintf(p, "cannot make it owned by uid %d (%s)", (int)geteuid(),
                            strerror(errno));
    if (chmod(dir, 0700) != 0 || access(dir, W_OK | X_OK) != 0)
        return apr_psprintf(p, "it is not writable (%s)", strerror(errno));
    return NULL;
}

static int capture_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf; (void)plog; (void)ptemp;
    spool_dir = NULL;
    quota_bytes = DEFAULT_QUOTA_BYTES;
    quota_files = DEFAULT_QUOTA_FILES;
    rules = NULL;
    return OK;
}

/* Runs for `apache2 -t` too: a spool that cannot work stops httpd there. */
static int capture_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                server_rec *s)
{
    const char *why;

    (void)plog; (void)ptemp;
    if (!spool_dir)
        spool_dir = ap_runtime_dir_relative(pconf, "diagproc-spool");
    if ((!rules || !rules->nelts) && !spool_dir)
        return OK;
    if (rules && rules->nelts && (why = check_spool(ptemp, spool_dir)) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, DPLOGNO(00060)
                     "DiagProcSpool %s: %s; the capture rules (DiagProcCapture) need a "
                     "spool only root can read", spool_dir, why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* The status counters: made once, in the parent before any worker is
 * forked, kept across restarts (a graceful restart keeps the windows). */
static dp_cap_counts *counts_page(void)
{
    counts_retained *rd = ap_retained_data_get(DP_COUNTS_KEY);
    void *m;

    if (rd && rd->m)
        return rd->m;
    m = mmap(NULL, sizeof(dp_cap_counts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    rd = ap_retained_data_create(DP_COUNTS_KEY, sizeof(*rd));
    rd->m = m;
    return m;
}

static int capture_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    int i;

    (void)pconf; (void)plog; (void)ptemp;
    counts = NULL;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG || !rules)
        return OK;
    if ((counts = counts_page()) == NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00061)
                     "diagproc: no shared memory for the capture rules' status counters; "
                     "status rules never fire");
        return OK;
    }
    for (i = 0; i < rules->nelts; i++)
        if (APR_ARRAY_IDX(rules, i, dp_capture_rule).trigger == DP_CAP_AGE && !ap_extended_status) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, DPLOGNO(00065)
                         "DiagProcCapture %s: request-age rules need ExtendedStatus On (the "
                         "requests' start times); it is off, so they never fire",
                         APR_ARRAY_IDX(rules, i, dp_capture_rule).name);
            break;
        }
    /* a row keeps its counts while the rule of its number keeps its name */
    for (i = 0; i < DP_CAP_MAX_RULES; i++) {
        const char *name = i < rules->nelts ? APR_ARRAY_IDX(rules, i, dp_capture_rule).name : "";
        if (strcmp(counts->names[i], name) != 0) {
            memset(counts->b[i], 0, sizeof(counts->b[i]));
            counts->last_pid[i] = 0;
            apr_cpystrn(counts->names[i], name, sizeof(counts->names[i]));
        }
    }
    return OK;
}

int dp_capture_watch_config(apr_pool_t *pconf, const dp_helper_policy *pol,
                            dp_watch_config *out)
{
    (void)pconf;
    memset(out, 0, sizeof(*out));
    if (!rules || !rules->nelts || !spool_dir)
        return 0;
    out->spool = spool_dir;
    out->quota_bytes = quota_bytes;
    out->quota_files = quota_files;
    out->rules = (const dp_capture_rule *)rules->elts;
    out->nrules = rules->nelts;
    out->counts = counts;
    out->httpd_pid = getpid();
    out->workers_uid = pol->peer_uid;
    out->all_users = pol->all_users;
    out->uids = pol->uids;
    out->nuids = pol->nuids;
    out->max_dumps = pol->max_dumps;
    out->snapshot = pol->snapshot;
    out->log_level = pol->log_level;
    return 1;
}

/* In the workers: each response with a status a status rule counts. */
static int count_status(request_rec *r)
{
    apr_uint32_t now;
    int i;

    if (!counts || !rules)
        return DECLINED;
    while (r->next)
        r = r->next;
    now = (apr_uint32_t)apr_time_sec(apr_time_now());
    for (i = 0; i < rules->nelts; i++) {
        const dp_capture_rule *rule = &APR_ARRAY_IDX(rules, i, dp_capture_rule);
        if (rule->trigger != DP_CAP_STATUS || r->status < rule->status_lo
            || r->status > rule->status_hi)
            continue;
        dp_cap_count(counts->b[i], now);
        __atomic_store_n(&counts->last_pid[i], (int32_t)getpid(), __ATOMIC_RELAXED);
    }
    return DECLINED;
}

void dp_capture_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(capture_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(capture_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(capture_post_config, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_log_transaction(count_status, NULL, NULL, APR_HOOK_MIDDLE);
}
