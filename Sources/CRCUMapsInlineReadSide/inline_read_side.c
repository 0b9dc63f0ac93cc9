/* CRCUMapsInlineReadSide has no out-of-line code: its fast path is the inline
 * functions of its header. SwiftPM needs one source file per C target. */
#include "CRCUMapsInlineReadSide.h"
