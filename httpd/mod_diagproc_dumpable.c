/* Keeps httpd's children non-dumpable when httpd starts as root. With
 * CoreDumpDirectory set, mod_unixd makes each child dumpable again after its
 * setuid (prctl(PR_SET_DUMPABLE, 1)) so that it can write a core; on a kernel
 * without Yama's ptrace_scope every process of the workers' user (a CGI
 * script, a php-fpm pool) may then ptrace a worker, read the generation's
 * secret out of its memory and make it ask the privileged helper for
 * whatever the configuration grants, through any Location. The helper
 * refuses a peer its user may ptrace (helper/policy.c); this keeps the
 * workers, the reserved process and mod_cgid's daemon from being one. */

#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "mpm_common.h"
#include "unixd.h"

#include "httpd/mod_diagproc_log.h"
#include "httpd/mod_diagproc_dumpable.h"

APLOG_USE_MODULE(diagproc);

/* Set by the parent: its children change their uid, and the helper runs
 * with capabilities their user does not have. Inherited by every child. */
static int root_parent;

/* fs.suid_dumpable, what the kernel makes a process that changed its uid:
 * 0 not dumpable, 1 dumpable by its user, 2 dumpable by root only (no
 * ptrace by the user; its core is written as root, and only to an
 * absolute or piped kernel.core_pattern); -1 when it cannot be read. */
static int suid_dumpable(void)
{
    FILE *f = fopen("/proc/sys/fs/suid_dumpable", "r");
    int v = -1;

    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Says once per generation, in the parent, what becomes of what
 * CoreDumpDirectory (or fs.suid_dumpable = 1) asked for. */
static int dp_dumpable_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                   server_rec *s)
{
    int sd;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    root_parent = geteuid() == 0;
    if (!root_parent)
        return OK;          /* children keep the parent's uid: nothing changes */
    sd = suid_dumpable();
    if (ap_coredumpdir_configured && sd == 2)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, DPLOGNO(00032)
                     "diagproc: CoreDumpDirectory would make httpd's children ptraceable by "
                     "every process of user %s; mod_diagproc leaves them as the kernel made "
                     "them (fs.suid_dumpable = 2): not ptraceable by that user, their cores "
                     "written as root where kernel.core_pattern says (an absolute path or a "
                     "pipe), not in CoreDumpDirectory", ap_unixd_config.user_name);
    else if (ap_coredumpdir_configured || sd == 1)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, DPLOGNO(00031)
                     "diagproc: %s would make httpd's children ptraceable by every process "
                     "of user %s (a CGI or php-fpm script could act through a worker); "
                     "mod_diagproc keeps them non-dumpable, so they write no core on a crash. "
                     "For cores, set fs.suid_dumpable = 2 with an absolute or piped "
                     "kernel.core_pattern: the kernel then writes them as root",
                     ap_coredumpdir_configured ? "CoreDumpDirectory" : "fs.suid_dumpable = 1",
                     ap_unixd_config.user_name);
    return OK;
}

/* In every child that goes through httpd's drop_privileges (the MPM's
 * workers, the reserved process, mod_cgid's daemon), before mod_unixd's
 * hook and while still root: forget CoreDumpDirectory in this process
 * only, so that mod_unixd does not make it dumpable after its setuid. Doing
 * it in child_init instead would leave it dumpable for a moment, and a
 * ptrace attach made in that moment outlives it. The setuid itself leaves
 * the process as fs.suid_dumpable says (0 by default). */
static int dp_dumpable_drop_privileges(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
    if (geteuid() == 0)
        ap_coredumpdir_configured = 0;
    return DECLINED;
}

/* In the workers and the reserved process, after the privilege drop: if
 * something made this process dumpable by its user all the same (another
 * module's drop_privileges, fs.suid_dumpable = 1), undo it. */
static void dp_dumpable_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    if (root_parent && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, DPLOGNO(00033)
                     "diagproc: process %d was dumpable by its user after the privilege "
                     "drop; it is not any more", (int)getpid());
    }
}

void dp_dumpable_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(dp_dumpable_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_drop_privileges(dp_dumpable_drop_privileges, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_child_init(dp_dumpable_child_init, NULL, NULL, APR_HOOK_REALLY_FIRST);
}
