/* The helper's request validation and frame encoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "common/proto.h"
#include "common/actions.h"
#include "common/dumptype.h"

static dp_request good(uint32_t op)
{
    dp_request rq;
    memset(&rq, 0, sizeof(rq));
    rq.magic = DP_PROTO_MAGIC;
    rq.version = DP_PROTO_VERSION;
    rq.op = op;
    rq.pid = 1234;
    if (op == DP_OP_PROC_READ)
        rq.what = DP_READ_ENVIRON;
    return rq;
}

static void expect_bad(dp_request rq, const char *why)
{
    char msg[256];
    assert_int_equal(dp_request_check(&rq, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, why));
}

static void test_valid_requests(void **state)
{
    char msg[256];
    dp_request rq;
    (void)state;
    rq = good(DP_OP_PROC_READ);
    assert_int_equal(dp_request_check(&rq, msg, sizeof(msg)), 0);
    rq = good(DP_OP_KILL);
    rq.delay_ms = 500;
    assert_int_equal(dp_request_check(&rq, msg, sizeof(msg)), 0);
    rq = good(DP_OP_DUMP);
    rq.what = 1;
    rq.dump_type = DP_DUMP_FULL_MEMORY | DP_DUMP_PRIVATE_RW_MEMORY;
    assert_int_equal(dp_request_check(&rq, msg, sizeof(msg)), 0);
    rq = good(DP_OP_STACKS);
    assert_int_equal(dp_request_check(&rq, msg, sizeof(msg)), 0);
}

static void test_every_field_is_checked(void **state)
{
    dp_request rq;
    (void)state;
    rq = good(DP_OP_KILL); rq.magic = 0;                 expect_bad(rq, "not a diagproc request");
    rq = good(DP_OP_KILL); rq.version = 1;               expect_bad(rq, "protocol version");
    rq = good(DP_OP_KILL); rq.allow_section = -2;        expect_bad(rq, "section numbers");
    rq = good(DP_OP_KILL); rq.pid = 0;                   expect_bad(rq, "pid");
    rq = good(DP_OP_KILL); rq.pid = 4194304;             expect_bad(rq, "pid");
    rq = good(DP_OP_KILL); rq.keep_running_tid = -1;     expect_bad(rq, "tid");
    rq = good(DP_OP_KILL); rq.what = 1;                  expect_bad(rq, "kill takes no item");
    rq = good(DP_OP_KILL); rq.delay_ms = 5001;           expect_bad(rq, "at most 5000");
    rq = good(DP_OP_PROC_READ); rq.what = DP_READ_PHP_REQUEST + 1; expect_bad(rq, "unknown /proc item");
    rq = good(DP_OP_PROC_READ); rq.delay_ms = 1;         expect_bad(rq, "only a kill");
    rq = good(DP_OP_DUMP); rq.what = DP_DUMP_RAW_ZSTD + 1; expect_bad(rq, "dump format");
    rq = good(DP_OP_DUMP); rq.dump_type = 0x2000000;     expect_bad(rq, "unsupported dumpType");
    rq = good(DP_OP_DUMP); rq.dump_type = DP_DUMP_VALID; rq.what = 1;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq = good(DP_OP_DUMP); rq.what = DP_DUMP_RAW_GZIP;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq = good(DP_OP_DUMP); rq.what = DP_DUMP_RAW_ZSTD;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq = good(DP_OP_PROC_READ); rq.what = DP_READ_MAPS;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq = good(DP_OP_PROC_READ); rq.what = DP_READ_BUILD_IDS;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq = good(DP_OP_PROC_READ); rq.what = DP_READ_PHP_REQUEST;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq = good(DP_OP_DUMP); rq.timeout_s = 100000;        expect_bad(rq, "too long");
    rq = good(DP_OP_STACKS); rq.dump_type = 2;           expect_bad(rq, "takes no item and no dumpType");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_SITE + 1;
    expect_bad(rq, "unknown profile operation");
    /* the site's profile names no process; every other operation one */
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_SITE; rq.dump_type = 99; rq.timeout_s = 5;
    expect_bad(rq, "names no pid");
    rq.pid = 0;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq.timeout_s = 0;                                    expect_bad(rq, "duration 0 s");
    rq.timeout_s = 301;                                  expect_bad(rq, "duration 301 s");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_RUN; rq.pid = 0;
    expect_bad(rq, "pid 0 is out of range");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_RUNNING;
    { char m[256]; assert_int_equal(dp_request_check(&rq, m, sizeof(m)), 0); }
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_RUNNING; rq.dump_type = 99;
    expect_bad(rq, "no rate and no duration");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_START;    expect_bad(rq, "rate 0 Hz");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_START; rq.dump_type = 1001;
    expect_bad(rq, "rate 1001 Hz");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_RUN; rq.dump_type = 99;
    expect_bad(rq, "duration 0 s");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_RUN; rq.dump_type = 99; rq.timeout_s = 301;
    expect_bad(rq, "duration 301 s");
    rq = good(DP_OP_PROFILE); rq.what = DP_PROF_START; rq.dump_type = 99; rq.timeout_s = 901;
    expect_bad(rq, "duration 901 s");
    rq = good(DP_OP_END);                                expect_bad(rq, "unknown operation");
    rq = good(0);                                        expect_bad(rq, "unknown operation");
    rq = good(77);                                       expect_bad(rq, "unknown operation");
    rq = good(DP_OP_KILL);
    memset(rq.instance, 'x', sizeof(rq.instance));       expect_bad(rq, "not terminated");
}

