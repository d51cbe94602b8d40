/* A capture's bundle as a zip file (helper/capture_zip.c): an entry sink
 * over a FILE, stored entries, zip64. */
#ifndef DP_CAPTURE_ZIP_H
#define DP_CAPTURE_ZIP_H

#include <stdio.h>
#include "common/entries.h"

typedef struct dp_capture_zip dp_capture_zip;

/* Fills sink so that the entries it is given go into f; NULL on no memory. */
dp_capture_zip *dp_capture_zip_open(FILE *f, dp_entry_sink *sink);
/* Writes the central directory and frees z: 0, or -1 when a write failed. */
int dp_capture_zip_finish(dp_capture_zip *z);

#endif
