/* libFuzzer harness: the helper protocol as both sides read it -- a request
 * checked field by field, then frames parsed from a socket, each payload
 * decoded as its type says (the typed readers of every fixed frame, the
 * stacks records' fields). */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/proto.h"

/* every reader on the payload, whatever the type said: none may read past len */
static void decode(int type, const char *buf, uint32_t len)
{
    uint32_t a, b;
    uint64_t size;
    int64_t mtime;
    const char *text;
    size_t n;
    dp_rec_reader rd = { (const unsigned char *)buf, len, 0, 0 };

    if (dp_frame_get_error(buf, len, &a, &text, &n) == 0 && n > len)
        __builtin_trap();
    if (dp_frame_get_ok(buf, len, &size, &text, &n) == 0 && n > len)
        __builtin_trap();
    if (dp_frame_get_entry(buf, len, &mtime, &a, &text, &n) == 0 && n + 12 != len)
        __builtin_trap();
    dp_frame_get_ring(buf, len, &a, &b);
    dp_frame_get_slot(buf, len, &a, &b);
    if (type >= DP_FR_STACK_THREAD) {
        while (!rd.bad && rd.pos < rd.len) {
            dp_rec_get_u32(&rd);
            dp_rec_get_u64(&rd);
            text = dp_rec_get_str(&rd, &n);
            if (text && (text < buf || text + n > buf + len))
                __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dp_request rq;
    char msg[256];
    int sv[2];

    memset(&rq, 0, sizeof(rq));
    memcpy(&rq, data, size < sizeof(rq) ? size : sizeof(rq));
    if (size >= 8 && data[0] & 1) {     /* reach past the magic and version checks */
        rq.magic = DP_PROTO_MAGIC;
        rq.version = DP_PROTO_VERSION;
    }
    dp_request_check(&rq, msg, sizeof(msg));

    /* the same bytes as an answer stream: headers, payloads, EOF anywhere */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    if (size <= 65536 && dp_write_full(sv[1], data, size) == 0) {
        static char buf[DP_FRAME_MAX];
        int type, passed;
        uint32_t len;
        shutdown(sv[1], SHUT_WR);
        while (dp_frame_read_header_fd(sv[0], &type, &len, &passed) == 0) {
            if (passed >= 0)
                close(passed);
            if (len > sizeof(buf) || dp_read_full(sv[0], buf, len) != 0)
                break;
            decode(type, buf, len);
        }
    }
    close(sv[0]);
    close(sv[1]);
    return 0;
}
