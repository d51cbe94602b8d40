/* The bundle's gdb commands: helper/gdb/diagproc-lang.py with the layout
 * table this server walks with (both from helper/layouts.c). */
#include <string.h>
#include <apr_strings.h>
#include "helper/lang.h"
#include "helper/stacks.h"

const char *dp_lang_gdb_script(apr_pool_t *p)
{
    const char *mark = strstr(dp_lang_gdb_py, "# @LAYOUTS@\n");
    if (!mark)
        return dp_lang_gdb_py;
    return apr_pstrcat(p, apr_pstrndup(p, dp_lang_gdb_py, (apr_size_t)(mark - dp_lang_gdb_py)),
                       dp_lang_layouts_py, mark + strlen("# @LAYOUTS@\n"), NULL);
}
