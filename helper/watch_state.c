/* The capture watcher's set-up and its state in the spool (helper/watch_state.h). */
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper/watch.h"
#include "helper/watch_state.h"
#include "helper/spool.h"

#define STATE_FILE ".windows"

int dp_watch_prepare_spool(const char *spool, const char **why)
{
    struct stat sb;

    if (mkdir(spool, 0700) != 0 && errno != EEXIST) {
        *why = "cannot create it";
        return -1;
    }
    if (lstat(spool, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        *why = "it is not a directory";
        errno = ENOTDIR;
        return -1;
    }
    if (sb.st_uid != geteuid() && chown(spool, geteuid(), getegid()) != 0) {
        *why = "cannot make it ours";
        return -1;
    }
    if (chmod(spool, 0700) != 0 || access(spool, W_OK | X_OK) != 0) {
        *why = "it is not writable";
        return -1;
    }
    return 0;
}

/* Root, but only with what a capture needs: ptrace (stacks, dumps, the
 * connections of other users' processes), reading any /proc file, mapped
 * files of deleted libraries, signals to check a pid. The spool is root's
 * own, so writing it needs no capability. NULL, or the step that failed. */
const char *dp_watch_keep_caps(void)
{
    static const int kept[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_CHECKPOINT_RESTORE,
                                CAP_KILL };
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    int cap, i;

    if (geteuid() != 0)
        return NULL;
    memset(data, 0, sizeof(data));
    for (i = 0; i < (int)(sizeof(kept) / sizeof(kept[0])); i++) {
        data[kept[i] / 32].effective |= 1u << (kept[i] % 32);
        data[kept[i] / 32].permitted |= 1u << (kept[i] % 32);
    }
    for (cap = 0; cap <= 63; cap++)
        if (!(data[cap / 32].permitted & (1u << (cap % 32)))
            && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            return "cannot drop the capabilities it does not need";
    if (syscall(SYS_capset, &hdr, data) != 0)
        return "cannot keep CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_CHECKPOINT_RESTORE and "
               "CAP_KILL";
    return NULL;
}


void dp_watch_save_windows(const dp_watch_config *cfg, const dp_cap_window *w)
{
    char path[4096], tmp[4096];
    FILE *f;
    int i, k;

    snprintf(path, sizeof(path), "%s/" STATE_FILE, cfg->spool);
    snprintf(tmp, sizeof(tmp), "%s/" STATE_FILE ".new", cfg->spool);
    if ((f = fopen(tmp, "w")) == NULL)
        return;
    for (i = 0; i < cfg->nrules; i++) {
        fprintf(f, "%s %lld", cfg->rules[i].name, w[i].last);
        for (k = 0; k < w[i].n; k++)
            fprintf(f, " %lld", w[i].fires[k]);
        fputc('\n', f);
    }
    if (fclose(f) == 0)
        rename(tmp, path);
}

/* The rules' windows as the last watcher left them (a graceful restart
 * starts a new watcher; a rule keeps its count by its name). */
void dp_watch_load_windows(const dp_watch_config *cfg, dp_cap_window *windows)
{
    char path[4096], line[8192];
    FILE *f;
    int i;

    snprintf(path, sizeof(path), "%s/" STATE_FILE, cfg->spool);
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL, *name = strtok_r(line, " \n", &save), *tok;
        for (i = 0; name && i < cfg->nrules; i++) {
            dp_cap_window *w = &windows[i];
            if (strcmp(cfg->rules[i].name, name) != 0)
                continue;
            tok = strtok_r(NULL, " \n", &save);
            w->last = tok ? atoll(tok) : 0;
            while ((tok = strtok_r(NULL, " \n", &save)) != NULL && w->n < DP_CAP_LIMIT_MAX)
                w->fires[w->n++] = atoll(tok);
        }
    }
    fclose(f);
}

/* Leftovers of captures cut short (a watcher stopped mid-way). */
void dp_watch_remove_partial(const char *spool)
{
    DIR *d = opendir(spool);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL)
        if (!strncmp(de->d_name, ".tmp-", 5)) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", spool, de->d_name);
            dp_spool_remove(spool, de->d_name);
            rmdir(path);
        }
    if (d)
        closedir(d);
}
