/* A profile's records kept, and written as collapsed stacks or in
 * speedscope's file format (https://www.speedscope.app/file-format-schema.json). */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "worker/profile.h"
#include "common/proto.h"

dp_profile *dp_profile_make(apr_pool_t *p)
{
    dp_profile *pf = apr_pcalloc(p, sizeof(*pf));
    pf->pool = p;
    pf->stacks = apr_array_make(p, 64, sizeof(dp_prof_stack));
    return pf;
}

static const char *get_str(dp_rec_reader *r, apr_pool_t *p)
{
    size_t n;
    const char *s = dp_rec_get_str(r, &n);
    return s ? apr_pstrndup(p, s, n) : NULL;
}

static int add_stack(dp_profile *pf, dp_rec_reader *r)
{
    dp_prof_stack *st = apr_array_push(pf->stacks);
    uint32_t i, n;

    st->count = dp_rec_get_u32(r);
    st->tid = (int32_t)dp_rec_get_u32(r);
    st->runtime = get_str(r, pf->pool);
    st->pid = (int32_t)dp_rec_get_u32(r);
    st->url = get_str(r, pf->pool);
    st->vhost = get_str(r, pf->pool);
    n = dp_rec_get_u32(r);
    if (r->bad || n > DP_PROF_MAX_FRAMES || !st->runtime)
        return -1;
    st->nframes = (int)n;
    st->frames = apr_pcalloc(pf->pool, sizeof(dp_prof_frame) * (n ? n : 1));
    for (i = 0; i < n; i++) {
        st->frames[i].name = get_str(r, pf->pool);
        st->frames[i].file = get_str(r, pf->pool);
        if (!st->frames[i].name)
            st->frames[i].name = "?";
    }
    return r->bad || r->pos != r->len ? -1 : 0;
}

int dp_profile_add(dp_profile *pf, int type, const void *payload, size_t len)
{
    dp_rec_reader r = { payload, len, 0, 0 };

    if (pf->complete)
        return -1;
    if (type == DP_FR_PROF_STACK)
        return add_stack(pf, &r);
    if (type != DP_FR_PROF_SUMMARY)
        return -1;
    pf->samples = dp_rec_get_u64(&r);
    pf->lost = dp_rec_get_u64(&r);
    pf->duration_us = dp_rec_get_u64(&r);
    pf->hz = dp_rec_get_u32(&r);
    pf->flags = dp_rec_get_u32(&r);
    pf->start_us = dp_rec_get_u64(&r);
    if (r.bad || r.pos != r.len)
        return -1;
    pf->complete = 1;
    return 0;
}

const char *dp_profile_url_frame(const dp_prof_stack *st, apr_pool_t *p)
{
    if (!st->url)
        return NULL;
    return apr_pstrcat(p, "[url ", st->vhost ? st->vhost : "-", " ", st->url, "]", NULL);
}

/* ------------------------------------------------------------ folded */

