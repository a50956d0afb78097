// Which names may become the entry point of emitted C.
//
// `emitC` names its function `cIdentifier(options.functionName)`. That mangling keeps letters
// and digits, doubles every underscore and writes every other byte as `_` and two upper-case
// hex digits, so the result is always a valid identifier, but not always a usable one: `int`,
// `main` or `exp` survive unchanged and give C that does not compile or link. This file
// lists what such a name must not be.
//
// What the C emitted around the function cannot collide with:
// - Nabla's own file-scope names (helpers `nabla_sigmoid`, LU routines `nabla_lu_factor`,
//   runtime slots `nabla_slot_nabla_matmul`, constant tensors `nabla_c12`, the parts of a
//   split kernel `NAME_part0`, the header's `p_in_x_dims` arrays) each have a
//   lone underscore followed by a lower-case letter. A mangled name never does: its
//   underscores come from `__` (a `_` of the name) and `_XX` escapes, so a run of an odd
//   number of underscores is always followed by an upper-case hex digit. The same holds for
//   the standard library's names with such an underscore (`size_t`, `memory_order_relaxed`),
//   so the lists below only need names of letters and digits. The standard's other names
//   with a lone underscore (`SIG_DFL`, `FLT_DECIMAL_DIG`, `EXIT_FAILURE`) do not decode
//   either: `_DF` and `_DE` would be UTF-8 lead bytes without their continuation, `_FA` no
//   UTF-8 byte at all, and a Swift string is always valid UTF-8.
// - Locals of the function body (`ws`, `out0`, `in1`, `i`, `s3`) only shadow the function's
//   own name inside it, which C allows and the body never needs.
// `CNameTests` scans emitted C for file-scope names so that a new one the argument does not
// cover is caught.

/// Checks that `name` can name the C function `emitC` writes (after `cIdentifier`).
///
/// Refused: names whose C identifier begins with an underscore (C reserves those; this is
/// every name that starts with something other than a letter, and the empty name), keywords
/// of C89 to C23 and of C++ (the header is usable from C++) and common extension keywords,
/// `main`, the functions, macros and objects of the C standard library and of glibc's libm
/// and default headers that a program including them may see, and macros gcc predefines
/// (`linux`, `unix`).
/// - Throws: `NablaError.invalidArgument` saying what the name collides with.
public func checkFunctionName(_ name: String) throws {
    if let problem = functionNameProblem(name) {
        throw NablaError.invalidArgument(op: "C function name", reason: problem)
    }
}

/// Why `name` cannot name the emitted C function, or nil when it can.
func functionNameProblem(_ name: String) -> String? {
    if name.isEmpty { return "the name is empty" }
    let identifier = cIdentifier(name)
    let shown = identifier == name ? "'\(name)'" : "'\(name)' (C identifier '\(identifier)')"
    if identifier.hasPrefix("_") {
        return "\(shown) begins with an underscore, which C reserves for the compiler and its library; start the name with a letter"
    }
    if identifier == "main" { return "'main' is the entry point of a C program" }
    if CNames.cKeywords.contains(identifier) { return "\(shown) is a C keyword" }
    if CNames.extensionKeywords.contains(identifier) { return "\(shown) is a keyword of common C compiler extensions" }
    if CNames.cppKeywords.contains(identifier) { return "\(shown) is a C++ keyword (the header is meant to be usable from C++)" }
    if CNames.predefinedMacros.contains(identifier) { return "\(shown) is a macro the C compiler predefines" }
    if CNames.library.contains(identifier) {
        return "\(shown) is declared by the C standard library or libm, which the kernel links with"
    }
    return nil
}

/// The names `checkFunctionName` refuses, by kind. Only names of letters and digits are listed:
/// no mangled name equals one with an underscore (see the top of this file).
enum CNames {
    /// Keywords of C89, C99, C11 and C23 (those spelt with a leading underscore, `_Bool` and the
    /// like, are refused with every other name that begins with one).
    static let cKeywords: Set<String> = [
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
        "extern", "float", "for", "goto", "if", "int", "long", "register", "return", "short", "signed",
        "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
        // C99
        "inline", "restrict",
        // C23
        "alignas", "alignof", "bool", "constexpr", "false", "nullptr", "true", "typeof",
    ]

    /// Keywords of GNU C, TinyCC and other common compilers outside strict modes.
    static let extensionKeywords: Set<String> = ["asm", "fortran"]

    /// Keywords and alternative operator spellings of C++ through C++23.
    static let cppKeywords: Set<String> = [
        "and", "bitand", "bitor", "catch", "class", "compl", "concept", "consteval", "constinit",
        "decltype", "delete", "explicit", "export", "friend", "mutable", "namespace", "new", "noexcept", "not",
        "operator", "or", "private", "protected", "public", "requires", "template", "this", "throw", "try",
        "typeid", "typename", "using", "virtual", "xor",
    ]

