#include <math.h>
#include "nabla_runtime.h"

/* The functions themselves, with external linkage, for JIT kernels, built for several
 * instruction sets (the loader picks the best the CPU has; no FMA, so rounding is unchanged). */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define NABLA_LINKAGE __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef NABLA_LINKAGE
#define NABLA_LINKAGE
#endif
#define NABLA_LINALG(...) __VA_ARGS__
#include "nabla_linalg_code.h"
#undef NABLA_LINALG

/* The same code as text, for standalone C. NABLA_LINKAGE stays in the text; the emitter
 * replaces it with `static`. */
#define NABLA_STRINGIFY(...) #__VA_ARGS__
#define NABLA_LINALG(...) NABLA_STRINGIFY(__VA_ARGS__)
#undef NABLA_LINKAGE
const char nabla_linalg_source[] =
#include "nabla_linalg_code.h"
;

const char *nabla_linalg_source_pointer(void) { return nabla_linalg_source; }
