/* The helper's request protocol: one fixed-size, versioned request from the
 * worker (a struct in host byte order: both ends are one build on one
 * machine, and the version says which), answered by a stream of
 * length-prefixed frames whose fields are little-endian. Small on purpose:
 * the helper validates every field and trusts nothing else. */
#ifndef DP_PROTO_H
#define DP_PROTO_H

#include <stdint.h>
#include <stddef.h>
#include "common/actions.h"     /* enum dp_op */

#define DP_PROTO_MAGIC   0x31485044u     /* "DPH1" */
#define DP_PROTO_VERSION 3u
#define DP_SECRET_LEN 32     /* the per-generation secret every request carries */


/* what, for DP_OP_PROC_READ (the one set of codes, also used by the worker) */
/* DP_READ_BUILD_IDS: "start-end\0hex build id\0" for every mapped file's
 * first mapping, read from what is mapped (map_files), so that the module
 * route names the build id of the same file the bundle ships. */
/* DP_READ_WHERE: what each thread of the target waits on that is a
 * connection to another process or host, one line per socket:
 * "tid\ttransport\tlocal\tpeer\tpeer_pid\tpeer_uid\tpeer_comm\n" (transport
 * tcp, tcp6 or unix; local and peer "addr:port", "[v6addr]:port" or a
 * socket's path; peer_pid 0 = no process of this host holds the other end:
 * remote, with peer_uid -1 and peer_comm empty; a connection not accepted
 * yet names the holder of the listener it waits at). DP_READ_PHP_REQUEST: the request the PHP runtime of the
 * target is serving, from its own memory (SG(request_info)), without
 * stopping it: "method\0uri\0query\0script\0" (a field empty when unset;
 * all four empty when it serves no request). */
enum dp_priv { DP_READ_FDS = 1, DP_READ_EXE = 2, DP_READ_ENVIRON = 3, DP_READ_CWD = 4,
               DP_READ_MAPS = 5, DP_READ_BUILD_IDS = 6, DP_READ_WHERE = 7,
               DP_READ_PHP_REQUEST = 8 };

/* what, for DP_OP_DUMP: the format, and a raw core's Content-Encoding (the
 * helper compresses: its process runs at the dump's priority, and the ring
 * then carries the compressed bytes). OK's size stays the core's size. */
enum dp_dump_what { DP_DUMP_RAW = 0, DP_DUMP_ZIP = 1, DP_DUMP_RAW_GZIP = 2,
                    DP_DUMP_RAW_ZSTD = 3 };

/* what, for DP_OP_PROFILE. START leaves a sampler running (a session,
 * stopped after timeout_s, the maximum duration); STOP ends it and answers
 * its samples; RUN samples for timeout_s seconds and answers. dump_type
 * carries the rate in Hz (DP_PROF_HZ_MIN..MAX). The answer to STOP and RUN,
 * after OK: PROF_STACK records, one PROF_SUMMARY, END. RUNNING (no rate, no
 * duration, no action needed) answers OK with size 1 while a profile samples
 * pid, 0 otherwise, then END: the process detail's is_profile_running. SITE
 * (pid 0) samples every process httpd forked and every local backend they
 * are proxying to, together, for timeout_s seconds, and answers as RUN. */
enum dp_prof_what { DP_PROF_START = 1, DP_PROF_STOP = 2, DP_PROF_RUN = 3,
                    DP_PROF_RUNNING = 4, DP_PROF_SITE = 5 };
#define DP_PROF_HZ_MIN 1
#define DP_PROF_HZ_MAX 1000
#define DP_PROF_HZ_DEFAULT 99
/* DiagProcProfileLimits: its defaults, and the most it may allow */
#define DP_PROF_MAX_SECONDS 3600        /* a session's longest run: seconds= at most */
#define DP_PROF_DEF_SECONDS 900         /* ...by default (Kudu's 15 minutes) */
#define DP_PROF_RUN_MAX_SECONDS 300     /* the one-call profile's (and the site's) */
#define DP_PROF_SESSIONS 64             /* the table's entries: sessions= at most */
#define DP_PROF_DEF_SESSIONS 12         /* ...by default (Kudu's) */
#define DP_PROF_MIN_BYTES (64u * 1024)  /* a profile's store: memory= from... */
#define DP_PROF_MAX_BYTES_LIMIT (1024u * 1024 * 1024)   /* ...to */
#define DP_PROF_DEF_BYTES (64u * 1024 * 1024)           /* ...by default */
#define DP_PROF_MAX_FRAMES 128          /* per sample, root first; deeper ones are cut */
#define DP_PROF_NAME_MAX 512            /* a frame's name or file */
/* The abstract unix socket name a session's sampler listens on for its stop:
 * httpd parent pid, target pid, the session's random nonce (32 hex digits,
 * drawn when it starts: no one can bind the name before the sampler does).
 * Sessions themselves are found in the helper's table (helper/profile.c). */
