/* The page a person reads in a browser: the same data as the JSON. */
#ifndef MOD_DIAGPROC_HTML_H
#define MOD_DIAGPROC_HTML_H

#include "httpd.h"
#include <jansson.h>

/* A browser asking for a page (Accept prefers text/html), or ?view=html. */
int dp_wants_html(request_rec *r);
/* Both take the JSON they render (and release it). */
int dp_html_list(request_rec *r, json_t *list);
int dp_html_detail(request_rec *r, json_t *detail);
/* GET P/requests */
int dp_html_requests(request_rec *r, json_t *requests);

#endif
