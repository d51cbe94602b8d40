/* P/requests as text: what an operator reads in a terminal, longest-running
 * first as the list is, each request's language frames under it. */

#include <string.h>
#include <apr_strings.h>

#include "worker/requests_text.h"

static const char *s_(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static apr_int64_t int_(json_t *o, const char *key)
{
    return (apr_int64_t)json_integer_value(json_object_get(o, key));
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* "Class::function  file:line" of a frame (a where object, or a language frame). */
static char *frame_text(apr_pool_t *p, json_t *f)
{
    const char *cls = s_(f, "class"), *fn = s_(f, "function"), *file = s_(f, "file");
    json_t *line = json_object_get(f, "line");
    char *out = apr_pstrcat(p, cls ? cls : "", cls ? "::" : "", or_dash(fn), NULL);

    if (file)
        out = json_is_integer(line)
            ? apr_psprintf(p, "%s  %s:%" APR_INT64_T_FMT, out, file, (apr_int64_t)json_integer_value(line))
            : apr_psprintf(p, "%s  %s", out, file);
    return out;
}

static char *backend_text(apr_pool_t *p, json_t *be)
{
    json_t *pid = json_object_get(be, "pid");
    char *out = apr_psprintf(p, "  backend: %s %s", or_dash(s_(be, "transport")),
                             or_dash(s_(be, "address")));

    if (json_is_true(json_object_get(be, "remote")))
        return apr_pstrcat(p, out, " (remote)\n", NULL);
    if (json_is_integer(pid))
        return apr_psprintf(p, "%s -> pid %" APR_INT64_T_FMT " (%s%s%s)\n", out,
                            (apr_int64_t)json_integer_value(pid), or_dash(s_(be, "user")),
                            s_(be, "name") ? ", " : "", s_(be, "name") ? s_(be, "name") : "");
    return apr_pstrcat(p, out, "\n", NULL);
}

static char *where_text(apr_pool_t *p, json_t *w)
{
    json_t *rt = json_object_get(w, "runtime"), *req = json_object_get(w, "request"), *f;
    json_t *lang = json_object_get(w, "languageFrames");
    char *out = apr_psprintf(p, "  where: pid %" APR_INT64_T_FMT,
                             int_(w, "pid"));
    size_t i;

    if (json_is_object(rt))
        out = apr_psprintf(p, "%s %s %s", out, or_dash(s_(rt, "name")), or_dash(s_(rt, "version")));
    if (s_(w, "error"))
        return apr_psprintf(p, "%s: %s\n", out, s_(w, "error"));
    if (s_(w, "function"))
        out = apr_pstrcat(p, out, "  ", frame_text(p, w), NULL);
    out = apr_pstrcat(p, out, "\n", NULL);
    if (json_is_object(req) && s_(req, "method") && *s_(req, "method"))
        out = apr_psprintf(p, "%s    runtime's request: %s %s%s%s  script %s\n", out,
                           s_(req, "method"), or_dash(s_(req, "uri")),
                           s_(req, "query") && *s_(req, "query") ? "?" : "",
                           s_(req, "query") ? s_(req, "query") : "", or_dash(s_(req, "script")));
    json_array_foreach(lang, i, f)
        out = apr_psprintf(p, "%s    #%u %s\n", out, (unsigned)i, frame_text(p, f));
    return out;
}

char *dp_requests_text(apr_pool_t *p, json_t *o)
{
    json_t *list = json_object_get(o, "requests"), *e;
    char *out = apr_psprintf(p, "%u requests in flight, longest-running first%s\n",
                             (unsigned)json_array_size(list),
                             json_is_true(json_object_get(o, "extended_status"))
                             ? "" : " (ExtendedStatus is off: states only)");
    size_t i;

    json_array_foreach(list, i, e) {
        json_t *secs = json_object_get(e, "seconds"), *w = json_object_get(e, "where");
        json_t *be = json_object_get(e, "backend");
        out = apr_psprintf(p, "%s\n%s %s  %s  %s  client %s  vhost %s  worker %"
                           APR_INT64_T_FMT " thread %" APR_INT64_T_FMT "\n", out,
                           or_dash(s_(e, "method")), or_dash(s_(e, "uri")),
                           json_is_number(secs) ? apr_psprintf(p, "%.1f s", json_number_value(secs))
                                                : "-",
                           or_dash(s_(e, "state")), or_dash(s_(e, "client")),
                           or_dash(s_(e, "vhost")),
                           int_(e, "pid"), int_(e, "tid"));
        if (s_(e, "unique_id") || s_(e, "traceparent"))
            out = apr_psprintf(p, "%s  unique_id %s  traceparent %s\n", out,
                               or_dash(s_(e, "unique_id")), or_dash(s_(e, "traceparent")));
        if (json_is_object(be))
            out = apr_pstrcat(p, out, backend_text(p, be), NULL);
        if (json_is_object(w))
            out = apr_pstrcat(p, out, where_text(p, w), NULL);
    }
    return out;
}
