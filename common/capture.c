/* Capture rules: parsing, limits, shared status counters (common/capture.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/capture.h"
#include "common/dumptype.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* A decimal number at the start of s[0..len): its value and where it ends. */
static int leading_number(const char *s, size_t len, unsigned long long *v, size_t *used)
{
    size_t i = 0;
    unsigned long long x = 0;

    while (i < len && isdigit((unsigned char)s[i])) {
        if (x > (ULLONG_MAX - 9) / 10)
            return -1;
        x = x * 10 + (unsigned long long)(s[i] - '0');
        i++;
    }
    if (i == 0)
        return -1;
    *v = x;
    *used = i;
    return 0;
}

int dp_cap_parse_duration_ms(const char *s, size_t len, long long *ms)
{
    unsigned long long v, mul;
    size_t used;
    const char *u;
    size_t ulen;

    if (leading_number(s, len, &v, &used) != 0)
        return -1;
    u = s + used;
    ulen = len - used;
    if (ulen == 0 || (ulen == 1 && *u == 's'))
        mul = 1000;
    else if (ulen == 2 && !strncmp(u, "ms", 2))
        mul = 1;
    else if (ulen == 1 && *u == 'm')
        mul = 60000;
    else if (ulen == 1 && *u == 'h')
        mul = 3600000;
    else if (ulen == 1 && *u == 'd')
        mul = 86400000;
    else
        return -1;
    if (v > (unsigned long long)LLONG_MAX / mul / 1000)
        return -1;
    *ms = (long long)(v * mul);
    return 0;
}

int dp_cap_parse_size(const char *s, size_t len, unsigned long long *bytes)
{
    unsigned long long v, mul = 1;
    size_t used;

    if (leading_number(s, len, &v, &used) != 0)
        return -1;
    if (len - used == 1) {
        switch (s[used]) {
        case 'K': case 'k': mul = 1ULL << 10; break;
        case 'M': case 'm': mul = 1ULL << 20; break;
        case 'G': case 'g': mul = 1ULL << 30; break;
        case 'T': case 't': mul = 1ULL << 40; break;
        default: return -1;
        }
    } else if (len != used)
        return -1;
    if (v > ULLONG_MAX / mul)
        return -1;
    *bytes = v * mul;
    return 0;
}

const char *dp_cap_glob_error(const char *g, int is_path)
{
    size_t i, n = strlen(g);

    if (n == 0)
        return "an empty pattern";
    if (n >= DP_CAP_GLOB_MAX)
        return "a pattern too long";
    if (is_path && g[0] != '/' && g[0] != '*')
        return "a path pattern must start with '/' or '*'";
    for (i = 0; i < n; i++) {
        if (g[i] == '\\') {
            if (++i == n)
                return "a trailing backslash";
        } else if (g[i] == '[') {
            size_t j = i + 1;
            if (j < n && (g[j] == '!' || g[j] == '^'))
                j++;
            if (j < n && g[j] == ']')
                j++;
            while (j < n && g[j] != ']')
                j++;
            if (j >= n)
                return "an unclosed '['";
            i = j;
        } else if ((unsigned char)g[i] < 0x21 || g[i] == 0x7f)
            return "a control character or space";
    }
    return NULL;
}

/* ------------------------------------------------------------- triggers */

