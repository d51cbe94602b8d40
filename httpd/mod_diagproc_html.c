/* The process explorer a person opens in a browser. The list and detail URLs
 * answer a browser with a small page that loads the explorer's script and
 * style from P/ui/ (compiled into the module from ui/, served with a strong
 * ETag); the script reads the same JSON API with fetch() from the same
 * origin. The server renders no process data into HTML at all: the script
 * inserts every string as text. Nothing runs on the server while nobody has
 * the page open. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "httpd.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_html.h"
#include "common/actions.h"
#include "ui_assets.h"

/* The q-value a media range of an Accept header gives to type/subtype:
 * the most specific range that matches; -1 when none does. explicit_only
 * ignores "* / *" and "type / *" (a browser names text/html itself). */
static double accept_q(const char *accept, const char *type, int explicit_only)
{
    const char *p = accept, *slash = strchr(type, '/');
    size_t tlen = (size_t)(slash - type);
    double best = -1;
    int best_rank = -1;

    while (*p) {
        const char *end = p + strcspn(p, ","), *semi;
        const char *rs, *re;
        double q = 1;
        int rank = -1;

        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        rs = p;
        semi = memchr(p, ';', (size_t)(end - p));
        re = semi ? semi : end;
        while (re > rs && (re[-1] == ' ' || re[-1] == '\t'))
            re--;
        if ((size_t)(re - rs) == strlen(type) && !strncasecmp(rs, type, strlen(type)))
            rank = 2;
        else if (!explicit_only && (size_t)(re - rs) == tlen + 2
                 && !strncasecmp(rs, type, tlen + 1) && rs[tlen + 1] == '*')
            rank = 1;
        else if (!explicit_only && re - rs == 3 && !strncmp(rs, "*/*", 3))
            rank = 0;
        for (semi = semi ? semi + 1 : end; semi < end; semi++) {
            while (semi < end && (*semi == ' ' || *semi == ';'))
                semi++;
            if (end - semi > 2 && (semi[0] == 'q' || semi[0] == 'Q') && semi[1] == '=') {
                q = strtod(semi + 2, NULL);
                break;
            }
        }
        if (rank > best_rank) {
            best_rank = rank;
            best = q;
        }
        p = *end ? end + 1 : end;
    }
    return best;
}

int dp_wants_html(request_rec *r)
{
    const char *view = apr_table_get(dp_query(r), "view");
    const char *accept = apr_table_get(r->headers_in, "Accept");
    double html, json;

    /* the answer depends on Accept: caches must keep the two apart */
    apr_table_mergen(r->headers_out, "Vary", "Accept");
    if (view)
        return !strcmp(view, "html");
    if (!accept)
        return 0;
    /* a browser names text/html and ranks it above what else it takes;
     * fetch(), curl and Kudu's client send * / * or application/json */
    html = accept_q(accept, "text/html", 1);
    json = accept_q(accept, "application/json", 0);
    return html > 0 && html > json;
}

/* What this Location lets the page offer, as words on the page's body:
 * the script shows a button only for what the server would allow. */
static const char *allowed_words(request_rec *r)
{
    char buf[128];
    return apr_pstrdup(r->pool, dp_action_words((unsigned)dp_dir_config(r)->allow, buf,
                                                sizeof(buf)));
}

/* Does ?allUsers=true show more than the workers' user's own processes? */
static int other_users_in_scope(request_rec *r)
{
    dp_dir_conf *c = dp_dir_config(r);
    int i;

    if (!c->uids)
        return 0;
    if (c->all_users)
        return 1;
    for (i = 0; i < c->uids->nelts; i++)
        if (APR_ARRAY_IDX(c->uids, i, uid_t) != geteuid())
            return 1;
    return 0;
}

static const char *esc(request_rec *r, const char *s)
{
    return ap_escape_html2(r->pool, s ? s : "", 1);
}

/* An asset's ETag without its quotes. */
static const char *version(request_rec *r, const char *etag)
{
    return apr_pstrmemdup(r->pool, etag + 1, strlen(etag) - 2);
}

int dp_html_page(request_rec *r)
{
    /* the prefix as the client wrote it; behind a trusted front, the front's */
    const char *base = dp_client_prefix(r);
    const char *ui = apr_pstrcat(r->pool, base, "/ui/", NULL);

    ap_set_content_type(r, "text/html; charset=utf-8");
    /* scripts and styles from this origin only, by file: no inline code */
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'self'; "
                   "connect-src 'self'; img-src 'self'; form-action 'none'; "
                   "frame-ancestors 'none'; base-uri 'none'");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return DONE;
    /* the ?v= makes a new build's files new URLs for any cache on the way */
    ap_rvputs(r, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
              "<title>Processes</title>\n"
              "<link rel=\"icon\" href=\"", esc(r, ui), "favicon.svg?v=",
              version(r, dp_ui_icon_etag), "\">\n"
              "<link rel=\"stylesheet\" href=\"", esc(r, ui), "explorer.css?v=",
              version(r, dp_ui_css_etag), "\">\n<script defer src=\"", esc(r, ui),
              "explorer.js?v=", version(r, dp_ui_js_etag), "\"></script>\n</head>\n"
              "<body data-base=\"", esc(r, base),
              "\" data-allow=\"", allowed_words(r), "\" data-all-users=\"",
              other_users_in_scope(r) ? "1" : "0", "\">\n"
              "<noscript><p>The process explorer needs JavaScript. The same data as JSON: "
              "<a href=\"?view=json\">this page</a>.</p></noscript>\n"
              "</body></html>\n", NULL);
    return DONE;
}

/* GET P/ui/{file}: the explorer's script and style. */
int dp_route_ui(request_rec *r, const char **seg)
{
    static const struct {
        const char *name, *type, *body, *etag;
        const size_t *len;
    } files[] = {
        { "explorer.js", "text/javascript; charset=utf-8", dp_ui_js, dp_ui_js_etag, &dp_ui_js_len },
        { "explorer.css", "text/css; charset=utf-8", dp_ui_css, dp_ui_css_etag, &dp_ui_css_len },
        { "favicon.svg", "image/svg+xml", dp_ui_icon, dp_ui_icon_etag, &dp_ui_icon_len },
    };
    size_t i;
    int rv;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (strcmp(seg[1], files[i].name))
            continue;
        ap_set_content_type(r, files[i].type);
        apr_table_setn(r->headers_out, "ETag", files[i].etag);
        apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
        apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
        if ((rv = ap_meets_conditions(r)) != OK) {
            /* an answer by status keeps err_headers_out only */
            apr_table_setn(r->err_headers_out, "ETag", files[i].etag);
            return rv;      /* 304 (or 412), without a body */
        }
        ap_set_content_length(r, (apr_off_t)*files[i].len);
        if (!r->header_only)
            ap_rwrite(files[i].body, (int)*files[i].len, r);
        return DONE;
    }
    return dp_send_error(r, HTTP_NOT_FOUND, "The explorer has no file '%s' (it has "
                         "explorer.js, explorer.css and favicon.svg).", seg[1]);
}

