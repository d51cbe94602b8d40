/* httpd's processes from the scoreboard and the shared page: the role of
 * each (parent, helper, reserved, worker with its slot and generation), and
 * the workers' pids the capture watcher watches. */

#include <stdlib.h>
#include <unistd.h>

#include "httpd.h"
#include "scoreboard.h"

#include "httpd/mod_diagproc_roles.h"
#include "httpd/mod_diagproc_shared.h"

typedef struct worker_proc {
    pid_t pid;
    int slot, generation;
} worker_proc;

struct dp_roles {
    pid_t parent, helper, reserved;
    int reserved_generation;
    int nworkers;
    worker_proc *workers;       /* sorted by pid */
};

static int by_pid(const void *a, const void *b)
{
    const worker_proc *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

dp_roles *dp_roles_take(apr_pool_t *p)
{
    dp_roles *roles = apr_pcalloc(p, sizeof(*roles));
    dp_shared *sh = dp_shared_page();
    int i, sl = 0;

    roles->parent = getppid();
    if (sh) {
        roles->helper = __atomic_load_n(&sh->helper_pid, __ATOMIC_ACQUIRE);
        roles->reserved = __atomic_load_n(&sh->reserved_pid, __ATOMIC_ACQUIRE);
        roles->reserved_generation = sh->reserved_generation;
    }
    if (!ap_scoreboard_image)
        return roles;
    sl = ap_scoreboard_image->global->server_limit;
    roles->workers = apr_pcalloc(p, sizeof(worker_proc) * (size_t)(sl > 0 ? sl : 1));
    for (i = 0; i < sl; i++) {
        process_score ps = *ap_get_scoreboard_process(i);     /* a copy */
        if (ps.pid <= 0)
            continue;
        roles->workers[roles->nworkers].pid = ps.pid;
        roles->workers[roles->nworkers].slot = i;
        roles->workers[roles->nworkers].generation = ps.generation;
        roles->nworkers++;
    }
    qsort(roles->workers, (size_t)roles->nworkers, sizeof(worker_proc), by_pid);
    return roles;
}

const char *dp_role_of(const dp_roles *roles, pid_t pid, int *slot, int *generation)
{
    worker_proc key = { pid, 0, 0 }, *w;

    *slot = -1;
    *generation = -1;
    if (pid <= 0)
        return NULL;
    if (pid == roles->parent)
        return "parent";
    if (pid == roles->helper)
        return "helper";
    if (pid == roles->reserved) {
        *generation = roles->reserved_generation;
        return "reserved";
    }
    w = roles->nworkers ? bsearch(&key, roles->workers, (size_t)roles->nworkers,
                                  sizeof(worker_proc), by_pid) : NULL;
    if (!w)
        return NULL;
    *slot = w->slot;
    *generation = w->generation;
    return "worker";
}

void dp_jw_role(dp_jsonw *w, const dp_roles *roles, pid_t pid)
{
    int slot, gen;
    const char *role = dp_role_of(roles, pid, &slot, &gen);

    if (!role)
        return;
    dp_jw_raw(w, ",", 1);
    dp_jw_key(w, "httpd_role");
    dp_jw_cstr(w, role);
    if (slot >= 0) {
        dp_jw_raw(w, ",", 1);
        dp_jw_key(w, "httpd_slot");
        dp_jw_int(w, slot);
    }
    if (gen >= 0) {
        dp_jw_raw(w, ",", 1);
        dp_jw_key(w, "httpd_generation");
        dp_jw_int(w, gen);
    }
}

int dp_scoreboard_workers(pid_t *out, int max)
{
    int i, sl, n = 0;

    if (!ap_scoreboard_image)
        return 0;
    sl = ap_scoreboard_image->global->server_limit;
    for (i = 0; i < sl && n < max; i++) {
        process_score ps = *ap_get_scoreboard_process(i);
        if (ps.pid > 0)
            out[n++] = ps.pid;
    }
    return n;
}
