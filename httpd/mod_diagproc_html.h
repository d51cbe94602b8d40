/* The process explorer a browser gets at the list and detail URLs. */
#ifndef MOD_DIAGPROC_HTML_H
#define MOD_DIAGPROC_HTML_H

#include "httpd.h"
#include <jansson.h>

/* A browser asking for a page (Accept ranks text/html above JSON), or
 * ?view=html. Adds "Vary: Accept" to the answer either way. */
int dp_wants_html(request_rec *r);
/* The explorer's page (the same for the list, the requests and every detail URL). */
int dp_html_page(request_rec *r);
/* GET P/ui/{file}: its script and style. */
int dp_route_ui(request_rec *r, const char **seg);

#endif
