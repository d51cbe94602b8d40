/* What the httpd parent makes before it forks anyone, and every process it
 * forks inherits: the shared page (the pids the scoreboard does not know,
 * the kernel thread id of each scoreboard slot), the helper's socket path
 * and this generation's secret. Nothing here calls into another glue file. */

#include <errno.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <sys/mman.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"

#include "httpd/mod_diagproc_log.h"
#include "httpd/mod_diagproc_shared.h"

APLOG_USE_MODULE(diagproc);

/* Kept across restarts (the DSO and its statics are reloaded, the page and
 * every process forked with it stay); the version is in the key because a
 * new build may change the layout. */
#define DP_SHARED_KEY "mod_diagproc shared page v3"

typedef struct dp_shared_retained {
    dp_shared *page;
    size_t size;
} dp_shared_retained;

dp_shared *dp_shared_page(void)
{
    dp_shared_retained *rd = ap_retained_data_get(DP_SHARED_KEY);
    return rd ? rd->page : NULL;
}

void dp_shared_init(void)
{
    dp_shared_retained *rd = ap_retained_data_get(DP_SHARED_KEY);
    int sl = 0, tl = 0;
    size_t size;
    void *m;

    if (!rd)
        rd = ap_retained_data_create(DP_SHARED_KEY, sizeof(*rd));
    if (rd->page)
        return;     /* the hard limits cannot change on a restart */
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &sl);
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_THREADS, &tl);
    if (sl < 1)
        sl = 1;
    if (tl < 1)
        tl = 1;
    size = sizeof(dp_shared) + (size_t)sl * (size_t)tl * sizeof(dp_slot);
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, ap_server_conf, DPLOGNO(00019)
                     "diagproc: no shared page; httpd roles and thread ids will be missing");
        return;
    }
    rd->page = m;
    rd->size = size;
    rd->page->server_limit = sl;
    rd->page->thread_limit = tl;
}

void dp_shared_set_helper(pid_t pid)
{
    dp_shared *sh = dp_shared_page();
    if (sh)
        __atomic_store_n(&sh->helper_pid, pid, __ATOMIC_RELEASE);
}

void dp_shared_set_helper_retry(long at)
{
    dp_shared *sh = dp_shared_page();
    if (sh)
        __atomic_store_n(&sh->helper_retry_at, at, __ATOMIC_RELEASE);
}

int dp_shared_helper_retry_in(void)
{
    dp_shared *sh = dp_shared_page();
    long at = sh ? __atomic_load_n(&sh->helper_retry_at, __ATOMIC_ACQUIRE) : 0, now;

    if (!at)
        return 0;
    now = (long)time(NULL);
    return at > now ? (int)(at - now) : 1;
}

void dp_shared_set_reserved(pid_t pid, int generation)
{
    dp_shared *sh = dp_shared_page();
    if (sh) {
        sh->reserved_generation = generation;
        __atomic_store_n(&sh->reserved_pid, pid, __ATOMIC_RELEASE);
    }
}

/* Set in the parent before the workers are forked; they inherit it. */
static const char *sockpath;
/* Made anew by the parent for each generation; workers and the helper get it
 * by inheriting this memory, never through a file or the environment. An
 * exec (a CGI script) replaces it. */
static unsigned char generation_secret[DP_SECRET_LEN];

void dp_shared_set_socket_path(const char *path)
{
    sockpath = path;
}

const char *dp_shared_socket_path(void)
{
    return sockpath;
}

unsigned char *dp_shared_secret(void)
{
    return generation_secret;
}

/* The MPM's parent looks for dead children once a second; a SIGCHLD handler
 * cuts that sleep short, so that a helper or reserved process that died, or
 * the end of a retry's wait, is seen at once (a 1 s backoff became 3 s).
 * SA_RESTART: only sleeps are cut short. Removed with the pool, before the
 * DSO is unloaded; installing it twice in one generation does no harm. */
static void on_sigchld(int sig)
{
    (void)sig;
}

static apr_status_t restore_sigchld(void *data)
{
    (void)data;
    signal(SIGCHLD, SIG_DFL);
    return APR_SUCCESS;
}

void dp_shared_watch_children(apr_pool_t *p)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    apr_pool_cleanup_register(p, NULL, restore_sigchld, apr_pool_cleanup_null);
}
