/* A stream of named entries (files of a bundle). The zip writer implements it
 * over a dp_sink; the helper implements it as frames on its socket, which the
 * worker turns back into entry boundaries for the zip output filter. */
#ifndef DP_ENTRIES_H
#define DP_ENTRIES_H

#include "common/sink.h"

/* The mode of an entry that is a symbolic link; its data is the target. */
#define DP_ENTRY_SYMLINK 0120777u

typedef struct dp_entry_sink dp_entry_sink;
struct dp_entry_sink {
    /* Start an entry: path inside the bundle ("core", "sysroot/usr/lib/..."),
     * modification time (Unix seconds), Unix mode bits (0644, 0755), or
     * DP_ENTRY_SYMLINK. */
    int (*begin)(dp_entry_sink *s, const char *name, long long mtime, unsigned mode);
    /* Bytes of the current entry go through `data`. */
    dp_sink data;
    /* End the current entry. */
    int (*end)(dp_entry_sink *s);
    void *ctx;
};

#endif
