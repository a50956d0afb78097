"""The benchmark cases P1-P5 (P5 also in its Cholesky form, P5-chol) and P8 at their sizes, shared
by suite.py, peers/run_peers.py and report.py.

Each case: an id for the table, the problem key, the graph file in problems/, the dims given with
--dim, the name of the hand-written C problem, and whether the quick run includes it.
"""

CASES = [
    # id,                   problem,   graph file,                 dims,                         C name,   quick
    ("P1",                  "p1",      "p1-seed.nabla",            {},                           "p1",     True),
    ("P2 N=100",            "p2",      "p2-rosenbrock.nabla",      {"N": 100},                   "p2",     True),
    ("P2 N=1000",           "p2",      "p2-rosenbrock.nabla",      {"N": 1000},                  "p2",     True),
    ("P2 N=10^4",           "p2",      "p2-rosenbrock.nabla",      {"N": 10000},                 "p2",     False),
    ("P2 N=10^5",           "p2",      "p2-rosenbrock.nabla",      {"N": 100000},                "p2",     False),
    ("P2-hvp N=1000",       "p2-hvp",  "p2-hvp.nabla",             {"N": 1000},                  "p2-hvp", True),
    ("P2-hvp N=10^4",       "p2-hvp",  "p2-hvp.nabla",             {"N": 10000},                 "p2-hvp", False),
    ("P3 1000x100",         "p3",      "p3-least-squares.nabla",   {"N": 1000, "D": 100},        "p3",     True),
    ("P3 10^5x10",          "p3",      "p3-least-squares.nabla",   {"N": 100000, "D": 10},       "p3",     False),
    ("P4 64x784-128-10",    "p4",      "p4-mlp.nabla",             {"batch": 64, "n_in": 784, "n_hidden": 128, "n_classes": 10}, "p4", True),
    ("P5 n=100",            "p5",      "p5-gp.nabla",              {"n": 100},                   "p5",     True),
    ("P5 n=400",            "p5",      "p5-gp.nabla",              {"n": 400},                   "p5",     False),
    ("P5-chol n=100",       "p5-chol", "p5-gp-cholesky.nabla",     {"n": 100},                   "p5-chol", True),
    ("P5-chol n=400",       "p5-chol", "p5-gp-cholesky.nabla",     {"n": 400},                   "p5-chol", False),
    ("P8 RK4 T=100",        "p8",      "p8-rk4.nabla",             {"T": 100},                   "p8",     False),
    ("P8 RK4 T=1000",       "p8",      "p8-rk4.nabla",             {"T": 1000},                  "p8",     True),
    ("P8 RK4 T=10^5",       "p8",      "p8-rk4.nabla",             {"T": 100000},                "p8",     False),
]

# The problems large enough to split over cores (threads.py: one thread against all, and the peers
# with their default threading); not in the main table.
THREAD_CASES = [
    ("P2 N=10^6",           "p2",      "p2-rosenbrock.nabla",      {"N": 1000000},               "p2",     False),
    ("P3 10^5x10",          "p3",      "p3-least-squares.nabla",   {"N": 100000, "D": 10},       "p3",     False),
    ("P4 1024x784-128-10",  "p4",      "p4-mlp.nabla",             {"batch": 1024, "n_in": 784, "n_hidden": 128, "n_classes": 10}, "p4", False),
    ("P5 n=1000",           "p5",      "p5-gp.nabla",              {"n": 1000},                  "p5",     False),
]


def cases(quick, problems=None, thread_cases=False):
    """The cases of a quick or a full run, as dicts; with `problems` (e.g. ["P8"]) only the cases
    whose id starts with one of those words ("P2" is P2 alone, not P2-hvp; "P5" is the LU form alone, not P5-chol).
    `thread_cases`: the cases of THREAD_CASES instead (all of them, quick or not)."""
    out = []
    for cid, problem, file, dims, cname, in_quick in (THREAD_CASES if thread_cases else CASES):
        if thread_cases:
            in_quick = True
        if quick and not in_quick:
            continue
        if problems and cid.split()[0] not in problems:
            continue
        out.append({"id": cid, "problem": problem, "file": file, "dims": dict(dims), "c": cname})
    return out


def slug(case_id):
    """A file-name-safe form of a case id."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in case_id)
