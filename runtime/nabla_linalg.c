#include <math.h>
#include "nabla_runtime.h"

/* The functions themselves, with external linkage, for JIT kernels. */
#define NABLA_LINKAGE
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
