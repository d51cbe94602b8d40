/* PHP frames of a stopped process: executor_globals.current_execute_data →
 * zend_execute_data chain, with the layout of the running version
 * (helper/lang.h). The top frame's line: Debian's HYBRID VM keeps the
 * current opline in r15 (and execute_data in r14) and writes EX(opline) only
 * at some points, so the register is used when it provably belongs to it. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* memmem */
#endif
#include <stdio.h>
#include <string.h>
#include <sys/user.h>
#include <apr_strings.h>

#include "helper/stacks.h"
#include "helper/lang.h"
#include "common/proto.h"

typedef struct php_walk {
    dp_lang_target *t;
    const dp_php_layout *l;
    uint64_t exec_lo, exec_hi;      /* execute_ex */
} php_walk;

static char *zstr(php_walk *w, uint64_t s)
{
    uint32_t type_info;
    uint64_t len;
    char *out;

    if (!s || dp_lang_read(w->t, s + w->l->str_type_info, &type_info, 4) != 0
        || (type_info & w->l->gc_type_mask) != w->l->is_string
        || dp_lang_read(w->t, s + w->l->str_len, &len, 8) != 0)
        return NULL;
    if (len > DP_REC_STR_MAX)
        len = DP_REC_STR_MAX;
    out = apr_palloc(w->t->pool, len + 1);
    if (dp_lang_read(w->t, s + w->l->str_val, out, len) != 0)
        return NULL;
    out[len] = '\0';
    return out;
}

const char *dp_php_build_id(dp_lang_target *t, const char *module)
{
    size_t size, n;
    const char *raw = dp_lang_file(t, module, &size), *at = raw, *end = raw + size;

    while (raw && (at = memmem(at, (size_t)(end - at), "API20", 5))) {
        for (n = 3; at + n < end && n < 32 && (at[n] >= '0' && at[n] <= '9'); n++)
            ;
        if (n == 11 && at + n < end && at[n] == ',') {
            size_t k = n;
            while (at + k < end && at[k] && k < 64)
                k++;
            return apr_pstrndup(t->pool, at, k);
        }
        at += 5;
    }
    return NULL;
}

/* The thread running PHP: the only one, or the one stopped inside
 * execute_ex with that execute_data in r14. */
static dp_stack_thread *php_thread(php_walk *w, uint64_t ex)
{
    dp_stacks *s = w->t->out;
    int i;

    if (s->threads->nelts == 1)
        return &APR_ARRAY_IDX(s->threads, 0, dp_stack_thread);
    for (i = 0; i < s->threads->nelts; i++) {
        dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        if (th->regs && th->regs->rip >= w->exec_lo && th->regs->rip < w->exec_hi
            && th->regs->r14 == ex)
            return th;
    }
    return NULL;
}

