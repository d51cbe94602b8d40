/* The processes nobody may kill, dump or unwind from here, whatever the
 * configuration says: one rule for the worker and the helper. */
#include "proc/protect.h"

int dp_check_protected(pid_t pid, const dp_stat *st, pid_t httpd_pid, pid_t helper_pid,
                       dp_error *err)
{
    if (pid == 1)
        return dp_fail(err, 403, "Process 1 (init) is protected.");
    if (pid == httpd_pid)
        return dp_fail(err, 403, "Process %d is the httpd parent process; it is protected "
                       "(use apachectl to restart httpd).", (int)pid);
    if (helper_pid > 0 && pid == helper_pid)
        return dp_fail(err, 403, "Process %d is the diagproc helper; it is protected.",
                       (int)pid);
    if ((st->flags & DP_PF_KTHREAD) || pid == 2 || st->ppid == 2)
        return dp_fail(err, 403, "Process %d is a kernel thread; kernel threads are "
                       "protected.", (int)pid);
    return 0;
}