    /// Macros gcc (in its default GNU modes) and tcc predefine without an underscore.
    static let predefinedMacros: Set<String> = ["linux", "unix"]

    /// Functions, macros, types and objects of the C standard library (C11 and C23) and the
    /// POSIX and GNU extensions glibc's standard headers declare by default.
    static let library: Set<String> = {
        var names = Set<String>()
        names.formUnion(mathFunctions.flatMap { [$0, $0 + "f", $0 + "l"] })
        names.formUnion(complexFunctions.flatMap { [$0, $0 + "f", $0 + "l"] })
        names.formUnion(narrowingMath.flatMap { [$0, $0 + "l"] })
        names.formUnion(formatMacros)
        names.formUnion(otherLibraryNames)
        names.formUnion(errnoMacros)
        names.formUnion(signalMacros)
        return names
    }()

    /// <math.h> and <tgmath.h> functions, each also with an `f` and an `l` suffix; C23's and
    /// glibc's additions included.
    private static let mathFunctions = [
        "acos", "asin", "atan", "atan2", "cos", "sin", "tan", "acosh", "asinh", "atanh", "cosh", "sinh", "tanh",
        "exp", "exp2", "expm1", "frexp", "ilogb", "ldexp", "log", "log10", "log1p", "log2", "logb", "modf",
        "scalbn", "scalbln", "cbrt", "fabs", "hypot", "pow", "sqrt", "erf", "erfc", "lgamma", "tgamma", "ceil",
        "floor", "nearbyint", "rint", "lrint", "llrint", "round", "lround", "llround", "trunc", "fmod",
        "remainder", "remquo", "copysign", "nan", "nextafter", "nexttoward", "fdim", "fmax", "fmin", "fma",
        // C23
        "acospi", "asinpi", "atanpi", "atan2pi", "cospi", "sinpi", "tanpi", "exp10", "exp10m1", "exp2m1",
        "log10p1", "log2p1", "logp1", "compoundn", "pown", "powr", "rootn", "rsqrt", "fmaximum", "fminimum",
        "nextup", "nextdown", "canonicalize", "fromfp", "ufromfp", "fromfpx", "ufromfpx", "roundeven", "llogb",
        "totalorder", "totalordermag", "getpayload", "setpayload", "setpayloadsig",
        // glibc
        "j0", "j1", "jn", "y0", "y1", "yn", "gamma", "drem", "finite", "isinf", "isnan", "significand",
        "scalb", "pow10", "sincos",
    ]

    /// <complex.h> functions, each also with an `f` and an `l` suffix.
    private static let complexFunctions = [
        "cabs", "cacos", "cacosh", "carg", "casin", "casinh", "catan", "catanh", "ccos", "ccosh", "cexp",
        "cimag", "clog", "conj", "cpow", "cproj", "creal", "csin", "csinh", "csqrt", "ctan", "ctanh", "CMPLX",
    ]

    /// C23's narrowing arithmetic, each also with an `l` suffix.
    private static let narrowingMath = [
        "fadd", "fsub", "fmul", "fdiv", "ffma", "fsqrt", "dadd", "dsub", "dmul", "ddiv", "dfma", "dsqrt",
    ]

    /// <inttypes.h> format macros: `PRId32`, `SCNxLEAST8`, `PRIXPTR` and so on.
    private static let formatMacros: [String] = {
        let widths = ["8", "16", "32", "64"]
        let suffixes = widths + widths.map { "LEAST" + $0 } + widths.map { "FAST" + $0 } + ["MAX", "PTR"]
        var names: [String] = []
        for (prefix, conversions) in [("PRI", "diouxX"), ("SCN", "dioux")] {
            for conversion in conversions {
                for suffix in suffixes { names.append(prefix + String(conversion) + suffix) }
            }
        }
        return names
    }()

