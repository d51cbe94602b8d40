/* The DIAGPROC_ZIP output filter: turns the dump handler's stream of entries
 * into a zip (worker/zip.c) on its way to the client.
 *
 * The handler adds the filter with
 *     ap_add_output_filter(DP_ZIP_FILTER, NULL, r, r->connection);
 * then, for every file of the bundle, sends an entry bucket
 * (dp_zip_entry_bucket_create) followed by that file's data buckets. FLUSH
 * buckets are honoured (the deflate stream is synced and passed on). EOS
 * ends the last entry and writes the central directory. An error bucket
 * (ap_bucket_error_create, use HTTP_BAD_GATEWAY) before EOS means the stream
 * failed: no central directory is written, the error bucket and EOS are passed
 * on, and HTTP/1.1 chunking then omits the last chunk, so clients see the
 * truncation and every zip reader rejects the file.
 *
 * The filter sits at AP_FTYPE_RESOURCE (before chunking), unsets
 * Content-Length and sets no-gzip. The deflate level is the writer's default,
 * or r->notes "diagproc-zip-level" ("0".."9") when the handler sets it. */
#ifndef MOD_DIAGPROC_ZIP_H
#define MOD_DIAGPROC_ZIP_H

#include "apr_buckets.h"

#define DP_ZIP_FILTER "DIAGPROC_ZIP"

/* Registers the filter; called from the module's register_hooks. */
void dp_zip_filter_register(apr_pool_t *p);

/* A metadata bucket starting a new entry (and ending the previous one).
 * name: path inside the zip ("core", "sysroot/usr/lib/..."), copied;
 * mtime: Unix seconds; mode: Unix permission bits (0644, 0755). */
apr_bucket *dp_zip_entry_bucket_create(const char *name, apr_int64_t mtime, unsigned mode,
                                       apr_bucket_alloc_t *list);

extern const apr_bucket_type_t dp_bucket_type_zip_entry;
#define DP_BUCKET_IS_ZIP_ENTRY(e) ((e)->type == &dp_bucket_type_zip_entry)

#endif
