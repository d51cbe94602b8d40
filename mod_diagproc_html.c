/* HTML rendering of the list and the detail. Every string comes from a
 * process (anyone can name a process "<script>"), so everything is escaped
 * and a Content-Security-Policy forbids scripts outright. */

#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "mod_diagproc.h"
#include "mod_diagproc_html.h"

int dp_wants_html(request_rec *r)
{
    const char *view = apr_table_get(dp_query(r), "view");
    const char *accept = apr_table_get(r->headers_in, "Accept");

    if (view)
        return !strcmp(view, "html");
    /* browsers send "text/html,..." first; JSON clients send any-type or application/json */
    return accept && !strncmp(accept, "text/html", 9);
}

static const char *esc(request_rec *r, const char *s)
{
    return ap_escape_html2(r->pool, s ? s : "", 1);
}

static const char *value_text(request_rec *r, json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_null(v))
        return "—";
    {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        const char *out = apr_pstrdup(r->pool, s ? s : "");
        free(s);
        return out;
    }
}

static void page_start(request_rec *r, const char *title)
{
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
                   "form-action 'none'; frame-ancestors 'none'; base-uri 'none'");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rvputs(r, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<title>", esc(r, title), "</title><style>"
              "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"
              "table{border-collapse:collapse}td,th{padding:.2em .7em;text-align:left;"
              "border-bottom:1px solid #ddd;vertical-align:top}th{background:#f3f3f3}"
              "td.n{text-align:right;font-variant-numeric:tabular-nums}"
              "code{white-space:pre-wrap;word-break:break-all}"
              "</style></head><body>\n<h1>", esc(r, title), "</h1>\n", NULL);
}

static int page_end(request_rec *r)
{
    ap_rputs("</body></html>\n", r);
    return DONE;
}

int dp_html_list(request_rec *r, json_t *list)
{
    size_t i;
    json_t *e;

    page_start(r, "Processes");
    ap_rprintf(r, "<p>%" APR_SIZE_T_FMT " processes. <a href=\"?view=json\">JSON</a></p>\n<table>"
               "<tr><th>id</th><th>name</th><th>user</th><th>state</th><th>threads</th>"
               "<th>working set</th><th>CPU time</th><th>started</th></tr>\n",
               json_array_size(list));
    json_array_foreach(list, i, e) {
        ap_rvputs(r, "<tr><td class=n>", value_text(r, json_object_get(e, "id")),
                  "</td><td><a href=\"", esc(r, json_string_value(json_object_get(e, "href"))),
                  "?view=html\">", esc(r, json_string_value(json_object_get(e, "name"))),
                  "</a></td><td>", esc(r, json_string_value(json_object_get(e, "user_name"))),
                  "</td><td>", esc(r, json_string_value(json_object_get(e, "state"))),
                  "</td><td class=n>", value_text(r, json_object_get(e, "thread_count")),
                  "</td><td class=n>", value_text(r, json_object_get(e, "working_set")),
                  "</td><td>", esc(r, json_string_value(json_object_get(e, "total_cpu_time"))),
                  "</td><td>", esc(r, json_string_value(json_object_get(e, "start_time"))),
                  "</td></tr>\n", NULL);
    }
    ap_rputs("</table>\n", r);
    json_decref(list);
    return page_end(r);
}

int dp_html_detail(request_rec *r, json_t *o)
{
    const char *key;
    json_t *v;

    page_start(r, apr_psprintf(r->pool, "Process %s (%s)",
                               value_text(r, json_object_get(o, "id")),
                               json_string_value(json_object_get(o, "name"))));
    ap_rputs("<p><a href=\"?view=json\">JSON</a></p>\n<table>\n", r);
    json_object_foreach(o, key, v) {
        ap_rvputs(r, "<tr><th>", esc(r, key), "</th><td><code>", NULL);
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
                ap_rvputs(r, esc(r, value_text(r, e)), "\n", NULL);
        }
        else
            ap_rputs(esc(r, value_text(r, v)), r);
        ap_rputs("</code></td></tr>\n", r);
    }
    ap_rputs("</table>\n", r);
    json_decref(o);
    return page_end(r);
}

int dp_html_requests(request_rec *r, json_t *o)
{
    json_t *list = json_object_get(o, "requests"), *e;
    size_t i;

    page_start(r, "Requests in flight");
    ap_rprintf(r, "<p>%" APR_SIZE_T_FMT " requests, longest-running first%s. "
               "<a href=\"?view=json\">JSON</a></p>\n<table>"
               "<tr><th>seconds</th><th>process</th><th>thread</th><th>state</th>"
               "<th>client</th><th>vhost</th><th>method</th><th>URI</th></tr>\n",
               json_array_size(list), json_is_true(json_object_get(o, "extended_status"))
               ? "" : " (ExtendedStatus is off: states only)");
    json_array_foreach(list, i, e) {
        ap_rvputs(r, "<tr><td class=n>", esc(r, value_text(r, json_object_get(e, "seconds"))),
                  "</td><td><a href=\"", esc(r, json_string_value(json_object_get(e, "process"))),
                  "?view=html\">", esc(r, value_text(r, json_object_get(e, "pid"))),
                  "</a></td><td class=n>", esc(r, value_text(r, json_object_get(e, "tid"))),
                  "</td><td>", esc(r, value_text(r, json_object_get(e, "state"))),
                  "</td><td>", esc(r, value_text(r, json_object_get(e, "client"))),
                  "</td><td>", esc(r, value_text(r, json_object_get(e, "vhost"))),
                  "</td><td>", esc(r, value_text(r, json_object_get(e, "method"))),
                  "</td><td><code>", esc(r, value_text(r, json_object_get(e, "uri"))),
                  "</code></td></tr>\n", NULL);
    }
    ap_rputs("</table>\n", r);
    json_decref(o);
    return page_end(r);
}
