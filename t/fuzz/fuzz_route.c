/* libFuzzer harness: the worker's route splitting and matching and the
 * dumpType/format parsers, on any bytes a request line may carry. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "worker/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *patterns[] = { "", "{}", "{}/stop", "{}/dump", "{}/threads",
                                      "{}/threads/{}", "{}/modules/{}", "{}/environments/{}",
                                      "{}/stacks", "ui/{}" };
    static apr_pool_t *root;
    apr_pool_t *p;
    char *s = malloc(size + 1);
    const char *seg[8];
    unsigned long type;
    int n, i, zip;

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    memcpy(s, data, size);
    s[size] = '\0';
    n = dp_route_split(p, s, seg, 8);
    for (i = 0; n >= 0 && i < (int)(sizeof(patterns) / sizeof(patterns[0])); i++)
        dp_route_match(patterns[i], seg, n);
    dp_parse_dump_type(s, &type);
    dp_parse_dump_format(s, &zip);
    dp_pick_coding(s);
    free(s);
    apr_pool_destroy(p);
    return 0;
}