static int parse_when(dp_capture_rule *r, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    long long ms;
    unsigned long long x;
    const char *slash;

    if (n >= sizeof(r->when))
        return ERR("DiagProcCapture %s: when=%s is too long", r->name, v);
    strcpy(r->when, v);
    if (!strncmp(v, "request-age>", 12)) {
        r->trigger = DP_CAP_AGE;
        if (dp_cap_parse_duration_ms(v + 12, n - 12, &ms) != 0 || ms <= 0)
            return ERR("DiagProcCapture %s: bad duration in 'when=%s' (e.g. request-age>5s)",
                       r->name, v);
        r->age_ms = ms;
        return 0;
    }
    if (!strncmp(v, "status:", 7)) {
        const char *ge = strstr(v, ">="), *dash;
        unsigned long long lo, hi, m;
        size_t used;
        r->trigger = DP_CAP_STATUS;
        dash = strchr(v + 7, '-');
        slash = ge ? strchr(ge, '/') : NULL;
        if (!ge || !dash || dash > ge || !slash
            || leading_number(v + 7, (size_t)(dash - v - 7), &lo, &used) != 0
            || used != (size_t)(dash - v - 7)
            || leading_number(dash + 1, (size_t)(ge - dash - 1), &hi, &used) != 0
            || used != (size_t)(ge - dash - 1)
            || leading_number(ge + 2, (size_t)(slash - ge - 2), &m, &used) != 0
            || used != (size_t)(slash - ge - 2))
            return ERR("DiagProcCapture %s: bad number in 'when=%s' (e.g. status:500-599>=20/1m)",
                       r->name, v);
        if (lo < 100 || hi > 599 || lo > hi)
            return ERR("DiagProcCapture %s: the status range in 'when=%s' must lie within "
                       "100-599, low first", r->name, v);
        if (m == 0 || m > 1000000)
            return ERR("DiagProcCapture %s: the count in 'when=%s' must be 1 to 1000000",
                       r->name, v);
        if (dp_cap_parse_duration_ms(slash + 1, strlen(slash + 1), &ms) != 0 || ms < 1000
            || ms > DP_CAP_WINDOW_MAX * 1000LL)
            return ERR("DiagProcCapture %s: bad window in 'when=%s' (1s to 1h)", r->name, v);
        r->status_lo = (int)lo;
        r->status_hi = (int)hi;
        r->count = (long long)m;
        r->window_s = ms / 1000;
        return 0;
    }
    if (!strncmp(v, "rss>", 4) || !strncmp(v, "cpu>", 4)) {
        int cpu = v[0] == 'c';
        slash = strchr(v, '/');
        r->trigger = cpu ? DP_CAP_CPU : DP_CAP_RSS;
        if (!slash)
            return ERR("DiagProcCapture %s: 'when=%s' needs a duration (e.g. %s)", r->name, v,
                       cpu ? "cpu>90%/10s" : "rss>512M/30s");
        if (cpu) {
            size_t used;
            if (leading_number(v + 4, (size_t)(slash - v - 4), &x, &used) != 0
                || used + 1 != (size_t)(slash - v - 4) || v[4 + used] != '%' || x == 0
                || x > 100000)
                return ERR("DiagProcCapture %s: bad percentage in 'when=%s' (e.g. cpu>90%%/10s)",
                           r->name, v);
            r->cpu_percent = (int)x;
        } else if (dp_cap_parse_size(v + 4, (size_t)(slash - v - 4), &x) != 0 || x == 0)
            return ERR("DiagProcCapture %s: bad size in 'when=%s' (e.g. rss>512M/30s)", r->name,
                       v);
        else
            r->rss_bytes = x;
        if (dp_cap_parse_duration_ms(slash + 1, strlen(slash + 1), &ms) != 0
            || ms > DP_CAP_WINDOW_MAX * 1000LL)
            return ERR("DiagProcCapture %s: bad duration in 'when=%s' (0s to 1h)", r->name, v);
        r->window_s = ms / 1000;
        return 0;
    }
    return ERR("DiagProcCapture %s: unknown trigger 'when=%s' (request-age>N, "
               "status:LO-HI>=M/WINDOW, rss>SIZE/FOR, cpu>P%%/FOR)", r->name, v);
}

static int parse_do(dp_capture_rule *r, const char *v, char *err, size_t errlen)
{
    char *end;
    long long ms;

    if (!strcmp(v, "stacks")) {
        r->action = DP_CAP_DO_STACKS;
        return 0;
    }
    if (!strncmp(v, "dump:", 5)) {
        unsigned long t;
        const char *comma = strchr(v + 5, ',');
        r->action = DP_CAP_DO_DUMP;
        if (comma && strcmp(comma, ",zip") != 0)
            return ERR("DiagProcCapture %s: 'do=%s': only ',zip' may follow the dump type",
                       r->name, v);
        errno = 0;
        t = strtoul(v + 5, &end, 0);
        if (errno || end == v + 5 || end != (comma ? comma : v + strlen(v))
            || (t & ~DP_DUMP_SUPPORTED))
            return ERR("DiagProcCapture %s: bad dump type in 'do=%s' (a MINIDUMP_TYPE "
                       "number, e.g. dump:0x2,zip)", r->name, v);
        r->dump_type = t;
        r->zip = comma != NULL;
        return 0;
    }
    if (!strncmp(v, "profile:", 8)) {
        r->action = DP_CAP_DO_PROFILE;
        if (dp_cap_parse_duration_ms(v + 8, strlen(v + 8), &ms) != 0 || ms < 1000
            || ms > 300000)
            return ERR("DiagProcCapture %s: bad duration in 'do=%s' (1s to 5m)", r->name, v);
        r->profile_s = (int)(ms / 1000);
        return 0;
    }
    return ERR("DiagProcCapture %s: unknown action 'do=%s' (stacks, dump:TYPE[,zip], "
               "profile:SECONDS)", r->name, v);
}

