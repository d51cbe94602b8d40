/* The helper's operations, and the privileged actions, one row each: the
 * bit a configuration section grants, the DiagProcAllow word (also the audit
 * line's action), the helper operation that performs it, and what a 403
 * calls it. The worker's directive, page, route checks and audit lines, and
 * the helper's policy all read this one table: a new action is one row here
 * (and its operation above, when it needs a new one), its route and its
 * helper handler. */
#ifndef DP_ACTIONS_H
#define DP_ACTIONS_H

#include <stdint.h>

/* The helper's operations (dp_request.op). */
enum dp_op {
    DP_OP_PROC_READ = 1,    /* a private /proc file of a process */
    DP_OP_KILL = 2,         /* kill a process tree */
    DP_OP_DUMP = 3,         /* core (raw) or bundle (zip) */
    DP_OP_STACKS = 4,       /* backtraces of every thread: DP_FR_STACK_* records */
    DP_OP_PROFILE = 5,      /* sampled profiles: what = DP_PROF_* (common/proto.h) */
    DP_OP_CAPTURES = 6,     /* the capture spool: list, one artifact, delete (dp_cap_what) */
    DP_OP_END               /* one past the last: a new operation goes above */
};

struct dp_request;

/*        id           bit    word           helper op         subject of a 403 */
#define DP_ACTION_ROWS(X) \
    X(KILL,        0x01, "kill",        DP_OP_KILL,       "Killing processes") \
    X(DUMP,        0x02, "dump",        DP_OP_DUMP,       "Dumps") \
    X(FULLDUMP,    0x04, "fulldump",    DP_OP_DUMP,       "Dumps with more than the minimal memory") \
    X(ENVIRONMENT, 0x08, "environment", DP_OP_PROC_READ,  "Reading environments") \
    X(STACKS,      0x10, "stacks",      DP_OP_STACKS,     "Live stacks") \
    X(PROFILE,     0x20, "profile",     DP_OP_PROFILE,    "Profiling") \
    X(CAPTURES,    0x40, "captures",    DP_OP_CAPTURES,   "Captures")

enum {
#define DP_ACTION_BIT(id, bit, word, op, subject) DP_ACT_##id = bit,
    DP_ACTION_ROWS(DP_ACTION_BIT)
#undef DP_ACTION_BIT
};

typedef struct dp_action {
    unsigned bit;
    const char *word;
    unsigned op;                /* enum dp_op */
    const char *subject;
} dp_action;

extern const dp_action dp_actions[];
extern const unsigned dp_nactions;

/* The row of a DiagProcAllow word (any case) or of a bit; NULL when none. */
const dp_action *dp_action_by_word(const char *word);
const dp_action *dp_action_by_bit(unsigned bit);
/* "kill dump ...": the words of the bits set, space-separated, into buf. */
const char *dp_action_words(unsigned bits, char *buf, size_t cap);

/* The bits a helper request needs from its sections (0 for a read that any
 * section allows): its operation's actions, where a dump needs fulldump only
 * for the bits that add memory and a /proc read needs environment only for
 * the environment, and of the profile operations the running query (the
 * process detail's is_profile_running) needs none. */
unsigned dp_actions_needed(const struct dp_request *rq);

#endif
