/* dpstacks PID: the stacks collector alone (no httpd), its answer printed
 * one line per frame, for the tests and bench/.
 * dpstacks --gdb-script: the bundle's gdb commands with this build's layout
 * entries, as a dump's bundle ships them (diagproc-lang.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "helper/stacks.h"

int main(int argc, char **argv)
{
    dp_error err = { 0 };
    dp_stacks *s;
    apr_pool_t *p;
    int i, j;

    if (argc < 2)
        return 2;
    apr_initialize();
    apr_pool_create(&p, NULL);
    if (!strcmp(argv[1], "--gdb-script")) {
        fputs(dp_lang_gdb_script(p), stdout);
        return 0;
    }
    if (dp_stacks_collect((pid_t)atoi(argv[1]), 0, &s, p, &err) != 0) {
        printf("error %d %s\n", err.status, err.msg);
        return 1;
    }
    printf("paused_us %llu elapsed_us %llu runtime %s version %s unsupported %s\n",
           (unsigned long long)s->paused_us, (unsigned long long)s->elapsed_us,
           s->runtime ? s->runtime : "-", s->version ? s->version : "-",
           s->unsupported ? s->unsupported : "-");
    for (i = 0; i < s->threads->nelts; i++) {
        dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        printf("TID %d:%s%s\n", (int)th->tid, th->why ? " " : "", th->why ? th->why : "");
        for (j = 0; j < th->native->nelts; j++) {
            dp_native_frame *f = &APR_ARRAY_IDX(th->native, j, dp_native_frame);
            printf("#%-2d 0x%016llx %s - %s %s:%d\n", j, (unsigned long long)f->pc,
                   f->function ? f->function : "??", f->module ? f->module : "??",
                   f->file ? f->file : "", f->line);
        }
        for (j = 0; j < th->lang->nelts; j++) {
            dp_lang_frame *f = &APR_ARRAY_IDX(th->lang, j, dp_lang_frame);
            printf("  lang@%d %s%s%s %s:%d\n", (int)f->native_index,
                   f->class_name ? f->class_name : "", f->class_name ? "::" : "",
                   f->function ? f->function : "??", f->file ? f->file : "?", f->line);
        }
    }
    return 0;
}