static int parse_limit(dp_capture_rule *r, const char *v, char *err, size_t errlen)
{
    unsigned long long c;
    size_t used;
    long long ms;
    const char *slash = strchr(v, '/');

    if (!slash || leading_number(v, (size_t)(slash - v), &c, &used) != 0
        || used != (size_t)(slash - v) || c == 0 || c > DP_CAP_LIMIT_MAX
        || dp_cap_parse_duration_ms(slash + 1, strlen(slash + 1), &ms) != 0 || ms < 1000)
        return ERR("DiagProcCapture %s: bad number in 'limit=%s' (COUNT/WINDOW, COUNT 1 to "
                   "%d, e.g. limit=3/10m)", r->name, v, DP_CAP_LIMIT_MAX);
    r->limit_count = (int)c;
    r->limit_window_s = ms / 1000;
    return 0;
}

static int parse_users(dp_capture_rule *r, const char *v, char *err, size_t errlen)
{
    const char *p = v;

    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > 32)
            return ERR("DiagProcCapture %s: bad user list 'users=%s'", r->name, v);
        if (r->nusers == DP_CAP_USERS_MAX)
            return ERR("DiagProcCapture %s: more than %d users in 'users=%s'", r->name,
                       DP_CAP_USERS_MAX, v);
        memcpy(r->users[r->nusers], p, n);
        r->users[r->nusers][n] = '\0';
        if (n == 1 && *p == '*')
            r->all_users = 1;
        r->nusers++;
        p += n;
        if (*p == ',')
            p++;
    }
    if (!r->nusers)
        return ERR("DiagProcCapture %s: empty 'users='", r->name);
    return 0;
}

static int parse_arg(dp_capture_rule *r, const char *a, int *seen_when, char *err,
                     size_t errlen)
{
    const char *eq = strchr(a, '='), *v = eq ? eq + 1 : NULL, *why;
    size_t k = eq ? (size_t)(eq - a) : 0;
    long long ms;

    if (!eq)
        return ERR("DiagProcCapture %s: '%s' is not key=value", r->name, a);
    if (k == 4 && !strncmp(a, "when", 4)) {
        *seen_when = 1;
        return parse_when(r, v, err, errlen);
    }
    if (k == 2 && !strncmp(a, "do", 2))
        return parse_do(r, v, err, errlen);
    if (k == 5 && !strncmp(a, "limit", 5))
        return parse_limit(r, v, err, errlen);
    if (k == 8 && !strncmp(a, "cooldown", 8)) {
        if (dp_cap_parse_duration_ms(v, strlen(v), &ms) != 0)
            return ERR("DiagProcCapture %s: bad duration in 'cooldown=%s'", r->name, v);
        r->cooldown_s = ms / 1000;
        return 0;
    }
    if ((k == 4 && !strncmp(a, "path", 4)) || (k == 5 && !strncmp(a, "vhost", 5))) {
        int is_path = k == 4;
        if ((why = dp_cap_glob_error(v, is_path)) != NULL)
            return ERR("DiagProcCapture %s: bad glob in '%s': %s", r->name, a, why);
        strcpy(is_path ? r->path : r->vhost, v);
        return 0;
    }
    if (k == 5 && !strncmp(a, "users", 5))
        return parse_users(r, v, err, errlen);
    return ERR("DiagProcCapture %s: unknown argument '%s' (when=, do=, path=, vhost=, "
               "users=, limit=, cooldown=)", r->name, a);
}

