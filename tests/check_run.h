/* Runs a Check suite and turns its result into an exit status. Apart from
 * test_util so that tests linking the static core (not libinorm) use it too. */
#ifndef INORM_CHECK_RUN_H
#define INORM_CHECK_RUN_H

#include <check.h>

/* EXIT_SUCCESS when every test of s passed. */
int tu_run(Suite *s);

#endif
