/* The helper's DP_READ_WHERE answer as entries (see where_lines.h). */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "worker/where_lines.h"

#define DP_WHERE_FIELDS 7

/* One line "tid\ttransport\tlocal\tpeer\tpeer_pid\tpeer_uid\tpeer_comm";
 * 0, or -1 when malformed. */
static int parse_line(apr_pool_t *p, char *line, dp_where_entry *e)
{
    char *f[DP_WHERE_FIELDS], *s = line, *end;
    int i;

    for (i = 0; i < DP_WHERE_FIELDS; i++) {
        f[i] = s;
        if (i < DP_WHERE_FIELDS - 1) {
            if ((s = strchr(s, '\t')) == NULL)
                return -1;
            *s++ = '\0';
        }
    }
    e->tid = (pid_t)strtol(f[0], &end, 10);
    if (*end || end == f[0] || e->tid <= 0)
        return -1;
    e->transport = apr_pstrdup(p, f[1]);
    e->local = apr_pstrdup(p, f[2]);
    e->peer = apr_pstrdup(p, f[3]);
    e->peer_pid = (pid_t)strtol(f[4], &end, 10);
    if (*end || end == f[4] || e->peer_pid < 0)
        return -1;
    e->peer_uid = strtol(f[5], &end, 10);
    if (*end || end == f[5])
        return -1;
    e->peer_comm = apr_pstrdup(p, f[6]);
    return 0;
}

int dp_where_parse(char *buf, apr_array_header_t *out, apr_pool_t *p)
{
    char *line, *next;
    int n = 0;

    for (line = buf; line && *line; line = next) {
        dp_where_entry e;
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        if (parse_line(p, line, &e) == 0) {
            *(dp_where_entry *)apr_array_push(out) = e;
            n++;
        }
    }
    return n;
}
