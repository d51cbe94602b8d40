/* The table of profile sessions: DP_PROF_SESSIONS entries in shared memory
 * that the helper daemon maps (MAP_SHARED | MAP_ANONYMOUS) before it forks
 * any request child. Only the daemon's request children and their samplers
 * inherit it; nothing else can reach it (no name in any file system or
 * socket namespace, and the helper's processes are not dumpable: no process
 * of their user may ptrace them or open their memory or map_files). So no
 * local process can take, fake or block an entry.
 *
 * An entry is held by the process that samples (a session's sampler, or the
 * request child of a one-call profile), named by a holder word: its pid and
 * the low 32 bits of its start time (clock ticks since boot), so that a
 * reused pid is not taken for it. An entry whose holder is gone (no such
 * process, exiting, a zombie, another start time) is free: a SIGKILLed
 * sampler frees its entry by dying. Claims are serialised by a lock that is itself a
 * holder word (taken by compare-and-swap; a dead holder's lock is taken
 * over), held for a scan of the 12 entries and never across a system call
 * that waits. An entry's own state is written by its holder alone (atomic
 * stores); lookups read without the lock and check what they read. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "helper/profile.h"
#include "proc/procfs.h"
#include "common/clock.h"

typedef struct entry {
    _Atomic uint64_t holder;            /* 0: free */
    _Atomic int32_t target;
    _Atomic uint32_t state;             /* DP_PE_* */
    _Atomic int64_t owner;              /* the target's uid at the start, -1 unknown */
    _Atomic uint32_t listening;         /* the nonce is set, the sampler listens */
    _Atomic unsigned char nonce[DP_PROF_NONCE_HEX + 1];
} entry;

typedef struct table {
    _Atomic uint64_t lock;              /* a holder word; 0: free */
    entry e[DP_PROF_SESSIONS];
} table;

static table *tab;

#define LOCK_WAIT_MS 3000       /* a claim waits this long at most for the lock */