static char *folded_frame(const dp_prof_frame *f, apr_pool_t *p)
{
    char *s = f->file ? apr_pstrcat(p, f->name, " (", f->file, ")", NULL)
                      : apr_pstrdup(p, f->name), *c;
    for (c = s; *c; c++)
        if (*c == ';' || *c == '\n' || *c == '\r')
            *c = *c == ';' ? ':' : ' ';
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *dp_profile_folded(const dp_profile *pf, apr_pool_t *p, size_t *len)
{
    apr_hash_t *lines = apr_hash_make(p);
    apr_hash_index_t *hi;
    apr_array_header_t *out = apr_array_make(p, 64, sizeof(char *));
    char *text;
    int i, j;

    for (i = 0; i < pf->stacks->nelts; i++) {
        const dp_prof_stack *st = &APR_ARRAY_IDX(pf->stacks, i, dp_prof_stack);
        char *line = "";
        uint64_t *c;
        const char *url = dp_profile_url_frame(st, p);
        if (st->nframes == 0)
            continue;
        if (url)
            line = apr_pstrcat(p, folded_frame(&(dp_prof_frame){ url, NULL }, p), ";", NULL);
        for (j = 0; j < st->nframes; j++)
            line = apr_pstrcat(p, line, j ? ";" : "", folded_frame(&st->frames[j], p), NULL);
        if (!(c = apr_hash_get(lines, line, APR_HASH_KEY_STRING))) {
            c = apr_pcalloc(p, sizeof(*c));
            apr_hash_set(lines, line, APR_HASH_KEY_STRING, c);
        }
        *c += st->count;
    }
    for (hi = apr_hash_first(p, lines); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        apr_hash_this(hi, &k, NULL, &v);
        APR_ARRAY_PUSH(out, char *) = apr_psprintf(p, "%s %" APR_UINT64_T_FMT "\n", (const char *)k,
                                                   (apr_uint64_t)*(uint64_t *)v);
    }
    qsort(out->elts, (size_t)out->nelts, sizeof(char *), cmp_str);
    APR_ARRAY_PUSH(out, char *) = NULL;
    text = apr_array_pstrcat(p, out, '\0');
    *len = strlen(text);
    return text;
}

/* ------------------------------------------------------------ speedscope */

static json_t *jstr(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_string("?");        /* not UTF-8: the helper's bytes as they are */
}

/* The index of a frame in shared.frames, added when new. */
static json_int_t frame_index(apr_hash_t *seen, json_t *frames, const dp_prof_frame *f,
                              apr_pool_t *p)
{
    char *key = apr_pstrcat(p, f->name, "\n", f->file ? f->file : "", NULL);
    json_int_t *at = apr_hash_get(seen, key, APR_HASH_KEY_STRING);
    json_t *o;

    if (at)
        return *at;
    at = apr_palloc(p, sizeof(*at));
    *at = (json_int_t)json_array_size(frames);
    apr_hash_set(seen, key, APR_HASH_KEY_STRING, at);
    o = json_object();
    json_object_set_new(o, "name", jstr(f->name));
    if (f->file)
        json_object_set_new(o, "file", jstr(f->file));
    json_array_append_new(frames, o);
    return *at;
}

static json_t *thread_profile(const dp_profile *pf, int32_t tid, const char *runtime)
{
    json_t *o = json_object();
    char name[96];

    snprintf(name, sizeof(name), "thread %d (%s)", (int)tid, runtime);
    json_object_set_new(o, "type", json_string("sampled"));
    json_object_set_new(o, "name", jstr(name));
    json_object_set_new(o, "unit", json_string("none"));
    json_object_set_new(o, "startValue", json_integer(0));
    json_object_set_new(o, "endValue", json_integer(0));
    json_object_set_new(o, "samples", json_array());
    json_object_set_new(o, "weights", json_array());
    (void)pf;
    return o;
}

char *dp_profile_speedscope(const dp_profile *pf, const char *title, apr_pool_t *p,
                            size_t *len)
{
    json_t *root = json_object(), *shared = json_object(), *frames = json_array();
    json_t *profiles = json_array();
    apr_hash_t *seen = apr_hash_make(p), *by_thread = apr_hash_make(p);
    char *text, *out;
    int i, j;

    for (i = 0; i < pf->stacks->nelts; i++) {
        const dp_prof_stack *st = &APR_ARRAY_IDX(pf->stacks, i, dp_prof_stack);
        char *key = apr_psprintf(p, "%d %s", (int)st->tid, st->runtime);
        json_t *prof = apr_hash_get(by_thread, key, APR_HASH_KEY_STRING), *sample = json_array();
        if (!prof) {
            prof = thread_profile(pf, st->tid, st->runtime);
            json_array_append_new(profiles, prof);
            apr_hash_set(by_thread, key, APR_HASH_KEY_STRING, prof);
        }
        const char *url = dp_profile_url_frame(st, p);
        if (url)
            json_array_append_new(sample, json_integer(frame_index(
                seen, frames, &(dp_prof_frame){ url, NULL }, p)));
        for (j = 0; j < st->nframes; j++)
            json_array_append_new(sample, json_integer(frame_index(seen, frames,
                                                                   &st->frames[j], p)));
        json_array_append_new(json_object_get(prof, "samples"), sample);
        json_array_append_new(json_object_get(prof, "weights"), json_integer(st->count));
        json_object_set_new(prof, "endValue", json_integer(
            json_integer_value(json_object_get(prof, "endValue")) + st->count));
    }
    json_object_set_new(root, "$schema",
                        json_string("https://www.speedscope.app/file-format-schema.json"));
    json_object_set_new(shared, "frames", frames);
    json_object_set_new(root, "shared", shared);
    json_object_set_new(root, "profiles", profiles);
    json_object_set_new(root, "name", jstr(title));
    json_object_set_new(root, "activeProfileIndex", json_integer(0));
    json_object_set_new(root, "exporter", json_string("mod_diagproc"));
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return NULL;
    out = apr_pstrdup(p, text);
    free(text);
    *len = strlen(out);
    return out;
}
