#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "common/proto.h"
#include "common/capture.h"
#include "common/dumptype.h"

int dp_write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int dp_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* header, a, b in one sendmsg when the socket takes them (and the fd with
 * the first byte); the rest with plain writes. */
static int send_frame(int fd, int type, const void *a, size_t alen, const void *b, size_t blen,
                      int passfd)
{
    unsigned char hdr[DP_FRAME_HDR];
    uint32_t len = (uint32_t)(alen + blen);
    struct iovec iov[3] = { { hdr, sizeof(hdr) }, { (void *)a, alen }, { (void *)b, blen } };
    union { struct cmsghdr c; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
    struct msghdr mh;
    size_t done;
    ssize_t k;
    int i;

    if (alen + blen > DP_FRAME_MAX)
        return -1;
    hdr[0] = (unsigned char)type;
    hdr[1] = (unsigned char)len;
    hdr[2] = (unsigned char)(len >> 8);
    hdr[3] = (unsigned char)(len >> 16);
    hdr[4] = (unsigned char)(len >> 24);
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = 3;
    if (passfd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        ctl.c.cmsg_level = SOL_SOCKET;
        ctl.c.cmsg_type = SCM_RIGHTS;
        ctl.c.cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(&ctl.c), &passfd, sizeof(int));
    }
    do
        k = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    if (k <= 0)
        return -1;
    /* what the socket did not take at once */
    for (done = (size_t)k, i = 0; i < 3; i++) {
        size_t skip = done < iov[i].iov_len ? done : iov[i].iov_len;
        done -= skip;
        if (skip < iov[i].iov_len
            && dp_write_full(fd, (char *)iov[i].iov_base + skip, iov[i].iov_len - skip) != 0)
            return -1;
    }
    return 0;
}

int dp_frame_write(int fd, int type, const void *a, size_t alen, const void *b, size_t blen)
{
    return send_frame(fd, type, a, alen, b, blen, -1);
}

int dp_frame_write_fd(int fd, int type, const void *a, size_t alen, int passfd)
{
    return send_frame(fd, type, a, alen, NULL, 0, passfd);
}

int dp_frame_read_header(int fd, int *type, uint32_t *len)
{
    int passed, rc = dp_frame_read_header_fd(fd, type, len, &passed);
    if (passed >= 0)
        close(passed);          /* not expected here */
    return rc;
}

