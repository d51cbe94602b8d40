/* Turns the explorer's files into C constants, so the page is part of the
 * module and a server without internet (or without the source tree) serves
 * it. For each file: its bytes, its length and a strong ETag (64-bit FNV-1a
 * of the bytes: it changes whenever a byte does).
 *   embed OUT.h NAME=FILE...   */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int embed(FILE *out, const char *name, const char *path)
{
    FILE *in = fopen(path, "rb");
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t n = 0;
    int c;

    if (!in) {
        perror(path);
        return -1;
    }
    fprintf(out, "static const char dp_ui_%s[] = {", name);
    while ((c = getc(in)) != EOF) {
        h = (h ^ (unsigned char)c) * 0x100000001b3ULL;
        fprintf(out, "%s%d,", n % 24 ? "" : "\n    ", c);
        n++;
    }
    fclose(in);
    fprintf(out, "\n    0 };\n");
    fprintf(out, "static const size_t dp_ui_%s_len = %zu;\n", name, n);
    fprintf(out, "static const char dp_ui_%s_etag[] = \"\\\"%016llx\\\"\";\n\n", name,
            (unsigned long long)h);
    return 0;
}

int main(int argc, char **argv)
{
    FILE *out;
    int i, rc = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: embed OUT.h NAME=FILE...\n");
        return 2;
    }
    out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    fprintf(out, "/* generated from ui/ by ui/embed.c: do not edit */\n\n");
    for (i = 2; i < argc && rc == 0; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "embed: '%s' is not NAME=FILE\n", argv[i]);
            rc = 1;
            break;
        }
        *eq = '\0';
        rc = embed(out, argv[i], eq + 1) ? 1 : 0;
    }
    if (fclose(out) != 0 || rc) {
        remove(argv[1]);
        return 1;
    }
    return 0;
}
