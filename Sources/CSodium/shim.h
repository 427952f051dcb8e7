#ifndef VALISE_CSODIUM_SHIM_H
#define VALISE_CSODIUM_SHIM_H
#include <sodium.h>
#endif
