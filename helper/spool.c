/* The capture spool: listing, removal, quota, and DP_OP_CAPTURES. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "helper/spool.h"
#include "common/actions.h"
#include "common/dp_error.h"
#include "helper/daemon.h"

#define META "meta.json"
#define META_MAX (64 * 1024)

static void send_error(int fd, const dp_error *err)
{
    dp_frame_send_error(fd, (uint32_t)(err->status ? err->status : 500), err->msg);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const dp_spool_entry *)a)->id, ((const dp_spool_entry *)b)->id);
}

/* The bytes of one capture's regular files. */
static unsigned long long folder_bytes(int dfd)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    unsigned long long sum = 0;
    struct stat sb;

    if (!d) {
        close(dfd);
        return 0;
    }
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0
            && S_ISREG(sb.st_mode))
            sum += (unsigned long long)sb.st_size;
    closedir(d);
    return sum;
}

int dp_spool_list(const char *spool, dp_spool_entry **out, int *n, apr_pool_t *p)
{
    DIR *d = opendir(spool);
    struct dirent *de;
    apr_array_header_t *a = apr_array_make(p, 16, sizeof(dp_spool_entry));

    *out = NULL;
    *n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        dp_spool_entry *e;
        int fd;
        if (!dp_cap_name_ok(de->d_name))
            continue;
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        e = apr_array_push(a);
        apr_cpystrn(e->id, de->d_name, sizeof(e->id));
        e->bytes = folder_bytes(fd);
    }
    closedir(d);
    qsort(a->elts, (size_t)a->nelts, sizeof(dp_spool_entry), by_id);
    *out = (dp_spool_entry *)a->elts;
    *n = a->nelts;
    return 0;
}

int dp_spool_remove(const char *spool, const char *id)
{
    int dfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;
    DIR *d;
    struct dirent *de;

    if (dfd < 0)
        return -1;
    fd = openat(dfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        close(dfd);
        errno = e;
        return -1;
    }
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    if (unlinkat(dfd, id, AT_REMOVEDIR) != 0) {
        int e = errno;
        close(dfd);
        errno = e;
        return -1;
    }
    close(dfd);
    return 0;
}

int dp_spool_trim(const char *spool, unsigned long long qbytes, long qfiles, apr_pool_t *p)
{
    dp_spool_entry *e;
    unsigned long long total = 0;
    int n, i, removed = 0;

    if (dp_spool_list(spool, &e, &n, p) != 0)
        return 0;
    for (i = 0; i < n; i++)
        total += e[i].bytes;
    for (i = 0; i < n && (total > qbytes || (long)(n - i) > qfiles); i++) {
        if (dp_spool_remove(spool, e[i].id) == 0)
            removed++;
        total -= e[i].bytes;
    }
    return removed;
}

/* ------------------------------------------------------ DP_OP_CAPTURES */

/* One capture of the listing: id, its metadata without the closing brace,
 * its artifacts (common/proto.h). 0, or -1 when it is skipped. */
