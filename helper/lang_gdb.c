/* The bundle's gdb commands: helper/gdb/diagproc-lang.py (embedded at build
 * time) with the layout entries this server walks with, written here as
 * Python dicts from the same C entries (dp_py_layouts, dp_php_layouts), so
 * that the live walk and the bundle's commands have one source of numbers. */
#include <stddef.h>
#include <string.h>
#include <apr_strings.h>
#include "helper/lang.h"
#include "helper/pydebug.h"
#include "helper/stacks.h"

#define MARK "# @LAYOUTS@\n"

typedef struct field {
    const char *name;
    size_t offset;
} field;

#define PY_FIELD(f) { #f, offsetof(dp_py_layout, f) },
#define PHP_FIELD(f) { #f, offsetof(dp_php_layout, f) },
static const field py_fields[] = { DP_PY_LAYOUT_FIELDS(PY_FIELD) };
static const field php_fields[] = { DP_PHP_LAYOUT_FIELDS(PHP_FIELD) };

/* A Python string literal: the entries' texts are the generators' (versions,
 * package names), but escape anything that could end the literal anyway. */
static const char *py_str(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) * 4 + 3), *o = out;

    *o++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            *o++ = '\\', *o++ = (char)c;
        else if (c < 0x20 || c >= 0x7f)
            o += apr_snprintf(o, 5, "\\x%02x", c);
        else
            *o++ = (char)c;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* VAR[key] = dict(text..., number fields...) */
static const char *py_dict(apr_pool_t *p, const char *var, const char *key, const char *texts,
                           const void *entry, const field *fields, size_t n)
{
    const char *out = apr_psprintf(p, "%s[%s] = dict(\n%s", var, py_str(p, key), texts);
    size_t i;

    for (i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, (const char *)entry + fields[i].offset, sizeof(v));
        out = apr_psprintf(p, "%s    %s=%u,\n", out, fields[i].name, v);
    }
    return apr_pstrcat(p, out, ")\n", NULL);
}

static const char *layouts_py(apr_pool_t *p)
{
    const char *out = dp_py_debug_shapes_py(p);
    size_t i;

    for (i = 0; i < dp_py_nlayouts; i++) {
        const dp_py_layout *l = dp_py_layouts[i];
        out = apr_pstrcat(p, out, py_dict(p, "PY_LAYOUTS", l->version,
                                          apr_psprintf(p, "    source=%s,\n", py_str(p, l->source)),
                                          l, py_fields, sizeof(py_fields) / sizeof(py_fields[0])),
                          NULL);
    }
    for (i = 0; i < dp_php_nlayouts; i++) {
        const dp_php_layout *l = dp_php_layouts[i];
        const char *texts = apr_psprintf(p, "    version=%s,\n    source=%s,\n",
                                         py_str(p, l->version), py_str(p, l->source));
        out = apr_pstrcat(p, out, py_dict(p, "PHP_LAYOUTS", l->api, texts, l, php_fields,
                                          sizeof(php_fields) / sizeof(php_fields[0])), NULL);
    }
    return out;
}

const char *dp_lang_gdb_script(apr_pool_t *p)
{
    const char *mark = strstr(dp_lang_gdb_py, MARK);

    if (!mark)
        return dp_lang_gdb_py;
    return apr_pstrcat(p, apr_pstrndup(p, dp_lang_gdb_py, (apr_size_t)(mark - dp_lang_gdb_py)),
                       layouts_py(p), mark + strlen(MARK), NULL);
}