int dp_frame_read_header_fd(int fd, int *type, uint32_t *len, int *passed)
{
    unsigned char hdr[DP_FRAME_HDR];
    struct iovec iov = { hdr, sizeof(hdr) };
    union { struct cmsghdr c; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
    struct msghdr mh;
    struct cmsghdr *c;
    ssize_t k;

    *passed = -1;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    do
        k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (k < 0 && errno == EINTR);
    for (c = k > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
            && c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(passed, CMSG_DATA(c), sizeof(int));
    if (k <= 0 || ((size_t)k < sizeof(hdr) && dp_read_full(fd, hdr + k, sizeof(hdr) - (size_t)k) != 0))
        goto bad;
    *type = hdr[0];
    *len = (uint32_t)hdr[1] | (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3] << 16
           | (uint32_t)hdr[4] << 24;
    if (*type < DP_FR_ERROR || *type > DP_FR_PROF_SUMMARY || *len > DP_FRAME_MAX)
        goto bad;
    return 0;
bad:
    if (*passed >= 0)
        close(*passed);
    *passed = -1;
    return -1;
}

/* ------------------------------------------------------ typed frames */

static void le32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
}

static void le64(unsigned char *b, uint64_t v)
{
    le32(b, (uint32_t)v);
    le32(b + 4, (uint32_t)(v >> 32));
}

static uint32_t rd32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t rd64(const unsigned char *b)
{
    return (uint64_t)rd32(b) | (uint64_t)rd32(b + 4) << 32;
}

/* the fixed part and a text, which is cut to fit the frame */
static int send_fixed(int fd, int type, const unsigned char *fixed, size_t n, const char *text)
{
    size_t tn = text ? strlen(text) : 0;
    if (tn > DP_FRAME_MAX - n)
        tn = DP_FRAME_MAX - n;
    return dp_frame_write(fd, type, fixed, n, text, tn);
}

int dp_frame_send_error(int fd, uint32_t status, const char *msg)
{
    unsigned char b[4];
    le32(b, status);
    return send_fixed(fd, DP_FR_ERROR, b, sizeof(b), msg);
}

int dp_frame_send_ok(int fd, uint64_t size, const char *name)
{
    unsigned char b[8];
    le64(b, size);
    return send_fixed(fd, DP_FR_OK, b, sizeof(b), name);
}

int dp_frame_send_entry(int fd, int64_t mtime, uint32_t mode, const char *name)
{
    unsigned char b[12];
    le64(b, (uint64_t)mtime);
    le32(b + 8, mode);
    return send_fixed(fd, DP_FR_ENTRY, b, sizeof(b), name);
}

int dp_frame_send_ring(int fd, uint32_t slots, uint32_t slot_size, int memfd)
{
    unsigned char b[8];
    le32(b, slots);
    le32(b + 4, slot_size);
    return dp_frame_write_fd(fd, DP_FR_RING, b, sizeof(b), memfd);
}

int dp_frame_send_slot(int fd, uint32_t slot, uint32_t len)
{
    unsigned char b[8];
    le32(b, slot);
    le32(b + 4, len);
    return dp_frame_write(fd, DP_FR_SLOT, b, sizeof(b), NULL, 0);
}

int dp_frame_send_end(int fd)
{
    return dp_frame_write(fd, DP_FR_END, NULL, 0, NULL, 0);
}

static int tail(const unsigned char *p, uint32_t len, uint32_t fixed, const char **text,
                size_t *n)
{
    if (len < fixed)
        return -1;
    if (text)
        *text = (const char *)p + fixed;
    if (n)
        *n = len - fixed;
    return 0;
}

int dp_frame_get_error(const void *payload, uint32_t len, uint32_t *status, const char **msg,
                 size_t *msglen)
{
    if (tail(payload, len, 4, msg, msglen) != 0)
        return -1;
    *status = rd32(payload);
    return 0;
}

int dp_frame_get_ok(const void *payload, uint32_t len, uint64_t *size, const char **name,
              size_t *namelen)
{
    if (tail(payload, len, 8, name, namelen) != 0)
        return -1;
    *size = rd64(payload);
    return 0;
}

int dp_frame_get_entry(const void *payload, uint32_t len, int64_t *mtime, uint32_t *mode,
                 const char **name, size_t *namelen)
{
    const unsigned char *p = payload;
    if (tail(p, len, 12, name, namelen) != 0)
        return -1;
    *mtime = (int64_t)rd64(p);
    *mode = rd32(p + 8);
    return 0;
}

int dp_frame_get_ring(const void *payload, uint32_t len, uint32_t *slots, uint32_t *slot_size)
{
    const unsigned char *p = payload;
    if (len != 8)
        return -1;
    *slots = rd32(p);
    *slot_size = rd32(p + 4);
    return 0;
}

int dp_frame_get_slot(const void *payload, uint32_t len, uint32_t *slot, uint32_t *n)
{
    const unsigned char *p = payload;
    if (len != 8)
        return -1;
    *slot = rd32(p);
    *n = rd32(p + 4);
    return 0;
}

int dp_request_check(const dp_request *rq, char *msg, size_t msglen)
{
#define BAD(...) do { snprintf(msg, msglen, __VA_ARGS__); return -1; } while (0)
    if (rq->magic != DP_PROTO_MAGIC)
        BAD("not a diagproc request");
    if (rq->version != DP_PROTO_VERSION)
        BAD("protocol version %u is not %u", rq->version, DP_PROTO_VERSION);
    if (rq->op == DP_OP_PROFILE && rq->what == DP_PROF_SITE) {
        if (rq->pid != 0)
            BAD("a profile of the site names no pid");
    }
    else if (rq->op == DP_OP_CAPTURES ? rq->pid != 0 : (rq->pid <= 0 || rq->pid >= 4194304))
        BAD("pid %d is out of range", rq->pid);
    if (rq->keep_running_tid < 0 || rq->keep_running_tid >= 4194304)
        BAD("tid %d is out of range", rq->keep_running_tid);
    if (rq->allow_section < -1 || rq->scope_section < -1)
        BAD("section numbers must be -1 or more");
    if (memchr(rq->instance, '\0', sizeof(rq->instance)) == NULL)
        BAD("instance name is not terminated");
    if (rq->op != DP_OP_KILL && rq->delay_ms != 0)
        BAD("only a kill may be delayed");
    if (rq->delay_ms > 5000)
        BAD("a kill may be delayed by at most 5000 ms");
    switch (rq->op) {
    case DP_OP_PROC_READ:
        if (rq->what < DP_READ_FDS || rq->what > DP_READ_PHP_REQUEST)
            BAD("unknown /proc item %u", rq->what);
        break;
    case DP_OP_KILL:
        if (rq->what != 0)
            BAD("kill takes no item");
        break;
    case DP_OP_CAPTURES:
        if (rq->what > DP_CAP_DELETE)
            BAD("unknown captures item %u", rq->what);
        if (!memchr(rq->cap_id, '\0', sizeof(rq->cap_id))
            || !memchr(rq->cap_name, '\0', sizeof(rq->cap_name)))
            BAD("capture id or name is not terminated");
        if (rq->what == DP_CAP_LIST ? (rq->cap_id[0] || rq->cap_name[0])
            : (!dp_cap_name_ok(rq->cap_id)
               || (rq->what == DP_CAP_GET ? !dp_cap_name_ok(rq->cap_name) : rq->cap_name[0] != 0)))
            BAD("bad capture id or artifact name");
        if (rq->dump_type != 0)
            BAD("captures take no dumpType");
        break;
    case DP_OP_DUMP:
        if (rq->what > DP_DUMP_RAW_ZSTD)
            BAD("unknown dump format %u", rq->what);
        if (rq->dump_type & ~(uint64_t)DP_DUMP_SUPPORTED)
            BAD("unsupported dumpType bits 0x%llx", (unsigned long long)rq->dump_type);
        if (rq->timeout_s > 86400)
            BAD("timeout %u is too long", rq->timeout_s);
        break;
    case DP_OP_PROFILE:
        if (rq->what < DP_PROF_START || rq->what > DP_PROF_SITE)
            BAD("unknown profile operation %u", rq->what);
        if (rq->what == DP_PROF_RUNNING && (rq->dump_type != 0 || rq->timeout_s != 0))
            BAD("the running query takes no rate and no duration");
        if ((rq->what == DP_PROF_START || rq->what == DP_PROF_RUN || rq->what == DP_PROF_SITE)
            && (rq->dump_type < DP_PROF_HZ_MIN || rq->dump_type > DP_PROF_HZ_MAX))
            BAD("profile rate %llu Hz is out of range", (unsigned long long)rq->dump_type);
        if (rq->timeout_s > (rq->what == DP_PROF_START ? DP_PROF_MAX_SECONDS
                                                       : DP_PROF_RUN_MAX_SECONDS)
            || ((rq->what == DP_PROF_RUN || rq->what == DP_PROF_SITE) && rq->timeout_s == 0))
            BAD("profile duration %u s is out of range", rq->timeout_s);
        break;
    default:        /* the operations that take no item and no dumpType (stacks) */
        if (rq->op < 1 || rq->op >= DP_OP_END)
            BAD("unknown operation %u", rq->op);
        if (rq->what != 0 || rq->dump_type != 0)
            BAD("operation %u takes no item and no dumpType", rq->op);
    }
    return 0;
#undef BAD
}

/* ------------------------------------------------------------ records */

static void put(dp_rec *r, const void *v, size_t n)
{
    if (r->len + n <= sizeof(r->buf)) {
        memcpy(r->buf + r->len, v, n);
        r->len += n;
    }
}

void dp_rec_put_u32(dp_rec *r, uint32_t v)
{
    unsigned char b[4];
    le32(b, v);
    put(r, b, 4);
}

void dp_rec_put_u64(dp_rec *r, uint64_t v)
{
    dp_rec_put_u32(r, (uint32_t)v);
    dp_rec_put_u32(r, (uint32_t)(v >> 32));
}

void dp_rec_put_str(dp_rec *r, const char *s, size_t len)
{
    unsigned char b[2];
    if (!s) {
        b[0] = b[1] = 0xff;
        put(r, b, 2);
        return;
    }
    if (len > DP_REC_STR_MAX)
        len = DP_REC_STR_MAX;
    b[0] = (unsigned char)len;
    b[1] = (unsigned char)(len >> 8);
    put(r, b, 2);
    put(r, s, len);
}

void dp_rec_put_cstr(dp_rec *r, const char *s)
{
    dp_rec_put_str(r, s, s ? strlen(s) : 0);
}

static const unsigned char *take(dp_rec_reader *r, size_t n)
{
    const unsigned char *at = r->p + r->pos;
    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    r->pos += n;
    return at;
}

uint32_t dp_rec_get_u32(dp_rec_reader *r)
{
    const unsigned char *b = take(r, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
             : 0;
}

uint64_t dp_rec_get_u64(dp_rec_reader *r)
{
    uint64_t lo = dp_rec_get_u32(r);
    return lo | (uint64_t)dp_rec_get_u32(r) << 32;
}

const char *dp_rec_get_str(dp_rec_reader *r, size_t *len)
{
    const unsigned char *b = take(r, 2);
    size_t n;
    *len = 0;
    if (!b || (b[0] == 0xff && b[1] == 0xff))
        return NULL;
    n = (size_t)b[0] | (size_t)b[1] << 8;
    if (n > DP_REC_STR_MAX) {
        r->bad = 1;
        return NULL;
    }
    b = take(r, n);
    if (b)
        *len = n;
    return (const char *)b;
}
