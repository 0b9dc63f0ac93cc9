/* CRCUMapProviderABI is a header: the functions it declares are implemented in
 * Swift (RCUMapProviders/CProviderBridge.swift, @_cdecl). SwiftPM needs one
 * source file per C target. */
#include "rcumaps_provider.h"