int dp_prof_table_init(void)
{
    void *m = mmap(NULL, sizeof(table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);

    if (m == MAP_FAILED)
        return -1;
    tab = m;                    /* zero-filled: every entry free, the lock free */
    return 0;
}

static uint64_t word_of(pid_t pid, unsigned long long starttime)
{
    return (uint64_t)(uint32_t)pid << 32 | (uint32_t)starttime;
}

/* This process's holder word (0 when its start time cannot be read). */
static uint64_t self_word(void)
{
    static pid_t cached_pid;
    static uint64_t cached;
    pid_t me = getpid();
    dp_stat st;

    if (cached_pid != me) {
        cached = dp_read_stat(me, 0, &st, NULL) == 0 ? word_of(me, st.starttime) : 0;
        cached_pid = me;
    }
    return cached;
}

/* 1 while the process a holder word names runs (or sleeps): not gone, not a
 * zombie, not exiting (an exiting process has let go of its memory first:
 * no vsize), and the same start time. */
static int alive(uint64_t word)
{
    dp_stat st;

    if (!word || dp_read_stat((pid_t)(word >> 32), 0, &st, NULL) != 0)
        return 0;
    return st.state != 'Z' && st.state != 'X' && st.vsize != 0
           && (uint32_t)st.starttime == (uint32_t)word;
}

static int lock_table(uint64_t me)
{
    uint64_t until = dp_mono_ms() + LOCK_WAIT_MS;
    struct timespec pause = { 0, 200 * 1000 };

    for (;;) {
        uint64_t cur = 0;
        if (atomic_compare_exchange_strong(&tab->lock, &cur, me))
            return 0;
        /* its holder died while it held it: take it over */
        if (!alive(cur) && atomic_compare_exchange_strong(&tab->lock, &cur, me))
            return 0;
        if (dp_mono_ms() >= until)
            return -1;
        nanosleep(&pause, NULL);
    }
}

static void unlock_table(uint64_t me)
{
    atomic_compare_exchange_strong(&tab->lock, &me, 0);
}

int dp_prof_claim(pid_t target, long owner, int limit, dp_error *err)
{
    uint64_t me = self_word();
    int i, slot = -1, busy = 0, held = 0;

    if (!tab || !me)
        return dp_fail(err, 500, "The helper has no table of profiles.");
    if (lock_table(me) != 0)
        return dp_fail(err, 503, "The table of profiles stayed locked; try again shortly.");
    if (limit < 1 || limit > DP_PROF_SESSIONS)
        limit = DP_PROF_SESSIONS;
    for (i = 0; i < DP_PROF_SESSIONS; i++) {
        entry *e = &tab->e[i];
        uint64_t h = atomic_load(&e->holder);
        uint32_t st;
        if (h && !alive(h) && atomic_compare_exchange_strong(&e->holder, &h, 0))
            h = 0;                      /* its sampler is gone: the entry is free */
        if (!h) {
            if (slot < 0)
                slot = i;
            continue;
        }
        held++;
        st = atomic_load(&e->state);
        busy |= atomic_load(&e->target) == target && (st == DP_PE_SAMPLING || st == DP_PE_KEPT);
    }
    if (held >= limit)
        slot = -1;
    if (busy || slot < 0) {
        unlock_table(me);
        if (busy && !target)
            return dp_fail(err, 409, "A profile of the whole site is already running.");
        if (busy)
            return dp_fail(err, 409, "Profiling for process '%d' is already running.",
                           (int)target);
        return dp_fail(err, 503, "%d profiles are already running (the most this server "
                       "runs at once, DiagProcProfileLimits sessions=%d); stop one or try "
                       "again later.", limit, limit);
    }
    atomic_store(&tab->e[slot].target, target);
    atomic_store(&tab->e[slot].owner, owner);
    atomic_store(&tab->e[slot].listening, 0);
    atomic_store(&tab->e[slot].nonce[0], 0);
    atomic_store(&tab->e[slot].state, DP_PE_SAMPLING);
    atomic_store(&tab->e[slot].holder, me);        /* last: lookups see a whole entry */
    unlock_table(me);
    return slot;
}

/* The entry is ours: its holder word is this process's. */
static entry *own(int slot)
{
    if (!tab || slot < 0 || slot >= DP_PROF_SESSIONS)
        return NULL;
    return atomic_load(&tab->e[slot].holder) == self_word() ? &tab->e[slot] : NULL;
}

void dp_prof_set_state(int slot, unsigned state)
{
    entry *e = own(slot);

    if (!e)
        return;
    if (state != DP_PE_SAMPLING && state != DP_PE_KEPT)
        atomic_store(&e->listening, 0);         /* taken by a stop: no other finds it */
    atomic_store(&e->state, state);
}

void dp_prof_publish(int slot, const char *nonce)
{
    entry *e = own(slot);
    size_t i;

    if (!e)
        return;
    for (i = 0; i < DP_PROF_NONCE_HEX; i++)
        atomic_store(&e->nonce[i], (unsigned char)nonce[i]);
    atomic_store(&e->nonce[DP_PROF_NONCE_HEX], 0);
    atomic_store(&e->listening, 1);
}

void dp_prof_release(int slot)
{
    entry *e = own(slot);

    if (!e)
        return;
    atomic_store(&e->listening, 0);
    atomic_store(&e->state, DP_PE_FREE);
    atomic_store(&e->holder, 0);
}

/* The live entry of target whose state is in mask (1 << DP_PE_*), or -1;
 * its holder word in *word. */
static int find(pid_t target, unsigned mask, uint64_t *word)
{
    int i;

    for (i = 0; tab && i < DP_PROF_SESSIONS; i++) {
        entry *e = &tab->e[i];
        uint64_t h = atomic_load(&e->holder);
        if (h && atomic_load(&e->target) == target
            && (mask & (1u << atomic_load(&e->state))) && alive(h)) {
            *word = h;
            return i;
        }
    }
    return -1;
}

int dp_prof_sampling(pid_t target)
{
    uint64_t h;
    return find(target, 1u << DP_PE_SAMPLING, &h) >= 0;
}

long dp_prof_owner(pid_t target)
{
    uint64_t h;
    int i = find(target, 1u << DP_PE_SAMPLING | 1u << DP_PE_KEPT, &h);
    long owner = i >= 0 ? (long)atomic_load(&tab->e[i].owner) : -1;

    /* the entry was not freed and taken again while it was read */
    return i >= 0 && atomic_load(&tab->e[i].holder) == h ? owner : -1;
}

int dp_prof_find_stop(pid_t target, pid_t *sampler, char nonce[DP_PROF_NONCE_HEX + 1])
{
    uint64_t h;
    int i = find(target, 1u << DP_PE_SAMPLING | 1u << DP_PE_KEPT, &h);
    size_t k;

    if (i < 0 || !atomic_load(&tab->e[i].listening))
        return -1;
    for (k = 0; k <= DP_PROF_NONCE_HEX; k++)
        nonce[k] = (char)atomic_load(&tab->e[i].nonce[k]);
    nonce[DP_PROF_NONCE_HEX] = '\0';
    /* the same session still holds it: what was read is its */
    if (atomic_load(&tab->e[i].holder) != h || !atomic_load(&tab->e[i].listening)
        || strlen(nonce) != DP_PROF_NONCE_HEX)
        return -1;
    *sampler = (pid_t)(h >> 32);
    return 0;
}
