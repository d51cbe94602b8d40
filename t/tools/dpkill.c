/* dpkill PID [START_TICKS]: the tree kill alone, for the tests (a wrong
 * start time stands for a pid that was reused since it was listed). */
#include <stdio.h>
#include <stdlib.h>
#include <apr_general.h>
#include "helper/kill.h"

int main(int argc, char **argv)
{
    dp_error err = { 0 };

    if (argc < 2)
        return 2;
    apr_initialize();
    if (dp_kill_tree((pid_t)atoi(argv[1]), argc > 2 ? strtoull(argv[2], NULL, 10) : 0, &err) != 0) {
        printf("%d %s\n", err.status, err.msg);
        return 1;
    }
    return 0;
}
