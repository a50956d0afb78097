#ifndef NABLA_CTCC_SHIM_H
#define NABLA_CTCC_SHIM_H
#include <libtcc.h>

/* TCC_RELOCATE_AUTO is a macro cast to a pointer, which Swift cannot import. */
static inline int nabla_tcc_relocate_auto(TCCState *s) {
    return tcc_relocate(s, TCC_RELOCATE_AUTO);
}
#endif
