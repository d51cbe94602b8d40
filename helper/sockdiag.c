/* AF_UNIX sockets through sock_diag (see sockdiag.h): the exact lookup of
 * one inode (its peer and name), and the dump of the listeners with their
 * queues (UDIAG_SHOW_ICONS: the inodes of the sockets whose connections
 * wait there), which is where a connect that no process accepted yet leads. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <apr_strings.h>

#include "helper/sockdiag.h"

#define UNIX_LISTEN_STATE 10        /* TCP_LISTEN, as unix sockets use it */

int dp_sockdiag_open(void)
{
    struct timeval tv = { 1, 0 };
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

    if (nl >= 0)
        setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return nl;
}

static int ask(int nl, unsigned long long inode, unsigned states, unsigned show, int dump)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } rq;
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

    memset(&rq, 0, sizeof(rq));
    rq.nlh.nlmsg_len = sizeof(rq);
    rq.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    rq.nlh.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
    rq.req.sdiag_family = AF_UNIX;
    rq.req.udiag_states = states;
    rq.req.udiag_ino = (uint32_t)inode;
    rq.req.udiag_show = show;
    rq.req.udiag_cookie[0] = rq.req.udiag_cookie[1] = ~0u;     /* no cookie */
    return sendto(nl, &rq, sizeof(rq), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -1 : 0;
}

static void copy_name(const struct rtattr *a, char *name, size_t cap)
{
    const char *s = RTA_DATA(a);
    size_t l = RTA_PAYLOAD(a), k = 0, i = 0;

    if (cap < 2)
        return;
    if (l > 0 && s[0] == '\0') {
        name[k++] = '@';
        i = 1;
    }
    for (; i < l && k < cap - 1 && s[i]; i++)
        name[k++] = s[i];
    name[k] = '\0';
}

int dp_unix_peer(int nl, unsigned long long inode, unsigned long long *peer, char *name,
                 size_t cap)
{
    union { struct nlmsghdr h; char b[8192]; } ans;
    struct nlmsghdr *h;
    ssize_t n;

    *peer = 0;
    if (cap)
        name[0] = '\0';
    if (ask(nl, inode, ~0u, UDIAG_SHOW_PEER | UDIAG_SHOW_NAME, 0) != 0
        || (n = recv(nl, &ans, sizeof(ans), 0)) <= 0)
        return -1;
    for (h = &ans.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        struct unix_diag_msg *m = NLMSG_DATA(h);
        struct rtattr *a;
        int alen;
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m))
            || m->udiag_ino != (uint32_t)inode)
            return -1;
        alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
        for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
            if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= 4)
                *peer = *(uint32_t *)RTA_DATA(a);
            else if (a->rta_type == UNIX_DIAG_NAME)
                copy_name(a, name, cap);
        }
        return 0;
    }
    return -1;
}

/* One listener of the dump: each inode of its queue mapped to it. */
static void add_listener(struct nlmsghdr *h, apr_hash_t *out, apr_hash_t *by_name,
                         apr_pool_t *p)
{
    struct unix_diag_msg *m = NLMSG_DATA(h);
    dp_unix_listener *l;
    struct rtattr *a;
    int alen;
    char name[256] = "";

    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
        return;
    l = apr_pcalloc(p, sizeof(*l));
    l->inode = m->udiag_ino;
    alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
    for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
        if (a->rta_type == UNIX_DIAG_NAME)
            copy_name(a, name, sizeof(name));
    l->name = apr_pstrdup(p, name);
    if (by_name && *name)
        apr_hash_set(by_name, l->name, APR_HASH_KEY_STRING, l);
    alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
    for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        const uint32_t *icons = RTA_DATA(a);
        size_t i;
        if (a->rta_type != UNIX_DIAG_ICONS)
            continue;
        for (i = 0; i < RTA_PAYLOAD(a) / 4; i++) {
            unsigned long long *key;
            if (!icons[i])
                continue;
            key = apr_palloc(p, sizeof(*key));
            *key = icons[i];
            apr_hash_set(out, key, sizeof(*key), l);
        }
    }
}

apr_hash_t *dp_unix_queues(int nl, size_t max, apr_hash_t *by_name, apr_pool_t *p)
{
    apr_hash_t *out = apr_hash_make(p);
    char *buf = apr_palloc(p, 32768);
    size_t seen = 0;

    if (ask(nl, 0, 1u << UNIX_LISTEN_STATE, UDIAG_SHOW_NAME | UDIAG_SHOW_ICONS, 1) != 0)
        return NULL;
    for (;;) {
        ssize_t n = recv(nl, buf, 32768, 0);
        struct nlmsghdr *h;
        if (n <= 0)
            return out;         /* cut short (the timeout): what was read */
        for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
                return out;
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && seen++ < max)
                add_listener(h, out, by_name, p);
        }
    }
}