static void walk_frames(php_walk *w, dp_stack_thread *th, uint64_t ex)
{
    const dp_php_layout *l = w->l;
    uint32_t group = 0;
    int n, top = 1;

    for (n = 0; ex && n < DP_STACK_MAX_FRAMES; n++) {
        uint64_t func, opline, opcodes, scope, name, prev, file;
        uint32_t call_info, last;
        unsigned char type;
        dp_lang_frame *f;

        if (dp_lang_ptr(w->t, ex + l->ex_func, &func) != 0
            || dp_lang_ptr(w->t, ex + l->ex_prev, &prev) != 0
            || dp_lang_read(w->t, ex + l->ex_this_type_info, &call_info, 4) != 0) {
            th->why = "a PHP frame could not be read";
            return;
        }
        if (func) {
            if (dp_lang_read(w->t, func + l->fn_type, &type, 1) != 0
                || dp_lang_ptr(w->t, func + l->fn_name, &name) != 0
                || dp_lang_ptr(w->t, func + l->fn_scope, &scope) != 0) {
                th->why = "a PHP function could not be read";
                return;
            }
            if (!(f = dp_lang_push(th)))
                return;
            f->native_index = group;
            f->function = name ? zstr(w, name) : "{main}";
            if (scope && dp_lang_ptr(w->t, scope + l->ce_name, &name) == 0)
                f->class_name = zstr(w, name);
            if (type == l->user_function
                && dp_lang_ptr(w->t, func + l->op_filename, &file) == 0
                && dp_lang_ptr(w->t, func + l->op_opcodes, &opcodes) == 0
                && dp_lang_read(w->t, func + l->op_last, &last, 4) == 0
                && dp_lang_ptr(w->t, ex + l->ex_opline, &opline) == 0) {
                uint64_t end = opcodes + (uint64_t)last * l->opline_size;
                uint32_t lineno;
                f->file = zstr(w, file);
                if (top && th->regs && th->regs->rip >= w->exec_lo && th->regs->rip < w->exec_hi
                    && th->regs->r14 == ex && th->regs->r15 >= opcodes && th->regs->r15 < end)
                    opline = th->regs->r15;
                if (opline >= opcodes && opline < end
                    && dp_lang_read(w->t, opline + l->opline_lineno, &lineno, 4) == 0)
                    f->line = (int)lineno;
            }
            top = 0;
            if (type == l->user_function && (call_info & l->call_top))
                group++;    /* entered from C: the frames below run in an outer execute_ex */
        }
        ex = prev;
    }
    if (ex)
        th->flags |= DP_ST_TRUNCATED;
}

int dp_phpstack_walk(dp_lang_target *t)
{
    dp_stacks *s = t->out;
    uint64_t eg, eg_size, ex, lo, size;
    const char *module, *api;
    php_walk w;
    dp_stack_thread *th;

    if (dp_lang_symbol(t, DP_RUNTIME_PHP, "executor_globals", &eg, &eg_size, &module) != 0) {
        if (dp_lang_symbol(t, DP_RUNTIME_PHP, "zend_execute_ex", &lo, NULL, &module) != 0)
            return 0;
        s->flags |= DP_SS_LANG;
        s->runtime = "PHP";
        s->unsupported = "a thread-safe (ZTS) PHP build: its executor globals are per thread";
        return 1;
    }
    s->flags |= DP_SS_LANG;
    s->runtime = "PHP";
    memset(&w, 0, sizeof(w));
    w.t = t;
    if (!t->php_api) {
        /* a search of the object's whole file: once per view (a profile
         * walks the same target at every sample) */
        api = dp_php_build_id(t, module);
        t->php_api = api ? apr_pstrdup(t->keep, api) : "";
    }
    api = *t->php_api ? t->php_api : NULL;
    if (api && strlen(api) > 3 && !strcmp(api + strlen(api) - 3, ",TS")) {
        /* a thread-safe build that still exports the symbol: its globals
         * live per thread behind TSRM, not at that address */
        s->version = api;
        s->unsupported = apr_psprintf(t->pool, "a thread-safe (ZTS) PHP build (module API %s): "
                                      "its executor globals are per thread", api);
        return 1;
    }
    if (!(w.l = dp_php_layout_find(api))) {
        s->version = api;
        s->unsupported = apr_psprintf(t->pool, "PHP with module API %s has no layout table "
                                      "entry (known: %s)", api ? api : "(not found)",
                                      dp_php_layouts_known(t->pool));
        return 1;
    }
    s->version = w.l->version;
    if ((s->unsupported = dp_php_globals_refused(w.l, eg_size, module, t->pool)))
        return 1;
    if (dp_lang_symbol(t, DP_RUNTIME_PHP, "execute_ex", &lo, &size, NULL) == 0) {
        w.exec_lo = lo;
        w.exec_hi = lo + size;
    }
    s->runner = "execute_ex";
    if (dp_lang_ptr(t, eg + w.l->eg_current_execute_data, &ex) != 0 || !ex)
        return 1;
    if ((th = php_thread(&w, ex)))
        walk_frames(&w, th, ex);
    return 1;
}
