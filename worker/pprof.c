/* pprof's profile.proto, written by hand (field numbers from
 * github.com/google/pprof proto/profile.proto), gzip'd with zlib. A sample
 * per distinct stack: its location ids leaf first, values [samples, cpu
 * nanoseconds at the period], labels thread and runtime. One location per
 * distinct frame, with one line naming its function. */
#include <string.h>
#include <zlib.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "worker/profile.h"

void dp_pb_init(dp_pb *b, apr_pool_t *p)
{
    memset(b, 0, sizeof(*b));
    b->pool = p;
}

static void reserve(dp_pb *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        unsigned char *nb;
        while (cap < b->len + n)
            cap *= 2;
        nb = apr_palloc(b->pool, cap);
        if (b->len)
            memcpy(nb, b->buf, b->len);
        b->buf = nb;
        b->cap = cap;
    }
}

void dp_pb_varint(dp_pb *b, uint64_t v)
{
    reserve(b, 10);
    while (v >= 0x80) {
        b->buf[b->len++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b->buf[b->len++] = (unsigned char)v;
}

void dp_pb_uint(dp_pb *b, unsigned field, uint64_t v)
{
    dp_pb_varint(b, (uint64_t)field << 3);
    dp_pb_varint(b, v);
}

void dp_pb_bytes(dp_pb *b, unsigned field, const void *data, size_t len)
{
    dp_pb_varint(b, ((uint64_t)field << 3) | 2);
    dp_pb_varint(b, len);
    reserve(b, len);
    if (len)
        memcpy(b->buf + b->len, data, len);
    b->len += len;
}

static void pb_msg(dp_pb *b, unsigned field, const dp_pb *m)
{
    dp_pb_bytes(b, field, m->buf, m->len);
}

unsigned char *dp_gzip(const void *data, size_t len, apr_pool_t *p, size_t *outlen)
{
    z_stream z;
    uLong cap = compressBound((uLong)len) + 64;
    unsigned char *out = apr_palloc(p, cap);

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        return NULL;
    }
    *outlen = z.total_out;
    deflateEnd(&z);
    return out;
}

/* The string table: index per distinct string, "" first. */
typedef struct strtab {
    apr_hash_t *index;
    dp_pb *out;         /* the Profile message: string_table = 6 */
    uint64_t n;
} strtab;

static uint64_t str_id(strtab *t, const char *s)
{
    uint64_t *at = apr_hash_get(t->index, s, APR_HASH_KEY_STRING);
    if (at)
        return *at;
    at = apr_palloc(t->out->pool, sizeof(*at));
    *at = t->n++;
    apr_hash_set(t->index, s, APR_HASH_KEY_STRING, at);
    dp_pb_bytes(t->out, 6, s, strlen(s));
    return *at;
}

static void value_type(dp_pb *prof, unsigned field, strtab *t, const char *type,
                       const char *unit)
{
    dp_pb m;
    dp_pb_init(&m, prof->pool);
    dp_pb_uint(&m, 1, str_id(t, type));
    dp_pb_uint(&m, 2, str_id(t, unit));
    pb_msg(prof, field, &m);
}

/* The location id of a frame (a Function and a Location, added when new). */
static uint64_t location_of(dp_pb *prof, strtab *t, apr_hash_t *locs, const dp_prof_frame *f)
{
    apr_pool_t *p = prof->pool;
    char *key = apr_pstrcat(p, f->name, "\n", f->file ? f->file : "", NULL);
    uint64_t *id = apr_hash_get(locs, key, APR_HASH_KEY_STRING);
    dp_pb fn, loc, line;

    if (id)
        return *id;
    id = apr_palloc(p, sizeof(*id));
    *id = apr_hash_count(locs) + 1;
    apr_hash_set(locs, key, APR_HASH_KEY_STRING, id);
    dp_pb_init(&fn, p);
    dp_pb_uint(&fn, 1, *id);                            /* Function.id */
    dp_pb_uint(&fn, 2, str_id(t, f->name));             /* name */
    dp_pb_uint(&fn, 3, str_id(t, f->name));             /* system_name */
    dp_pb_uint(&fn, 4, str_id(t, f->file ? f->file : ""));  /* filename */
    pb_msg(prof, 5, &fn);
    dp_pb_init(&line, p);
    dp_pb_uint(&line, 1, *id);                          /* Line.function_id */
    dp_pb_init(&loc, p);
    dp_pb_uint(&loc, 1, *id);                           /* Location.id */
    pb_msg(&loc, 4, &line);                             /* line */
    pb_msg(prof, 4, &loc);
    return *id;
}

static void label(dp_pb *sample, strtab *t, const char *key, const char *str, int64_t num)
{
    dp_pb l;
    dp_pb_init(&l, sample->pool);
    dp_pb_uint(&l, 1, str_id(t, key));
    if (str)
        dp_pb_uint(&l, 2, str_id(t, str));
    else
        dp_pb_uint(&l, 3, (uint64_t)num);
    pb_msg(sample, 3, &l);
}

char *dp_profile_pprof(const dp_profile *pf, apr_pool_t *p, size_t *len)
{
    dp_pb prof, ids, vals, sample;
    strtab t = { apr_hash_make(p), &prof, 0 };
    apr_hash_t *locs = apr_hash_make(p);
    uint64_t period = 1000000000ull / (pf->hz ? pf->hz : 99);
    int i, j;

    dp_pb_init(&prof, p);
    str_id(&t, "");
    value_type(&prof, 1, &t, "samples", "count");       /* sample_type */
    value_type(&prof, 1, &t, "cpu", "nanoseconds");
    for (i = 0; i < pf->stacks->nelts; i++) {
        const dp_prof_stack *st = &APR_ARRAY_IDX(pf->stacks, i, dp_prof_stack);
        dp_pb_init(&ids, p);
        for (j = st->nframes - 1; j >= 0; j--)          /* leaf first */
            dp_pb_varint(&ids, location_of(&prof, &t, locs, &st->frames[j]));
        dp_pb_init(&vals, p);
        dp_pb_varint(&vals, st->count);
        dp_pb_varint(&vals, (uint64_t)st->count * period);
        dp_pb_init(&sample, p);
        dp_pb_bytes(&sample, 1, ids.buf, ids.len);      /* location_id, packed */
        dp_pb_bytes(&sample, 2, vals.buf, vals.len);    /* value, packed */
        label(&sample, &t, "pid", NULL, st->pid);
        label(&sample, &t, "thread", NULL, st->tid);
        label(&sample, &t, "runtime", st->runtime, 0);
        if (st->url)
            label(&sample, &t, "url", st->url, 0);
        if (st->vhost)
            label(&sample, &t, "vhost", st->vhost, 0);
        pb_msg(&prof, 2, &sample);
    }
    dp_pb_uint(&prof, 9, pf->start_us * 1000u);         /* time_nanos */
    dp_pb_uint(&prof, 10, pf->duration_us * 1000u);     /* duration_nanos */
    value_type(&prof, 11, &t, "cpu", "nanoseconds");    /* period_type */
    dp_pb_uint(&prof, 12, period);                      /* period */
    return (char *)dp_gzip(prof.buf, prof.len, p, len);
}
