#include <string.h>
#include "common/slots.h"

#define TERMINATE(a) ((a)[sizeof(a) - 1] = '\0')

void dp_slot_write_begin(dp_slot *e)
{
    uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&e->seq, seq | 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

void dp_slot_write_end(dp_slot *e)
{
    uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&e->seq, (seq | 1) + 1, __ATOMIC_RELEASE);
}

int dp_slot_copy(const dp_slot *e, dp_slot *out)
{
    int tries;

    for (tries = 0; tries < 3; tries++) {
        uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (seq & 1)
            continue;
        memcpy(out, (const void *)e, sizeof(*out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) == seq) {
            TERMINATE(out->uri);
            TERMINATE(out->vhost);
            TERMINATE(out->unique_id);
            TERMINATE(out->traceparent);
            TERMINATE(out->backend);
            return 0;
        }
    }
    return -1;
}

static int is_thread(const dp_slot *e, pid_t pid, pid_t tid)
{
    return __atomic_load_n(&e->tid, __ATOMIC_RELAXED) == tid
           && __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE) == pid;
}

int dp_slot_request_of(const dp_slot *slots, size_t n, pid_t pid, pid_t tid, int *hint,
                       char uri[DP_SLOT_URI], char vhost[64])
{
    dp_slot copy;
    size_t i;

    if (!slots || tid <= 0)
        return -1;
    if (*hint < 0 || (size_t)*hint >= n || !is_thread(&slots[*hint], pid, tid)) {
        for (i = 0; i < n && !is_thread(&slots[i], pid, tid); i++)
            ;
        if (i == n)
            return -1;
        *hint = (int)i;
    }
    if (dp_slot_copy(&slots[*hint], &copy) != 0 || !copy.serving || copy.req_pid != pid)
        return -1;
    memcpy(uri, copy.uri, DP_SLOT_URI);
    memcpy(vhost, copy.vhost, 64);
    return 0;
}