static void test_frames_round_trip_and_limits(void **state)
{
    int fds[2], type;
    uint32_t len;
    char buf[16];
    unsigned char bad[5] = { DP_FR_DATA, 0xff, 0xff, 0xff, 0x7f };
    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(dp_frame_write(fds[1], DP_FR_DATA, "ab", 2, "cde", 3), 0);
    assert_int_equal(dp_frame_read_header(fds[0], &type, &len), 0);
    assert_int_equal(type, DP_FR_DATA);
    assert_int_equal(len, 5);
    assert_int_equal(dp_read_full(fds[0], buf, len), 0);
    assert_memory_equal(buf, "abcde", 5);
    /* an oversized or unknown frame is refused, not trusted */
    assert_int_equal(dp_frame_write(fds[1], DP_FR_DATA, buf, DP_FRAME_MAX + 1, NULL, 0), -1);
    assert_int_equal(write(fds[1], bad, sizeof(bad)), 5);
    assert_int_equal(dp_frame_read_header(fds[0], &type, &len), -1);
    bad[0] = 99;
    bad[1] = bad[2] = bad[3] = bad[4] = 0;
    assert_int_equal(write(fds[1], bad, sizeof(bad)), 5);
    assert_int_equal(dp_frame_read_header(fds[0], &type, &len), -1);
    close(fds[1]);
    assert_int_equal(dp_frame_read_header(fds[0], &type, &len), -1);    /* EOF */
    close(fds[0]);
}

/* The ring's memfd travels with its frame; a frame read without expecting
 * one drops it instead of leaking it. */
static void test_frame_passes_fd(void **state)
{
    int fds[2], type, passed, pipefd[2];
    uint32_t len, slots[2] = { DP_RING_SLOTS, DP_RING_SLOT }, got[2];
    char c = 'x';
    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(dp_frame_write_fd(fds[1], DP_FR_RING, slots, sizeof(slots), pipefd[1]), 0);
    assert_int_equal(dp_frame_read_header_fd(fds[0], &type, &len, &passed), 0);
    assert_int_equal(type, DP_FR_RING);
    assert_int_equal(len, sizeof(slots));
    assert_int_equal(dp_read_full(fds[0], got, len), 0);
    assert_memory_equal(got, slots, sizeof(slots));
    assert_true(passed >= 0 && passed != pipefd[1]);
    assert_int_equal(write(passed, &c, 1), 1);          /* the same pipe */
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    close(passed);
    /* no fd expected: dp_frame_read_header closes it */
    assert_int_equal(dp_frame_write_fd(fds[1], DP_FR_RING, slots, sizeof(slots), pipefd[1]), 0);
    close(pipefd[1]);
    assert_int_equal(dp_frame_read_header(fds[0], &type, &len), 0);
    assert_int_equal(dp_read_full(fds[0], got, len), 0);
    assert_int_equal(read(pipefd[0], &c, 1), 0);       /* every write end is closed: EOF */
    close(pipefd[0]);
    close(fds[0]);
    close(fds[1]);
}

