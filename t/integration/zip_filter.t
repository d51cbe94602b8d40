# The DIAGPROC_ZIP output filter inside a real httpd, fed by a small test
# handler built here with apxs (the filter, the zip writer and that handler
# only): entries become a zip that unzip and zipfile accept, sent chunked
# without Content-Length; a FLUSH reaches the client before the handler
# finishes; an error bucket mid-stream, or zlib failing on a flush, leaves
# the directory out and the chunked body unterminated, so clients see the
# truncation.
import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
import zipfile

from tap import ok, is_, like, diag, done_testing

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
build = tempfile.mkdtemp(prefix="dp-zipf-")
os.chmod(build, 0o755)

HANDLER = r'''
#include <dlfcn.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_log.h"
#include "util_filter.h"
#include "apr_strings.h"
#include "httpd/mod_diagproc_zip.h"

/* ?zfail: zlib itself fails on the next sync flush. This deflate comes
 * before libz's in the module's lookup scope (httpd does not link zlib). */
static int fail_sync_flush;

int deflate(z_streamp strm, int flush)
{
    static int (*real)(z_streamp, int);
    if (!real)
        real = (int (*)(z_streamp, int))dlsym(RTLD_NEXT, "deflate");
    if (fail_sync_flush && flush == Z_SYNC_FLUSH)
        return Z_STREAM_ERROR;
    return real(strm, flush);
}

static apr_status_t put(request_rec *r, apr_bucket_brigade *bb, apr_bucket *b)
{
    apr_status_t rv;
    APR_BRIGADE_INSERT_TAIL(bb, b);
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    return rv;
}

static apr_status_t data(request_rec *r, apr_bucket_brigade *bb, const char *s, size_t n)
{
    return put(r, bb, apr_bucket_transient_create(s, n, r->connection->bucket_alloc));
}

static int handler(request_rec *r)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb;
    static char big[65536];
    const char *q = r->args ? r->args : "ok";
    int i;

    if (strcmp(r->handler, "diagproc"))
        return DECLINED;
    ap_set_content_type(r, "application/zip");
    /* a length the filter must remove: the zip's is different */
    ap_set_content_length(r, 12345);
    ap_add_output_filter("DIAGPROC_ZIP", NULL, r, r->connection);
    bb = apr_brigade_create(r->pool, ba);
    unsigned x = 1;
    /* noise (an LCG): deflate cannot shrink it, so bytes go out early */
    for (i = 0; i < (int)sizeof(big); i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (char)(x >> 16);
    }
    put(r, bb, dp_zip_entry_bucket_create("hello.txt", 1700000000, 0644, ba));
    data(r, bb, "hello, zip\n", 11);
    if (!strcmp(q, "early")) {
        put(r, bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, ba));
        put(r, bb, apr_bucket_eos_create(ba));
        return DONE;
    }
    if (!strcmp(q, "flush")) {
        put(r, bb, apr_bucket_flush_create(ba));
        sleep(2);
    }
    if (!strcmp(q, "zfail")) {
        apr_status_t rv;
        fail_sync_flush = 1;
        rv = put(r, bb, apr_bucket_flush_create(ba));
        fail_sync_flush = 0;
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ziptest: the failed flush answered %s",
                      rv == APR_SUCCESS ? "success" : "an error");
        if (rv != APR_SUCCESS)
            return DONE;
    }
    put(r, bb, dp_zip_entry_bucket_create("dir/big.bin", 1700000000, 0755, ba));
    for (i = 0; i < 48; i++)
        if (data(r, bb, big, sizeof(big)) != APR_SUCCESS)
            return DONE;
    if (!strcmp(q, "error")) {
        put(r, bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, ba));
        put(r, bb, apr_bucket_eos_create(ba));
        return DONE;
    }
    put(r, bb, dp_zip_entry_bucket_create("empty", 1700000000, 0600, ba));
    put(r, bb, apr_bucket_eos_create(ba));
    return OK;
}

static void hooks(apr_pool_t *p)
{
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
    dp_zip_filter_register(p);
}

AP_DECLARE_MODULE(diagproc) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, hooks
};
'''


