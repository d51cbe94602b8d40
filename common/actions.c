#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "common/actions.h"
#include "common/proto.h"
#include "common/dumptype.h"

const dp_action dp_actions[] = {
#define DP_ACTION_ROW(id, bit, word, op, subject) { bit, word, op, subject },
    DP_ACTION_ROWS(DP_ACTION_ROW)
#undef DP_ACTION_ROW
};
const unsigned dp_nactions = sizeof(dp_actions) / sizeof(dp_actions[0]);

const dp_action *dp_action_by_word(const char *word)
{
    unsigned i;
    for (i = 0; i < dp_nactions; i++)
        if (!strcasecmp(word, dp_actions[i].word))
            return &dp_actions[i];
    return NULL;
}

const dp_action *dp_action_by_bit(unsigned bit)
{
    unsigned i;
    for (i = 0; i < dp_nactions; i++)
        if (dp_actions[i].bit == bit)
            return &dp_actions[i];
    return NULL;
}

const char *dp_action_words(unsigned bits, char *buf, size_t cap)
{
    size_t used = 0;
    unsigned i;

    if (cap)
        buf[0] = '\0';
    for (i = 0; i < dp_nactions; i++) {
        int k;
        if (!(bits & dp_actions[i].bit))
            continue;
        k = snprintf(buf + used, cap - used, "%s%s", used ? " " : "", dp_actions[i].word);
        if (k < 0 || (size_t)k >= cap - used)
            break;
        used += (size_t)k;
    }
    return buf;
}

/* An action is needed when the request's operation is the action's, with
 * two refinements: fulldump only for the dumpType bits that add memory, and
 * of the /proc reads only the environment needs an action at all. */
static int needs(const dp_action *a, const struct dp_request *rq)
{
    if (a->op != rq->op)
        return 0;
    if (a->bit == DP_ACT_FULLDUMP)
        return (rq->dump_type & DP_DUMP_NEEDS_FULLDUMP) != 0;
    if (a->op == DP_OP_PROC_READ)
        return rq->what == DP_READ_ENVIRON;
    if (a->op == DP_OP_PROFILE)
        return rq->what != DP_PROF_RUNNING;     /* the detail's is_profile_running */
    return 1;
}

unsigned dp_actions_needed(const struct dp_request *rq)
{
    unsigned i, bits = 0;
    for (i = 0; i < dp_nactions; i++)
        if (needs(&dp_actions[i], rq))
            bits |= dp_actions[i].bit;
    return bits;
}
