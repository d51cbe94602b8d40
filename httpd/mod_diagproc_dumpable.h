/* httpd's children stay non-dumpable when httpd starts as root, whatever
 * CoreDumpDirectory says: a child its user may ptrace is the helper's peer
 * for any process of that user. */
#ifndef MOD_DIAGPROC_DUMPABLE_H
#define MOD_DIAGPROC_DUMPABLE_H

#include "httpd.h"

void dp_dumpable_register_hooks(apr_pool_t *p);

#endif
