/*
 * CURCU: the system libraries RCUMaps is built on, as installed by Debian's
 * liburcu-dev and libnuma-dev. This module only names and links them; the
 * shims Swift needs live in CRCUMapsShim.
 *
 * The urcu flavour is "memb" (membarrier-based; see docs/architecture.md).
 * <urcu/urcu-memb.h> must come before <urcu/rculfhash.h>.
 */
#ifndef CURCU_H
#define CURCU_H
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>
#include <numa.h>
#endif
