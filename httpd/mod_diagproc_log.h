/* The module's own log tags, one per call site ("DP00001: "), in the manner
 * of httpd's APLOGNO, whose numbers belong to httpd's registry. */
#ifndef MOD_DIAGPROC_LOG_H
#define MOD_DIAGPROC_LOG_H

#define DPLOGNO(n) "DP" #n ": "

#endif