/* A frame larger than the socket's buffer arrives whole and in order. */
static void test_large_frame_arrives_whole(void **state)
{
    static char a[1000], b[DP_FRAME_MAX - 1000], got[DP_FRAME_MAX];
    int fds[2], type, status;
    uint32_t len;
    size_t i;
    pid_t writer;
    (void)state;
    for (i = 0; i < sizeof(a); i++)
        a[i] = (char)(i * 7);
    for (i = 0; i < sizeof(b); i++)
        b[i] = (char)(i * 13 + 1);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    writer = fork();
    if (writer == 0)
        _exit(dp_frame_write(fds[1], DP_FR_DATA, a, sizeof(a), b, sizeof(b)) == 0 ? 0 : 1);
    usleep(100 * 1000);         /* let the writer fill the socket first */
    assert_int_equal(dp_frame_read_header(fds[0], &type, &len), 0);
    assert_int_equal(len, DP_FRAME_MAX);
    assert_int_equal(dp_read_full(fds[0], got, len), 0);
    assert_memory_equal(got, a, sizeof(a));
    assert_memory_equal(got + sizeof(a), b, sizeof(b));
    assert_int_equal(waitpid(writer, &status, 0), writer);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
}

/* Each typed frame: its bytes on the wire are little-endian as documented,
 * and its reader gives the fields back; a payload of the wrong length is
 * refused. */
static void test_typed_frames(void **state)
{
    int sv[2], type;
    uint32_t len, status, mode, slots, size32, slot, n;
    uint64_t size;
    int64_t mtime;
    const char *text;
    size_t tn;
    unsigned char buf[256];
    (void)state;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(dp_frame_send_error(sv[1], 409, "zombie"), 0);
    assert_int_equal(dp_frame_read_header(sv[0], &type, &len), 0);
    assert_int_equal(type, DP_FR_ERROR);
    assert_int_equal(dp_read_full(sv[0], buf, len), 0);
    assert_memory_equal(buf, "\x99\x01\x00\x00zombie", 10);
    assert_int_equal(dp_frame_get_error(buf, len, &status, &text, &tn), 0);
    assert_int_equal(status, 409);
    assert_int_equal(tn, 6);
    assert_memory_equal(text, "zombie", 6);

    assert_int_equal(dp_frame_send_ok(sv[1], 0x0102030405060708ULL, "httpd"), 0);
    assert_int_equal(dp_frame_read_header(sv[0], &type, &len), 0);
    assert_int_equal(dp_read_full(sv[0], buf, len), 0);
    assert_memory_equal(buf, "\x08\x07\x06\x05\x04\x03\x02\x01httpd", 13);
    assert_int_equal(dp_frame_get_ok(buf, len, &size, &text, &tn), 0);
    assert_true(size == 0x0102030405060708ULL);
    assert_int_equal(tn, 5);

    assert_int_equal(dp_frame_send_entry(sv[1], -2, 0120777, "sysroot/lib"), 0);
    assert_int_equal(dp_frame_read_header(sv[0], &type, &len), 0);
    assert_int_equal(type, DP_FR_ENTRY);
    assert_int_equal(dp_read_full(sv[0], buf, len), 0);
    assert_memory_equal(buf, "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xa1\x00\x00", 12);
    assert_int_equal(dp_frame_get_entry(buf, len, &mtime, &mode, &text, &tn), 0);
    assert_true(mtime == -2);
    assert_int_equal(mode, 0120777);
    assert_int_equal(tn, strlen("sysroot/lib"));
    assert_int_equal(dp_frame_get_entry(buf, 11, &mtime, &mode, &text, &tn), -1);

    assert_int_equal(dp_frame_send_slot(sv[1], 3, 4096), 0);
    assert_int_equal(dp_frame_read_header(sv[0], &type, &len), 0);
    assert_int_equal(type, DP_FR_SLOT);
    assert_int_equal(dp_read_full(sv[0], buf, len), 0);
    assert_memory_equal(buf, "\x03\x00\x00\x00\x00\x10\x00\x00", 8);
    assert_int_equal(dp_frame_get_slot(buf, len, &slot, &n), 0);
    assert_int_equal(slot, 3);
    assert_int_equal(n, 4096);
    assert_int_equal(dp_frame_get_slot(buf, 7, &slot, &n), -1);
    assert_int_equal(dp_frame_get_ring(buf, 9, &slots, &size32), -1);
    assert_int_equal(dp_frame_get_ok(buf, 7, &size, &text, &tn), -1);
    assert_int_equal(dp_frame_get_error(buf, 3, &status, &text, &tn), -1);
    close(sv[0]);
    close(sv[1]);
}