static int list_one(int fd, int spfd, const char *id, apr_pool_t *p)
{
    int cfd = openat(spfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), mfd;
    char *meta = apr_palloc(p, META_MAX), *end;
    const char *arts = "";
    struct dirent *de;
    struct stat sb;
    ssize_t got;
    DIR *d;
    int rc;

    if (cfd < 0)
        return -1;
    mfd = openat(cfd, META, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    got = mfd >= 0 ? read(mfd, meta, META_MAX - 1) : -1;
    if (mfd >= 0)
        close(mfd);
    if (got <= 0 || (d = fdopendir(cfd)) == NULL) {
        close(cfd);
        return -1;
    }
    meta[got] = '\0';
    end = strrchr(meta, '}');
    if (!end) {
        closedir(d);
        return -1;
    }
    *end = '\0';
    while ((de = readdir(d)) != NULL) {
        if (!dp_cap_name_ok(de->d_name) || !strcmp(de->d_name, META)
            || fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0
            || !S_ISREG(sb.st_mode))
            continue;
        arts = apr_psprintf(p, "%s%s\t%" APR_OFF_T_FMT "\n", arts, de->d_name,
                            (apr_off_t)sb.st_size);
    }
    closedir(d);
    {
        size_t idl = strlen(id) + 1, ml = strlen(meta) + 1, al = strlen(arts);
        char *buf = apr_palloc(p, idl + ml + al);
        memcpy(buf, id, idl);
        memcpy(buf + idl, meta, ml);
        memcpy(buf + idl + ml, arts, al);
        rc = dp_frame_write(fd, DP_FR_DATA, buf, idl + ml + al, NULL, 0);
    }
    return rc;
}

static void serve_list(int fd, const dp_helper_policy *pol, apr_pool_t *p)
{
    dp_spool_entry *e;
    int n, i, spfd;

    if (access(pol->spool, F_OK) != 0 && errno == ENOENT) {
        if (dp_frame_send_ok(fd, UINT64_MAX, "") == 0)      /* no capture yet */
            dp_frame_send_end(fd);
        return;
    }
    if (dp_spool_list(pol->spool, &e, &n, p) != 0
        || (spfd = open(pol->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        dp_error err = { 0 };
        dp_fail(&err, 500, "Cannot read the capture spool %s: %s.", pol->spool, strerror(errno));
        return send_error(fd, &err);
    }
    if (dp_frame_send_ok(fd, UINT64_MAX, "") != 0)
        return;
    for (i = n - 1; i >= 0; i--) {      /* newest first */
        apr_pool_t *sub;
        apr_pool_create(&sub, p);
        list_one(fd, spfd, e[i].id, sub);
        apr_pool_destroy(sub);
    }
    close(spfd);
    dp_frame_send_end(fd);
}

static void serve_get(int fd, const dp_helper_policy *pol, const dp_request *rq)
{
    char path[4096], buf[64 * 1024];
    dp_error err = { 0 };
    struct stat sb;
    ssize_t n;
    int afd;

    snprintf(path, sizeof(path), "%s/%s/%s", pol->spool, rq->cap_id, rq->cap_name);
    afd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (afd < 0 || fstat(afd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (afd >= 0)
            close(afd);
        dp_fail(&err, 404, "No artifact '%s' in capture '%s'.", rq->cap_name, rq->cap_id);
        return send_error(fd, &err);
    }
    if (dp_frame_send_ok(fd, (uint64_t)sb.st_size, rq->cap_name) != 0) {
        close(afd);
        return;
    }
    while ((n = read(afd, buf, sizeof(buf))) > 0)
        if (dp_frame_write(fd, DP_FR_DATA, buf, (size_t)n, NULL, 0) != 0)
            break;
    close(afd);
    if (n == 0)
        dp_frame_send_end(fd);
}

/* The helper may read the spool (CAP_DAC_READ_SEARCH) but not write it: the
 * watcher, which owns it, removes the capture; we wait until it has. */
static void serve_delete(int fd, const dp_helper_policy *pol, const dp_request *rq)
{
    char path[4096];
    dp_error err = { 0 };
    struct stat sb;
    int i;

    snprintf(path, sizeof(path), "%s/%s", pol->spool, rq->cap_id);
    if (lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        dp_fail(&err, 404, "No capture '%s'.", rq->cap_id);
        return send_error(fd, &err);
    }
    if (pol->capture_fd < 0
        || send(pol->capture_fd, rq->cap_id, strlen(rq->cap_id), MSG_DONTWAIT) < 0) {
        dp_fail(&err, 503, "The capture watcher is not running; try again shortly.");
        return send_error(fd, &err);
    }
    for (i = 0; i < 100 && lstat(path, &sb) == 0; i++)
        usleep(50 * 1000);
    if (i == 100) {
        dp_fail(&err, 503, "The capture watcher did not remove '%s' within 5 s.", rq->cap_id);
        return send_error(fd, &err);
    }
    if (dp_frame_send_ok(fd, 0, rq->cap_id) == 0)
        dp_frame_send_end(fd);
}

void dp_spool_serve(int fd, const dp_helper_policy *pol, const dp_request *rq, apr_pool_t *p)
{
    dp_error err = { 0 };

    if (!(dp_policy_actions(pol, rq->allow_section, rq->scope_section) & DP_ACT_CAPTURES)) {
        dp_fail(&err, 403, "The configuration section this request comes from does not "
                "allow 'captures' (DiagProcAllow).");
        return send_error(fd, &err);
    }
    if (!pol->spool) {
        dp_fail(&err, 404, "No capture spool is configured.");
        return send_error(fd, &err);
    }
    switch (rq->what) {
    case DP_CAP_LIST:
        serve_list(fd, pol, p);
        break;
    case DP_CAP_GET:
        serve_get(fd, pol, rq);
        break;
    case DP_CAP_DELETE:
        serve_delete(fd, pol, rq);
        break;
    }
}
