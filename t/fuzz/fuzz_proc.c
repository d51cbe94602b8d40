/* libFuzzer harness: the /proc parsers on arbitrary bytes, never terminated
 * (the readers hand them a length, not a string), the socket ones included
 * (syscall, net/tcp and tcp6, epoll's fdinfo, fd links); the helper's
 * reading of a status text's groups (a string). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "proc/procfs.h"
#include "proc/sockets.h"
#include "helper/daemon.h"
#include "helper/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    apr_pool_t *p;
    char *copy = malloc(size ? size : 1), *term;
    dp_stat st;
    dp_status ss;
    dp_io io;
    dp_statm sm;

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    memcpy(copy, data, size);   /* an exact-size heap copy: ASan sees any read past it */
    dp_parse_stat(copy, size, &st);
    dp_parse_status(copy, size, &ss);
    dp_parse_io(copy, size, &io);
    dp_parse_maps(copy, size, p);
    dp_split_nul(copy, size, p);
    {
        apr_array_header_t *t = apr_array_make(p, 4, sizeof(dp_tcp_entry));
        dp_syscall sc;
        int fds[8], i;
        dp_parse_syscall(copy, size, &sc);
        dp_parse_tcp_table(copy, size, 4, 64, t);
        dp_parse_tcp_table(copy, size, 6, 64, t);
        for (i = 0; i < t->nelts; i++) {
            const dp_tcp_entry *e = &APR_ARRAY_IDX(t, i, dp_tcp_entry);
            char buf[80];
            dp_format_endpoint(e->family, e->raddr, e->rport, buf, sizeof(buf));
            dp_tcp_accepted(t, e);
            dp_tcp_peer(t, e);
        }
        dp_parse_epoll_tfds(copy, size, fds, 8);
        dp_socket_inode(copy, size);
    }
    free(copy);
    /* statm takes a string */
    term = malloc(size + 1);
    memcpy(term, data, size);
    term[size] = '\0';
    dp_parse_statm(term, &sm);
    {
        static const gid_t gids[] = { 1000, 27 };
        static const uid_t uids[] = { 1000 };
        static const dp_helper_section sec = { 0, 1, 0, uids, 1, gids, 2 };
        dp_helper_policy pol;
        memset(&pol, 0, sizeof(pol));
        pol.sections = &sec;
        pol.nsections = 1;
        pol.peer_gids = gids;
        pol.npeer_gids = 1;
        dp_policy_foreign_group(&pol, 0, &ss, term);
        dp_policy_foreign_group(&pol, -1, &ss, term);
    }
    free(term);
    apr_pool_destroy(p);
    return 0;
}