    private static let otherLibraryNames = [
        // <assert.h>, <complex.h>, <ctype.h>, <errno.h>, <fenv.h>, <inttypes.h>, <iso646.h>, <locale.h>
        "assert", "complex", "imaginary", "I",
        "isalnum", "isalpha", "isblank", "iscntrl", "isdigit", "isgraph", "islower", "isprint", "ispunct",
        "isspace", "isupper", "isxdigit", "tolower", "toupper", "isascii", "toascii",
        "errno",
        "feclearexcept", "fegetexceptflag", "feraiseexcept", "fesetexceptflag", "fetestexcept", "fegetround",
        "fesetround", "fegetenv", "feholdexcept", "fesetenv", "feupdateenv", "fegetmode", "fesetmode",
        "fesetexcept", "fetestexceptflag", "feenableexcept", "fedisableexcept", "fegetexcept",
        "imaxabs", "imaxdiv", "strtoimax", "strtoumax", "wcstoimax", "wcstoumax",
        "setlocale", "localeconv", "newlocale", "duplocale", "freelocale", "uselocale",
        // <math.h> macros and objects
        "fpclassify", "isfinite", "isnormal", "signbit", "isgreater", "isgreaterequal", "isless",
        "islessequal", "islessgreater", "isunordered", "iscanonical", "issignaling", "issubnormal", "iszero",
        "INFINITY", "NAN", "signgam",
        // <setjmp.h>, <signal.h>
        "setjmp", "longjmp", "sigsetjmp", "siglongjmp",
        "signal", "raise", "kill", "killpg", "sigaction", "sigaddset", "sigdelset", "sigemptyset",
        "sigfillset", "sigismember", "sigpending", "sigprocmask", "sigsuspend", "sigwait", "sigqueue",
        "sigtimedwait", "sigwaitinfo", "psignal", "psiginfo", "sigaltstack", "siginterrupt", "sighold",
        "sigignore", "sigpause", "sigrelse", "sigset", "NSIG",
        // <stdalign.h>, <stdbool.h>, <stddef.h>, <stdnoreturn.h>
        "offsetof", "NULL", "unreachable", "noreturn",
        // <stdio.h>
        "remove", "rename", "tmpfile", "tmpnam", "fclose", "fflush", "fopen", "freopen", "setbuf", "setvbuf",
        "fprintf", "fscanf", "printf", "scanf", "snprintf", "sprintf", "sscanf", "vfprintf", "vfscanf",
        "vprintf", "vscanf", "vsnprintf", "vsprintf", "vsscanf", "fgetc", "fgets", "fputc", "fputs", "getc",
        "getchar", "gets", "putc", "putchar", "puts", "ungetc", "fread", "fwrite", "fgetpos", "fseek",
        "fsetpos", "ftell", "rewind", "clearerr", "feof", "ferror", "perror", "EOF", "BUFSIZ", "FILE",
        "stdin", "stdout", "stderr",
        "fdopen", "fileno", "popen", "pclose", "getline", "getdelim", "dprintf", "vdprintf", "ctermid",
        "tempnam", "fmemopen", "fseeko", "ftello", "flockfile", "funlockfile", "ftrylockfile", "renameat",
        "putw", "getw", "cuserid", "asprintf", "vasprintf",
        // <stdlib.h>
        "atof", "atoi", "atol", "atoll", "strtod", "strtof", "strtold", "strtol", "strtoll", "strtoul",
        "strtoull", "strfromd", "strfromf", "strfroml", "rand", "srand", "calloc", "free", "malloc",
        "realloc", "abort", "atexit", "exit", "getenv", "system", "bsearch", "qsort", "abs", "labs",
        "llabs", "div", "ldiv", "lldiv", "mblen", "mbtowc", "wctomb", "mbstowcs", "wcstombs", "memalignment",
        "random", "srandom", "initstate", "setstate", "drand48", "erand48", "lrand48", "nrand48", "mrand48",
        "jrand48", "srand48", "seed48", "lcong48", "mkstemp", "mkostemp", "mkdtemp", "mktemp", "realpath",
        "setenv", "unsetenv", "putenv", "clearenv", "alloca", "valloc", "ecvt", "fcvt", "gcvt", "qecvt",
        "qfcvt", "qgcvt", "rpmatch", "getsubopt", "getloadavg", "a64l", "l64a", "grantpt", "unlockpt",
        "ptsname", "reallocarray",
        // <string.h> and <strings.h>
        "memcpy", "memmove", "strcpy", "strncpy", "strcat", "strncat", "memcmp", "strcmp", "strcoll",
        "strncmp", "strxfrm", "memchr", "strchr", "strcspn", "strpbrk", "strrchr", "strspn", "strstr",
        "strtok", "memset", "strerror", "strlen", "memccpy", "strdup", "strndup",
        "stpcpy", "stpncpy", "strnlen", "strsignal", "strcasecmp", "strncasecmp", "index", "rindex", "bcopy",
        "bzero", "bcmp", "ffs", "ffsl", "ffsll", "memmem", "mempcpy", "strsep", "strcasestr", "strverscmp",
        "strfry", "memfrob", "basename", "strchrnul", "rawmemchr", "memrchr", "strlcpy", "strlcat",
        // <time.h>
        "clock", "difftime", "mktime", "time", "asctime", "ctime", "gmtime", "localtime", "strftime",
        "timegm", "tzset", "tzname", "daylight", "timezone", "nanosleep", "strptime", "stime", "dysize",
        "timelocal", "getdate",
        // <uchar.h>
        "mbrtoc8", "c8rtomb", "mbrtoc16", "c16rtomb", "mbrtoc32", "c32rtomb",
        // <wchar.h> and <wctype.h>
        "fwprintf", "fwscanf", "swprintf", "swscanf", "vfwprintf", "vfwscanf", "vswprintf", "vswscanf",
        "vwprintf", "vwscanf", "wprintf", "wscanf", "fgetwc", "fgetws", "fputwc", "fputws", "fwide", "getwc",
        "getwchar", "putwc", "putwchar", "ungetwc", "wcstod", "wcstof", "wcstold", "wcstol", "wcstoll",
        "wcstoul", "wcstoull", "wcscpy", "wcsncpy", "wmemcpy", "wmemmove", "wcscat", "wcsncat", "wcscmp",
        "wcscoll", "wcsncmp", "wcsxfrm", "wmemcmp", "wcschr", "wcscspn", "wcspbrk", "wcsrchr", "wcsspn",
        "wcsstr", "wcstok", "wmemchr", "wcslen", "wmemset", "wcsftime", "btowc", "wctob", "mbsinit",
        "mbrlen", "mbrtowc", "wcrtomb", "mbsrtowcs", "wcsrtombs", "WEOF", "wcsdup", "wcsnlen", "wcpcpy",
        "wcpncpy", "wcscasecmp", "wcsncasecmp", "wcwidth", "wcswidth", "wmempcpy",
        "iswalnum", "iswalpha", "iswblank", "iswcntrl", "iswdigit", "iswgraph", "iswlower", "iswprint",
        "iswpunct", "iswspace", "iswupper", "iswxdigit", "iswctype", "wctype", "towlower", "towupper",
        "towctrans", "wctrans",
    ]