#define DP_PROF_SOCK_FMT "diagproc-profile-%ld-%ld-%s"
#define DP_PROF_NONCE_HEX 32

/* what, for DP_OP_CAPTURES: the spool's listing (per capture one DATA frame:
 * "id\0" + its metadata JSON without the closing brace + "\0" + per artifact
 * "name\tsize\n"), one artifact's bytes (cap_id, cap_name), or the removal of
 * a capture (cap_id). */
enum dp_cap_what { DP_CAP_LIST = 0, DP_CAP_GET = 1, DP_CAP_DELETE = 2 };
#define DP_CAP_ARG_MAX 97       /* DP_CAP_ID_MAX + 1 (common/capture.h) */

typedef struct dp_request {
    uint32_t magic, version, op, what;      /* what: dp_priv, dp_dump_what or dp_prof_what */
    int32_t pid;
    int32_t keep_running_tid;               /* DUMP of the requesting worker itself */
    uint64_t start_time;                    /* KILL: the start time the worker saw; 0 = now */
    uint64_t dump_type;
    uint64_t max_bytes;                     /* 0 = no cap */
    uint32_t timeout_s;                     /* 0 = none */
    uint32_t delay_ms;                      /* KILL: accept now, kill after this (our own worker) */
    char instance[128];                     /* machine name for the bundle manifest */
    /* The configuration sections the request comes from, as numbered when
     * the configuration was read (-1 = none): the one whose DiagProcAllow
     * applies and the one whose DiagProcUsers does. The helper holds their
     * contents; it only believes the numbers. */
    int32_t allow_section, scope_section;
    unsigned char secret[DP_SECRET_LEN];
    /* DP_OP_CAPTURES: a capture's id and an artifact's name ("" = none):
     * [A-Za-z0-9._-], not starting with '.', NUL-terminated */
    char cap_id[DP_CAP_ARG_MAX], cap_name[DP_CAP_ARG_MAX];
} dp_request;

/* Frames: [type:1][length:4 little-endian][payload] */
enum dp_frame_type {
    DP_FR_ERROR = 1,        /* u32 status, then the message */
    DP_FR_OK = 2,           /* u64 size (UINT64_MAX = unknown), then the process name */
    DP_FR_ENTRY = 3,        /* i64 mtime, u32 mode, then the entry name */
    DP_FR_DATA = 4,         /* bytes */
    DP_FR_END = 5,          /* the answer is complete */
    DP_FR_RING = 6,         /* u32 slots, u32 slot size; the ring's memfd rides along
                               (SCM_RIGHTS): dump bytes come through shared memory */
    DP_FR_SLOT = 7,         /* u32 slot, u32 length: that many bytes in the ring slot; the
                               worker answers one byte once it has passed them on */
    /* The stacks answer, after OK: per thread a THREAD record, its NATIVE
     * frames innermost first, then its LANG frames innermost first; one
     * SUMMARY; END. Fields are written with dp_rec_put_* (below). */
    DP_FR_STACK_THREAD = 8, /* i32 tid, u32 flags (DP_ST_*), str why the walk stopped early */
    DP_FR_STACK_NATIVE = 9, /* u64 pc, u64 offset (DP_REC_NONE), i32 line (0 = unknown),
                               str function, str module, str file */
    DP_FR_STACK_LANG = 10,  /* u32 native index (the frame running it; DP_REC_NONE), i32 line
                               (0 = unknown), str function, str class, str file */
    DP_FR_STACK_SUMMARY = 11, /* u64 paused µs, u64 elapsed µs, u32 flags (DP_SS_*), str
                               runtime, str version, str why unsupported (absent = supported) */
    /* A profile (DP_OP_PROFILE): one record per distinct stack, then a summary. */
    DP_FR_PROF_STACK = 12,  /* u32 count, i32 tid, str runtime ("native", "PHP", "CPython"),
                               i32 pid, str url, str vhost (the request it served; absent =
                               not known), u32 frames, then per frame, root first: str name,
                               str file */
    DP_FR_PROF_SUMMARY = 13 /* u64 samples, u64 lost (could not be read), u64 duration µs,
                               u32 hz, u32 flags (DP_PS_*), u64 start (µs since the epoch) */
};
#define DP_PS_EXPIRED 1u        /* stopped on its own at the maximum duration */
#define DP_PS_EXITED  2u        /* the target exited */
#define DP_PS_FULL    4u        /* the sample store was full: later distinct stacks were lost */

