/* Timing and evaluation driver for the hand-written benchmark problems.
 *
 *   bench_c time PROBLEM [NAME=VALUE ...] [--reps R] [--max-seconds S]
 *       times the value-and-derivative function and the forward-only function on inputs
 *       uniform in [-1, 1] (fixed seed; P8's parameters k in [1, 5], c in [0.1, 0.5]): warm-up, then R batches of k calls each (k chosen so a
 *       batch lasts at least ~50 us), per-call time = median over batches. Prints one JSON object.
 *   bench_c eval PROBLEM [NAME=VALUE ...] INPUT_FILE
 *       reads every input (whitespace-separated numbers, inputs in the graph file's declaration
 *       order, row-major), prints every output as JSON with the graph file's output names.
 *
 * PROBLEM is p1, p2, p2-hvp, p3, p4, p5, p5-chol or p8 (p5-chol is p5 under the name of the
 * Cholesky graph file's row: the hand-written P5 is already the Cholesky form); NAME=VALUE sets a
 * dim by the name the graph file in benchmarks/problems uses (N; N, D; batch, n_in, n_hidden,
 * n_classes; n; T).
 *
 * The problems live in problems.c, a separate translation unit: the compiler cannot see through
 * the calls, so it cannot hoist or drop them from the timing loops. */
#define _POSIX_C_SOURCE 199309L
#include "problems.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __TINYC__
#define COMPILER_NAME "tcc"
#elif defined(__clang__)
#define COMPILER_NAME "clang"
#elif defined(__GNUC__)
#define COMPILER_NAME "gcc"
#else
#define COMPILER_NAME "cc"
#endif

#define MAX_TENSORS 8

typedef struct {
    const char *name;
    long dims[4];
    const char *dim_names[4];
    int dim_count;
    int n_in, n_out;
    const char *in_names[MAX_TENSORS];
    long in_count[MAX_TENSORS];
    const char *out_names[MAX_TENSORS];
    long out_count[MAX_TENSORS];
    double *in[MAX_TENSORS];
    double *out[MAX_TENSORS];
    double *scratch;
    long scratch_count;
} Problem;

static long dim(const Problem *p, int i) { return p->dims[i]; }

