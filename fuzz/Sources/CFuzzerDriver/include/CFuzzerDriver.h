#ifndef NABLA_FUZZER_DRIVER_H
#define NABLA_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (from the -sanitize=fuzzer runtime): parses libFuzzer's flags from argv and
 * fuzzes `callback`. The harness's own main calls it, because SwiftPM links an executable's
 * entry point under a name of its own, so libFuzzer's main would never run. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