def build_module():
    for rel in ("httpd/mod_diagproc_zip.c", "httpd/mod_diagproc_zip.h", "httpd/mod_diagproc_log.h", "worker/zip.c", "worker/zip_records.c", "worker/zip.h", "worker/zip_internal.h",
                "common/sink.h", "common/entries.h", "common/dp_error.c", "common/dp_error.h",
                "common/probe.c", "common/probe.h"):
        os.makedirs(os.path.join(build, os.path.dirname(rel)), exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), os.path.join(build, rel))
    with open(os.path.join(build, "mod_ziptest.c"), "w") as f:
        f.write(HANDLER)
    r = subprocess.run(["apxs", "-c", "-o", "mod_ziptest.la", "-Wc,-Wall", "-Wc,-Werror",
                        "-Wc,-I.", "-Wc,-std=gnu11", "mod_ziptest.c", "httpd/mod_diagproc_zip.c",
                        "worker/zip.c", "worker/zip_records.c", "common/dp_error.c", "common/probe.c",
                        "-lz", "-lzstd"],
                       cwd=build, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        diag(r.stdout.decode(errors="replace")[-3000:])
    return r.returncode == 0


def raw_get(port, query, timeout=30):
    """The whole response as bytes, and the arrival time of each read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET /z?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    t0, data, times = time.time(), b"", []
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
        times.append((time.time() - t0, len(data)))
    s.close()
    return data, times


def dechunk(body):
    out, complete = b"", False
    while body:
        line, _, rest = body.partition(b"\r\n")
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            complete = True
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out, complete


h = None
try:
    ok(build_module(), "the filter builds with apxs (-Wall -Werror)")
    os.environ["DP_MODULE"] = os.path.join(build, ".libs", "mod_ziptest.so")
    import dphttpd  # noqa: E402  (reads DP_MODULE)
    # the test module's failing flush, and the zip stream it makes abandon
    h = dphttpd.Httpd(locations={"/z": ""}, expect_log=["DP00021", "ziptest: the failed flush"]).start()

    data, _ = raw_get(h.port, "ok")
    head, _, body = data.partition(b"\r\n\r\n")
    head = head.decode(errors="replace").lower()
    like(head, r"^http/1.1 200", "200")
    like(head, r"transfer-encoding: chunked", "sent chunked")
    ok("content-length" not in head, "Content-Length removed")
    zbytes, complete = dechunk(body)
    ok(complete, "the chunked body is complete")
    with zipfile.ZipFile(io.BytesIO(zbytes)) as z:
        is_(z.testzip(), None, "zipfile accepts the filter's zip")
        is_(z.namelist(), ["hello.txt", "dir/big.bin", "empty"], "entries in order")
        is_(z.read("hello.txt"), b"hello, zip\n", "first entry's content")
        x, noise = 1, bytearray(65536)
        for i in range(65536):
            x = (x * 1103515245 + 12345) & 0xffffffff
            noise[i] = (x >> 16) & 0xff
        big = bytes(noise) * 48
        ok(z.read("dir/big.bin") == big, "3 MiB entry's content (48 buckets)")
        is_(z.getinfo("dir/big.bin").external_attr >> 16, 0o100755, "entry mode kept")
    path = os.path.join(build, "ok.zip")
    with open(path, "wb") as f:
        f.write(zbytes)
    is_(subprocess.call(["unzip", "-tq", path], stdout=subprocess.DEVNULL), 0,
        "unzip -t accepts it")

    data, times = raw_get(h.port, "flush")
    first = next((t for t, n in times if n > len(data.partition(b"\r\n\r\n")[0]) + 4), None)
    ok(first is not None and first < 1.5,
       f"FLUSH: the first entry reached the client before the handler went on ({first})")
    ok(times[-1][0] >= 1.9, "FLUSH: the rest came after the handler's pause")
    zbytes, complete = dechunk(data.partition(b"\r\n\r\n")[2])
    with zipfile.ZipFile(io.BytesIO(zbytes)) as z:
        is_(z.testzip(), None, "FLUSH: the zip is still valid (sync flush inside an entry)")

    # zlib failing on a flush: loud, at once, and the client sees the truncation
    data, _ = raw_get(h.port, "zfail")
    head, _, body = data.partition(b"\r\n\r\n")
    zbytes, complete = dechunk(body)
    ok(not complete, "zlib fails on a flush: the chunked body has no last chunk")
    ok(b"PK\x05\x06" not in zbytes and b"PK\x01\x02" not in zbytes, "…and no central directory")
    time.sleep(0.2)
    log = h.logs()
    like(log, r"ziptest: the failed flush answered an error", "…the handler's flush gets an error back")
    like(log, r"zip stream abandoned.*deflate failed", "…and the error log says zlib failed")

    data, _ = raw_get(h.port, "error")
    head, _, body = data.partition(b"\r\n\r\n")
    like(head.decode(errors="replace"), r"^HTTP/1.1 200", "error mid-stream: status was sent")
    zbytes, complete = dechunk(body)
    ok(not complete, "error mid-stream: the chunked body has no last chunk")
    ok(len(zbytes) > 100000, "error mid-stream: the entries so far were sent")
    ok(b"PK\x05\x06" not in zbytes and b"PK\x01\x02" not in zbytes,
       "error mid-stream: no central directory")
    path = os.path.join(build, "cut.zip")
    with open(path, "wb") as f:
        f.write(zbytes)
    ok(subprocess.call(["unzip", "-tq", path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL) != 0, "error mid-stream: unzip -t rejects it")
    try:
        zipfile.ZipFile(path)
        ok(False, "error mid-stream: zipfile rejects it")
    except zipfile.BadZipFile:
        ok(True, "error mid-stream: zipfile rejects it")

    # an error before any byte went out is still a proper error status
    data, _ = raw_get(h.port, "early")
    like(data.decode(errors="replace"), r"^HTTP/1.1 502",
         "error before the first byte: 502, nothing of the zip sent")
finally:
    if h:
        h.stop()
    shutil.rmtree(build, ignore_errors=True)

done_testing()