static void die(const char *message, const char *detail) {
    fprintf(stderr, "bench_c: %s%s%s\n", message, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

/* Sets names, default dims and the tensor layout of a problem. */
static void setup(Problem *p, const char *name) {
    memset(p, 0, sizeof *p);
    p->name = name;
    if (strcmp(name, "p1") == 0) {
        p->dim_count = 0;
    } else if (strcmp(name, "p2") == 0 || strcmp(name, "p2-hvp") == 0) {
        p->dim_count = 1;
        p->dim_names[0] = "N";
        p->dims[0] = 1000;
    } else if (strcmp(name, "p3") == 0) {
        p->dim_count = 2;
        p->dim_names[0] = "N";
        p->dims[0] = 1000;
        p->dim_names[1] = "D";
        p->dims[1] = 100;
    } else if (strcmp(name, "p4") == 0) {
        p->dim_count = 4;
        p->dim_names[0] = "batch";
        p->dims[0] = 64;
        p->dim_names[1] = "n_in";
        p->dims[1] = 784;
        p->dim_names[2] = "n_hidden";
        p->dims[2] = 128;
        p->dim_names[3] = "n_classes";
        p->dims[3] = 10;
    } else if (strcmp(name, "p5") == 0 || strcmp(name, "p5-chol") == 0) {
        p->dim_count = 1;
        p->dim_names[0] = "n";
        p->dims[0] = 100;
    } else if (strcmp(name, "p8") == 0) {
        p->dim_count = 1;
        p->dim_names[0] = "T";
        p->dims[0] = 1000;
    } else {
        die("unknown problem (p1, p2, p2-hvp, p3, p4, p5, p5-chol, p8)", name);
    }
}

#define IN(NAME, COUNT) (p->in_names[p->n_in] = (NAME), p->in_count[p->n_in++] = (COUNT))
#define OUT(NAME, COUNT) (p->out_names[p->n_out] = (NAME), p->out_count[p->n_out++] = (COUNT))

static void layout(Problem *p) {
    const char *n = p->name;
    if (strcmp(n, "p1") == 0) {
        IN("x", 1);
        OUT("f", 1);
        OUT("df/dx", 1);
    } else if (strcmp(n, "p2") == 0) {
        IN("x", dim(p, 0));
        OUT("f", 1);
        OUT("df/dx", dim(p, 0));
    } else if (strcmp(n, "p2-hvp") == 0) {
        IN("x", dim(p, 0));
        IN("v", dim(p, 0));
        OUT("f", 1);
        OUT("d2f/dx2.v", dim(p, 0));
    } else if (strcmp(n, "p3") == 0) {
        IN("Phi", dim(p, 0) * dim(p, 1));
        IN("y", dim(p, 0));
        IN("theta", dim(p, 1));
        OUT("L", 1);
        OUT("dL/dtheta", dim(p, 1));
    } else if (strcmp(n, "p4") == 0) {
        long b = dim(p, 0), ni = dim(p, 1), nh = dim(p, 2), nc = dim(p, 3);
        IN("X", b * ni);
        IN("Y", b * nc);
        IN("W1", ni * nh);
        IN("b1", nh);
        IN("W2", nh * nc);
        IN("b2", nc);
        OUT("loss", 1);
        OUT("dloss/dW1", ni * nh);
        OUT("dloss/db1", nh);
        OUT("dloss/dW2", nh * nc);
        OUT("dloss/db2", nc);
        p->scratch_count = p4_scratch_doubles(b, ni, nh, nc);
    } else if (strcmp(n, "p5") == 0 || strcmp(n, "p5-chol") == 0) {
        long m = dim(p, 0);
        IN("X", m * 2);
        IN("y", m);
        IN("log_signal", 1);
        IN("log_length", 1);
        IN("log_noise", 1);
        OUT("nlml", 1);
        OUT("dnlml/dlog_signal", 1);
        OUT("dnlml/dlog_length", 1);
        OUT("dnlml/dlog_noise", 1);
        p->scratch_count = p5_scratch_doubles(m);
    } else if (strcmp(n, "p8") == 0) {
        IN("s0", 2);
        IN("p", 2);
        OUT("L", 1);
        OUT("dL/ds0", 2);
        OUT("dL/dp", 2);
        p->scratch_count = p8_scratch_doubles(dim(p, 0));
    }
    for (int i = 0; i < p->n_in; i++) p->in[i] = calloc((size_t)p->in_count[i] + 1, sizeof(double));
    for (int i = 0; i < p->n_out; i++) p->out[i] = calloc((size_t)p->out_count[i] + 1, sizeof(double));
    p->scratch = calloc((size_t)p->scratch_count + 1, sizeof(double));
}

/* The value-and-derivative function (which == 0) or the forward-only one (which == 1). */
static void call(Problem *p, int which) {
    double **in = p->in, **out = p->out;
    const char *n = p->name;
    if (strcmp(n, "p1") == 0) {
        if (which == 0) p1_value_grad(in[0], out[0], out[1]);
        else p1_forward(in[0], out[0]);
    } else if (strcmp(n, "p2") == 0) {
        if (which == 0) p2_value_grad(dim(p, 0), in[0], out[0], out[1]);
        else p2_forward(dim(p, 0), in[0], out[0]);
    } else if (strcmp(n, "p2-hvp") == 0) {
        if (which == 0) p2_value_hvp(dim(p, 0), in[0], in[1], out[0], out[1]);
        else p2_forward(dim(p, 0), in[0], out[0]);
    } else if (strcmp(n, "p3") == 0) {
        if (which == 0) p3_value_grad(dim(p, 0), dim(p, 1), in[0], in[1], in[2], out[0], out[1]);
        else p3_forward(dim(p, 0), dim(p, 1), in[0], in[1], in[2], out[0]);
    } else if (strcmp(n, "p4") == 0) {
        long b = dim(p, 0), ni = dim(p, 1), nh = dim(p, 2), nc = dim(p, 3);
        if (which == 0)
            p4_value_grad(b, ni, nh, nc, in[0], in[1], in[2], in[3], in[4], in[5], out[0], out[1], out[2], out[3],
                          out[4], p->scratch);
        else p4_forward(b, ni, nh, nc, in[0], in[1], in[2], in[3], in[4], in[5], out[0], p->scratch);
    } else if (strcmp(n, "p5") == 0 || strcmp(n, "p5-chol") == 0) {
        /* p5-chol (p5-gp-cholesky.nabla) is the same function: the hand-written P5 has always
         * been the Cholesky form, so both rows time this code. */
        if (which == 0)
            p5_value_grad(dim(p, 0), in[0], in[1], in[2], in[3], in[4], out[0], out[1], out[2], out[3], p->scratch);
        else p5_forward(dim(p, 0), in[0], in[1], in[2], in[3], in[4], out[0], p->scratch);
    } else if (strcmp(n, "p8") == 0) {
        if (which == 0) p8_value_grad(dim(p, 0), in[0], in[1], out[0], out[1], out[2], p->scratch);
        else p8_forward(dim(p, 0), in[0], in[1], out[0]);
    }
}

/* SplitMix64, uniform doubles in [-1, 1). */
static uint64_t rng_state = 1;
static double uniform(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per call over `reps` batches (fewer if max_seconds runs out, at least 3). */
static double measure(Problem *p, int which, int reps, double max_seconds, long *inner_out, int *reps_out) {
    double start = now();
    /* warm-up: at least 3 calls and about 20 ms (bounded by a fifth of the budget) */
    double warm = max_seconds * 0.2 < 0.02 ? max_seconds * 0.2 : 0.02;
    for (int i = 0; i < 3 || now() - start < warm; i++) call(p, which);
    /* calibrate the batch size so one batch lasts at least 50 us */
    long inner = 1;
    for (;;) {
        double t0 = now();
        for (long i = 0; i < inner; i++) call(p, which);
        double dt = now() - t0;
        if (dt >= 50e-6 || inner >= (1L << 24)) break;
        inner *= 2;
    }
    double *samples = malloc(sizeof(double) * (size_t)reps);
    int done = 0;
    double budget_start = now();
    while (done < reps) {
        double t0 = now();
        for (long i = 0; i < inner; i++) call(p, which);
        samples[done++] = (now() - t0) / (double)inner;
        if (done >= 3 && now() - budget_start > max_seconds) break;
    }
    qsort(samples, (size_t)done, sizeof(double), compare_doubles);
    double median = done % 2 ? samples[done / 2] : 0.5 * (samples[done / 2 - 1] + samples[done / 2]);
    free(samples);
    *inner_out = inner;
    *reps_out = done;
    return median;
}

static void print_number(double x) {
    if (x != x) printf("\"nan\"");
    else if (x > 1.7976931348623157e308) printf("\"inf\"");
    else if (x < -1.7976931348623157e308) printf("\"-inf\"");
    else printf("%.17g", x);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_c time PROBLEM [NAME=VALUE ...] [--reps R] [--max-seconds S]\n"
                        "       bench_c eval PROBLEM [NAME=VALUE ...] INPUT_FILE\n");
        return 2;
    }
    const char *mode = argv[1];
    Problem problem, *p = &problem;
    setup(p, argv[2]);
    int reps = 31;
    double max_seconds = 2.0;
    const char *input_file = NULL;
    for (int a = 3; a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        if (strcmp(argv[a], "--reps") == 0 && a + 1 < argc) {
            reps = atoi(argv[++a]);
            if (reps < 1) reps = 1;
        } else if (strcmp(argv[a], "--max-seconds") == 0 && a + 1 < argc) {
            max_seconds = atof(argv[++a]);
        } else if (eq && argv[a][0] != '-') {
            int found = 0;
            for (int d = 0; d < p->dim_count; d++) {
                if ((size_t)(eq - argv[a]) == strlen(p->dim_names[d]) &&
                    strncmp(argv[a], p->dim_names[d], (size_t)(eq - argv[a])) == 0) {
                    p->dims[d] = atol(eq + 1);
                    if (p->dims[d] < 1) die("a dim must be positive", argv[a]);
                    found = 1;
                }
            }
            if (!found) die("unknown dim for this problem", argv[a]);
        } else if (strcmp(mode, "eval") == 0 && !input_file) {
            input_file = argv[a];
        } else {
            die("unexpected argument", argv[a]);
        }
    }
    layout(p);

    if (strcmp(mode, "eval") == 0) {
        if (!input_file) die("eval needs an input file", NULL);
        FILE *f = fopen(input_file, "r");
        if (!f) die("cannot open", input_file);
        for (int i = 0; i < p->n_in; i++)
            for (long k = 0; k < p->in_count[i]; k++)
                if (fscanf(f, "%lf", &p->in[i][k]) != 1) die("input file too short for input", p->in_names[i]);
        fclose(f);
        call(p, 0);
        printf("{\n");
        for (int i = 0; i < p->n_out; i++) {
            printf("  \"%s\": [", p->out_names[i]);
            for (long k = 0; k < p->out_count[i]; k++) {
                if (k) printf(", ");
                print_number(p->out[i][k]);
            }
            printf("]%s\n", i + 1 < p->n_out ? "," : "");
        }
        printf("}\n");
        return 0;
    }
    if (strcmp(mode, "time") != 0) die("unknown mode (time, eval)", mode);

    for (int i = 0; i < p->n_in; i++)
        for (long k = 0; k < p->in_count[i]; k++) p->in[i][k] = uniform();
    if (strcmp(p->name, "p8") == 0) {
        /* a damped oscillator: stiffness k in [1, 5], damping c in [0.1, 0.5] */
        p->in[1][0] = 3.0 + 2.0 * p->in[1][0];
        p->in[1][1] = 0.3 + 0.2 * p->in[1][1];
    }
    long inner_call, inner_fwd;
    int reps_call, reps_fwd;
    double t_call = measure(p, 0, reps, max_seconds, &inner_call, &reps_call);
    double t_fwd = measure(p, 1, reps, max_seconds, &inner_fwd, &reps_fwd);
    printf("{\"problem\": \"%s\", \"compiler\": \"%s\", \"dims\": {", p->name, COMPILER_NAME);
    for (int d = 0; d < p->dim_count; d++) printf("%s\"%s\": %ld", d ? ", " : "", p->dim_names[d], p->dims[d]);
    printf("}, \"call_us\": %.6g, \"forward_us\": %.6g, \"ratio\": %.4g, \"inner\": %ld, \"reps\": %d, "
           "\"scratch_bytes\": %ld, \"check\": ",
           t_call * 1e6, t_fwd * 1e6, t_call / t_fwd, inner_call, reps_call, p->scratch_count * 8);
    print_number(p->out[0][0]);
    printf("}\n");
    return 0;
}
