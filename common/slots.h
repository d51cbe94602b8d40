/* The requests httpd's threads serve, as the module notes them in the page
 * the httpd parent shares with every process it forks (the workers write
 * it: httpd/mod_diagproc_scoreboard.c; the routes read it for P/requests,
 * the helper's profiles to label each sample with its request). One entry
 * per scoreboard slot. A worker writes it, so a reader takes from it
 * labels, never anything it acts on. */
#ifndef DP_SLOTS_H
#define DP_SLOTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Its kernel thread id (stored as the request is created) and what the
 * scoreboard cuts or leaves out (stored once the request's headers are
 * read, under seq: odd while the strings are being written). */
#define DP_SLOT_URI 256
typedef struct dp_slot {
    pid_t pid;                  /* the process that wrote tid: a new process in */
    pid_t tid;                  /* the slot makes an old entry void */
    uint32_t seq;
    pid_t req_pid;              /* the process and the slot's scoreboard access count */
    unsigned long req_count;    /* when the request below was stored: it is the one the
                                   scoreboard shows only while both are the same */
    uint32_t serving;           /* 1 from the headers read until the request is logged */
    char uri[DP_SLOT_URI];      /* unparsed, query included */
    char vhost[64], unique_id[32], traceparent[64];
    /* where mod_proxy sends it, when that is a process of this host:
     * "unix:PATH" or "tcp:PORT" (a loopback address); "" otherwise */
    char backend[112];
} dp_slot;

/* The writer's bracket around a change of the request's fields. */
void dp_slot_write_begin(dp_slot *e);
void dp_slot_write_end(dp_slot *e);
/* A consistent copy of e (strings terminated): 0, or -1 when a writer kept
 * changing it (three tries). */
int dp_slot_copy(const dp_slot *e, dp_slot *out);

/* The request thread tid of process pid is serving now, from slots[n]:
 * its URI and vhost into uri and vhost (terminated); 0, or -1 when no slot
 * names that thread or it serves none. *hint: the slot it was found in last
 * (tried first; -1 at the start). */
int dp_slot_request_of(const dp_slot *slots, size_t n, pid_t pid, pid_t tid, int *hint,
                       char uri[DP_SLOT_URI], char vhost[64]);

#endif