#define DP_ST_TRUNCATED  1u     /* frame cap reached */
#define DP_ST_NOT_STOPPED 2u    /* could not be stopped: no frames */
#define DP_ST_RUNNING    4u     /* the serving thread: its stack as it was when it was taken */
#define DP_SS_TIME_CAP   1u     /* the time cap cut the walk short */
#define DP_SS_LANG       2u     /* an interpreter was found (runtime/version are set) */

/* A record's fields, little-endian; a string is u16 length + bytes, length
 * 0xffff = absent (JSON null). Reading past the end or a bad length marks
 * the reader bad and yields zeros / absent. */
#define DP_REC_NONE UINT64_MAX
#define DP_REC_STR_MAX 4096
typedef struct dp_rec {
    unsigned char buf[3 * (DP_REC_STR_MAX + 2) + 64];
    size_t len;
} dp_rec;
void dp_rec_put_u32(dp_rec *r, uint32_t v);
void dp_rec_put_u64(dp_rec *r, uint64_t v);
/* s may be NULL (absent); longer strings are cut at DP_REC_STR_MAX. */
void dp_rec_put_str(dp_rec *r, const char *s, size_t len);
void dp_rec_put_cstr(dp_rec *r, const char *s);

typedef struct dp_rec_reader {
    const unsigned char *p;
    size_t len, pos;
    int bad;
} dp_rec_reader;
uint32_t dp_rec_get_u32(dp_rec_reader *r);
uint64_t dp_rec_get_u64(dp_rec_reader *r);
/* Points into the record (not NUL-terminated): NULL when absent or bad. */
const char *dp_rec_get_str(dp_rec_reader *r, size_t *len);

/* A dump's bytes skip two copies through the socket: the helper fills a slot
 * of a sealed memfd both map, the worker hands the slot to httpd's filters
 * and acknowledges it; at most DP_RING_SLOTS slots are in flight. */
#define DP_RING_SLOTS 4
#define DP_RING_SLOT (512 * 1024)

#define DP_FRAME_MAX (256 * 1024)
#define DP_FRAME_HDR 5

/* Writes one frame (a header and up to two payload parts); 0, or -1 when the
 * peer is gone. */
int dp_frame_write(int fd, int type, const void *a, size_t alen, const void *b, size_t blen);
/* The same, with a file descriptor passed along (SCM_RIGHTS). */
int dp_frame_write_fd(int fd, int type, const void *a, size_t alen, int passfd);
/* Reads one frame header; 0, or -1 on EOF/error/oversized. */
int dp_frame_read_header(int fd, int *type, uint32_t *len);
/* The same, keeping a passed file descriptor in *passed (-1 if none). */
int dp_frame_read_header_fd(int fd, int *type, uint32_t *len, int *passed);
/* Reads exactly n bytes; 0, or -1. */
int dp_read_full(int fd, void *buf, size_t n);
int dp_write_full(int fd, const void *buf, size_t n);

/* The fixed frames, typed: each sender lays out its fields little-endian and
 * writes the frame; each reader checks the payload's length and reads the
 * fields back (0, or -1 when the payload is not of that frame). A trailing
 * text (a message, a name) is returned as a pointer into the payload and its
 * length, not NUL-terminated. */
int dp_frame_send_error(int fd, uint32_t status, const char *msg);
int dp_frame_send_ok(int fd, uint64_t size, const char *name);
int dp_frame_send_entry(int fd, int64_t mtime, uint32_t mode, const char *name);
int dp_frame_send_ring(int fd, uint32_t slots, uint32_t slot_size, int memfd);
int dp_frame_send_slot(int fd, uint32_t slot, uint32_t len);
int dp_frame_send_end(int fd);
int dp_frame_get_error(const void *payload, uint32_t len, uint32_t *status, const char **msg,
                 size_t *msglen);
int dp_frame_get_ok(const void *payload, uint32_t len, uint64_t *size, const char **name,
              size_t *namelen);
int dp_frame_get_entry(const void *payload, uint32_t len, int64_t *mtime, uint32_t *mode,
                 const char **name, size_t *namelen);
int dp_frame_get_ring(const void *payload, uint32_t len, uint32_t *slots, uint32_t *slot_size);
int dp_frame_get_slot(const void *payload, uint32_t len, uint32_t *slot, uint32_t *n);

/* Checks a request field by field: 0, or -1 with a message. */
int dp_request_check(const dp_request *rq, char *msg, size_t msglen);

#endif