    /// <errno.h> error numbers: the standard's three and those glibc defines on Linux.
    private static let errnoMacros = """
        E2BIG EACCES EADDRINUSE EADDRNOTAVAIL EADV EAFNOSUPPORT EAGAIN EALREADY EBADE EBADF EBADFD EBADMSG \
        EBADR EBADRQC EBADSLT EBFONT EBUSY ECANCELED ECHILD ECHRNG ECOMM ECONNABORTED ECONNREFUSED ECONNRESET \
        EDEADLK EDEADLOCK EDESTADDRREQ EDOM EDOTDOT EDQUOT EEXIST EFAULT EFBIG EHOSTDOWN EHOSTUNREACH \
        EHWPOISON EIDRM EILSEQ EINPROGRESS EINTR EINVAL EIO EISCONN EISDIR EISNAM EKEYEXPIRED EKEYREJECTED \
        EKEYREVOKED EL2HLT EL2NSYNC EL3HLT EL3RST ELIBACC ELIBBAD ELIBEXEC ELIBMAX ELIBSCN ELNRNG ELOOP \
        EMEDIUMTYPE EMFILE EMLINK EMSGSIZE EMULTIHOP ENAMETOOLONG ENAVAIL ENETDOWN ENETRESET ENETUNREACH \
        ENFILE ENOANO ENOBUFS ENOCSI ENODATA ENODEV ENOENT ENOEXEC ENOKEY ENOLCK ENOLINK ENOMEDIUM ENOMEM \
        ENOMSG ENONET ENOPKG ENOPROTOOPT ENOSPC ENOSR ENOSTR ENOSYS ENOTBLK ENOTCONN ENOTDIR ENOTEMPTY \
        ENOTNAM ENOTRECOVERABLE ENOTSOCK ENOTSUP ENOTTY ENOTUNIQ ENXIO EOPNOTSUPP EOVERFLOW EOWNERDEAD EPERM \
        EPFNOSUPPORT EPIPE EPROTO EPROTONOSUPPORT EPROTOTYPE ERANGE EREMCHG EREMOTE EREMOTEIO ERESTART \
        ERFKILL EROFS ESHUTDOWN ESOCKTNOSUPPORT ESPIPE ESRCH ESRMNT ESTALE ESTRPIPE ETIME ETIMEDOUT \
        ETOOMANYREFS ETXTBSY EUCLEAN EUNATCH EUSERS EWOULDBLOCK EXDEV EXFULL
        """.split(separator: " ").map(String.init)

    /// <signal.h> signal numbers: the standard's six and those glibc defines on Linux.
    private static let signalMacros = """
        SIGABRT SIGALRM SIGBUS SIGCHLD SIGCLD SIGCONT SIGFPE SIGHUP SIGILL SIGINT SIGIO SIGIOT SIGKILL \
        SIGPIPE SIGPOLL SIGPROF SIGPWR SIGQUIT SIGRTMAX SIGRTMIN SIGSEGV SIGSTKFLT SIGSTOP SIGSYS SIGTERM \
        SIGTRAP SIGTSTP SIGTTIN SIGTTOU SIGURG SIGUSR1 SIGUSR2 SIGVTALRM SIGWINCH SIGXCPU SIGXFSZ
        """.split(separator: " ").map(String.init)
}