/* The action table: one bit, one word each; the directive's words, the
 * audit names and the helper's needs all come from it. */
static void test_action_table(void **state)
{
    unsigned i, j, seen = 0;
    char words[128];
    dp_request rq;
    (void)state;

    assert_true(dp_nactions >= 5);
    for (i = 0; i < dp_nactions; i++) {
        unsigned b = dp_actions[i].bit;
        assert_true(b && !(b & (b - 1)) && !(seen & b));
        seen |= b;
        assert_ptr_equal(dp_action_by_word(dp_actions[i].word), &dp_actions[i]);
        assert_ptr_equal(dp_action_by_bit(b), &dp_actions[i]);
        for (j = 0; j < i; j++)
            assert_string_not_equal(dp_actions[i].word, dp_actions[j].word);
    }
    assert_ptr_equal(dp_action_by_word("KILL"), dp_action_by_bit(DP_ACT_KILL));
    assert_null(dp_action_by_word("none"));
    assert_string_equal(dp_action_words(DP_ACT_KILL | DP_ACT_STACKS, words, sizeof(words)),
                        "kill stacks");

    rq = good(DP_OP_DUMP);
    assert_int_equal(dp_actions_needed(&rq), DP_ACT_DUMP);
    rq.dump_type = DP_DUMP_FULL_MEMORY;
    assert_int_equal(dp_actions_needed(&rq), DP_ACT_DUMP | DP_ACT_FULLDUMP);
    rq = good(DP_OP_PROC_READ);
    assert_int_equal(dp_actions_needed(&rq), DP_ACT_ENVIRONMENT);
    rq.what = DP_READ_FDS;
    assert_int_equal(dp_actions_needed(&rq), 0);
    rq = good(DP_OP_KILL);
    assert_int_equal(dp_actions_needed(&rq), DP_ACT_KILL);
    rq = good(DP_OP_PROFILE);
    rq.what = DP_PROF_STOP;
    assert_int_equal(dp_actions_needed(&rq), DP_ACT_PROFILE);
    rq.what = DP_PROF_RUNNING;      /* the detail's is_profile_running */
    assert_int_equal(dp_actions_needed(&rq), 0);
    rq = good(DP_OP_STACKS);
    assert_int_equal(dp_actions_needed(&rq), DP_ACT_STACKS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),
        cmocka_unit_test(test_every_field_is_checked),
        cmocka_unit_test(test_frames_round_trip_and_limits),
        cmocka_unit_test(test_frame_passes_fd),
        cmocka_unit_test(test_large_frame_arrives_whole),
        cmocka_unit_test(test_typed_frames),
        cmocka_unit_test(test_action_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