int dp_capture_parse(const char *args, dp_capture_rule *r, char *err, size_t errlen)
{
    char buf[1024], *save = NULL, *tok;
    int seen_when = 0;
    size_t i;

    memset(r, 0, sizeof(*r));
    r->action = DP_CAP_DO_STACKS;
    r->limit_count = 5;
    r->limit_window_s = 3600;
    if (strlen(args) >= sizeof(buf))
        return ERR("DiagProcCapture: the line is too long");
    strcpy(buf, args);
    tok = strtok_r(buf, " \t", &save);
    if (!tok)
        return ERR("DiagProcCapture: needs NAME when=… [do=…]");
    if (strlen(tok) > DP_CAP_NAME_MAX)
        return ERR("DiagProcCapture: the name '%s' is longer than %d", tok, DP_CAP_NAME_MAX);
    for (i = 0; tok[i]; i++)
        if (!isalnum((unsigned char)tok[i]) && tok[i] != '-' && tok[i] != '_')
            return ERR("DiagProcCapture: the name '%s' may only hold letters, digits, '-' "
                       "and '_'", tok);
    strcpy(r->name, tok);
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL)
        if (parse_arg(r, tok, &seen_when, err, errlen) != 0)
            return -1;
    if (!seen_when)
        return ERR("DiagProcCapture %s: needs when=…", r->name);
    if ((r->path[0] || r->vhost[0]) && r->trigger != DP_CAP_AGE)
        return ERR("DiagProcCapture %s: path= and vhost= apply to request-age rules only",
                   r->name);
    if (r->nusers && r->trigger != DP_CAP_RSS && r->trigger != DP_CAP_CPU)
        return ERR("DiagProcCapture %s: users= applies to rss and cpu rules only", r->name);
    return 0;
}

int dp_spool_parse_quota(const char *bytes, const char *files, unsigned long long *qbytes,
                         long *qfiles, char *err, size_t errlen)
{
    unsigned long long f;
    size_t used;

    if (dp_cap_parse_size(bytes, strlen(bytes), qbytes) != 0 || *qbytes < 4096)
        return ERR("DiagProcSpool: bad size '%s' (bytes, or with K, M, G; at least 4K)", bytes);
    if (leading_number(files, strlen(files), &f, &used) != 0 || used != strlen(files)
        || f == 0 || f > 1000000)
        return ERR("DiagProcSpool: bad number of files '%s' (1 to 1000000)", files);
    *qfiles = (long)f;
    return 0;
}

/* --------------------------------------------------------------- limits */

long long dp_cap_cooldown_s(const dp_capture_rule *r)
{
    if (r->trigger == DP_CAP_STATUS && r->window_s > r->cooldown_s)
        return r->window_s;
    return r->cooldown_s;
}

static void expire(const dp_capture_rule *r, dp_cap_window *w, long long now)
{
    int i, k = 0;
    for (i = 0; i < w->n; i++)
        if (w->fires[i] > now - r->limit_window_s)
            w->fires[k++] = w->fires[i];
    w->n = k;
}

int dp_cap_may_fire(const dp_capture_rule *r, const dp_cap_window *w, long long now)
{
    dp_cap_window c = *w;
    long long cd = dp_cap_cooldown_s(r);

    if (w->last && cd > 0 && now - w->last < cd)
        return 0;
    expire(r, &c, now);
    return c.n < r->limit_count;
}

void dp_cap_fired(const dp_capture_rule *r, dp_cap_window *w, long long now)
{
    expire(r, w, now);
    if (w->n < DP_CAP_LIMIT_MAX)
        w->fires[w->n++] = now;
    w->last = now;
}

/* ------------------------------------------------------ status counters */

void dp_cap_count(uint64_t *row, uint32_t now_s)
{
    uint64_t *b = &row[now_s % DP_CAP_BUCKETS];
    uint64_t old = __atomic_load_n(b, __ATOMIC_RELAXED), nv;

    do {
        if ((uint32_t)(old >> 32) == now_s)
            nv = old + 1;
        else
            nv = ((uint64_t)now_s << 32) | 1;
    } while (!__atomic_compare_exchange_n(b, &old, nv, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

uint64_t dp_cap_sum(const uint64_t *row, uint32_t now_s, uint32_t window_s, uint32_t after)
{
    uint64_t sum = 0;
    uint32_t i;

    /* whole seconds: the current one and the window's before it (a look once
       a second sees each second complete at least once) */
    if (window_s >= DP_CAP_BUCKETS)
        window_s = DP_CAP_BUCKETS - 1;
    for (i = 0; i <= window_s && i <= now_s; i++) {
        uint32_t sec = now_s - i;
        uint64_t v = __atomic_load_n(&row[sec % DP_CAP_BUCKETS], __ATOMIC_RELAXED);
        if (sec <= after)
            break;
        if ((uint32_t)(v >> 32) == sec)
            sum += (uint32_t)v;
    }
    return sum;
}

int dp_cap_name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > DP_CAP_ID_MAX || s[0] == '.')
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}
