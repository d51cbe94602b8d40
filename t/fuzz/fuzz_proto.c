/* libFuzzer harness: the helper protocol as the helper reads it -- a request
 * checked field by field, then frames parsed from a socket. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/proto.h"

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
        }
    }
    close(sv[0]);
    close(sv[1]);
    return 0;
}
