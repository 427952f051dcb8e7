#ifndef VALISE_CSODIUM_SHIM_H
#define VALISE_CSODIUM_SHIM_H
#include <sodium.h>

#ifdef __linux__
#include <sys/prctl.h>
/* prctl is variadic, which Swift cannot call: this fixes its arguments. Marks the process
   non-dumpable (no core files, no ptrace by other processes of the user, /proc/PID/environ
   and mem readable by root only). */
static inline int valise_set_not_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }
#else
static inline int valise_set_not_dumpable(void) { return 0; }
#endif

#endif
