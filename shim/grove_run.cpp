// grove-run: runs a program with the grove shim preloaded.
//
//   grove-run [options] [--] PROGRAM [ARGS...]
//
// Sets LD_PRELOAD (keeping entries already there) and the GROVE_* settings,
// then execs PROGRAM. The shim preloaded is libgrove_shim_preload.so when
// the build made one (no C++ runtime or other library of its own to load),
// libgrove_shim.so for a program linked with libgrove, which it must share. Refuses, with a message, what preloading cannot
// reach: a missing program, a static binary, a setuid/setgid one.

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// Written against libc alone, no C++ runtime: grove-run's own start-up is
// part of every program it runs.

#ifndef GROVE_SHIM_LIBDIR
#define GROVE_SHIM_LIBDIR "/usr/local/lib"
#endif

namespace {

const char* const kUsage =
    "usage: grove-run [options] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM with grove's shim preloaded: its blocking calls (sleep,\n"
    "sockets, pipes, poll, waitpid...) park fibers instead of the thread.\n"
    "\n"
    "options:\n"
    "  --stack-size BYTES  default fiber stack size (GROVE_STACK_SIZE; k/m suffixes)\n"
    "  --disable           load the shim but pass every call through (GROVE_DISABLE=1)\n"
    "  --shim PATH         preload this shim library (GROVE_SHIM; default: the\n"
    "                      self-contained libgrove_shim_preload.so, or libgrove_shim.so\n"
    "                      for a program that links libgrove itself)\n"
    "  -h, --help          this text\n"
    "\n"
    "environment: GROVE_STACK_SIZE, GROVE_DISABLE, GROVE_THREADS (green here\n"
    "unless set: pthreads become fibers on one OS thread, the main thread's hub\n"
    "starting with the first; native keeps OS threads), GROVE_MAIN_HUB (1: the\n"
    "main thread makes its hub at its first call that could wait, even with\n"
    "nothing else to run), GROVE_THREAD_STACK_SIZE, GROVE_THREAD_TLS (own:\n"
    "each green thread has its own thread-local variables; shared), GROVE_RESOLVER\n"
    "(thread or ares).\n";

[[noreturn]] void die(int code, const char* fmt, const char* arg) {
    std::fprintf(stderr, "grove-run: ");
    std::fprintf(stderr, fmt, arg);
    std::fprintf(stderr, "\n");
    std::exit(code);
}

// dir + "/" + name into out (PATH_MAX bytes); false when it does not fit.
bool join_path(char* out, const char* dir, std::size_t dir_len, const char* name) {
    const int n = std::snprintf(out, PATH_MAX, "%.*s/%s", static_cast<int>(dir_len), dir, name);
    return n > 0 && n < PATH_MAX;
}

// The program's path into out (PATH_MAX bytes): name itself when it has a
// slash, else the first executable regular file of that name on PATH.
bool find_program(const char* name, char* out) {
    if (std::strchr(name, '/') != nullptr) {
        if (std::strlen(name) >= PATH_MAX) {
            return false;
        }
        std::strcpy(out, name);
        return true;
    }
    const char* path = std::getenv("PATH");
    if (path == nullptr) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    for (const char* dir = path;; ) {
        const char* colon = std::strchr(dir, ':');
        const std::size_t len = colon != nullptr ? static_cast<std::size_t>(colon - dir) : std::strlen(dir);
        const bool joined = len == 0 ? join_path(out, ".", 1, name) : join_path(out, dir, len, name);
        struct stat st;
        if (joined && ::access(out, X_OK) == 0 && ::stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            return true;
        }
        if (colon == nullptr) {
            return false;
        }
        dir = colon + 1;
    }
}

bool read_at(int fd, void* buf, std::size_t n, off_t off) {
    return ::pread(fd, buf, n, off) == static_cast<ssize_t>(n);
}

// A file offset for virtual address vaddr, through the program headers'
// loadable segments; -1 when none holds it.
off_t file_offset(int fd, const Elf64_Ehdr& eh, Elf64_Addr vaddr) {
    for (int i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        if (!read_at(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff) + static_cast<off_t>(i) * eh.e_phentsize)) {
            return -1;
        }
        if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) {
            return static_cast<off_t>(ph.p_offset + (vaddr - ph.p_vaddr));
        }
    }
    return -1;
}

// Whether one of the dynamic section's DT_NEEDED entries names libgrove
// (libgrove.so.N, libgrove_shim.so...): such a program must share that
// libgrove with the shim it is given.
bool needs_grove(int fd, const Elf64_Ehdr& eh, const Elf64_Phdr& dyn) {
    Elf64_Addr strtab = 0;
    Elf64_Xword strsz = 0;
    const std::size_t count = dyn.p_filesz / sizeof(Elf64_Dyn);
    for (std::size_t k = 0; k < count && k < 4096; ++k) {
        Elf64_Dyn d;
        if (!read_at(fd, &d, sizeof d, static_cast<off_t>(dyn.p_offset + k * sizeof d)) || d.d_tag == DT_NULL) {
            break;
        }
        if (d.d_tag == DT_STRTAB) {
            strtab = d.d_un.d_ptr;
        } else if (d.d_tag == DT_STRSZ) {
            strsz = d.d_un.d_val;
        }
    }
    const off_t strings = strtab != 0 ? file_offset(fd, eh, strtab) : -1;
    if (strings < 0) {
        return false;
    }
    for (std::size_t k = 0; k < count && k < 4096; ++k) {
        Elf64_Dyn d;
        if (!read_at(fd, &d, sizeof d, static_cast<off_t>(dyn.p_offset + k * sizeof d)) || d.d_tag == DT_NULL) {
            break;
        }
        if (d.d_tag != DT_NEEDED || d.d_un.d_val >= strsz) {
            continue;
        }
        char name[16] = {};
        const ssize_t got = ::pread(fd, name, sizeof name - 1, strings + static_cast<off_t>(d.d_un.d_val));
        if (got > 0 && std::strncmp(name, "libgrove.so", 11) == 0) {
            return true;
        }
        if (got > 0 && std::strncmp(name, "libgrove_", 9) == 0) {
            return true;
        }
    }
    return false;
}

struct ElfInfo {
    int kind = -1;             // 1 dynamic ELF, 0 static ELF, -1 not ELF (a script: its interpreter decides)
    bool needs_grove = false;  // links libgrove itself
};

ElfInfo inspect(const char* path) {
    ElfInfo info;
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return info;
    }
    Elf64_Ehdr eh;
    if (read_at(fd, &eh, sizeof eh, 0) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
        eh.e_ident[EI_CLASS] == ELFCLASS64) {
        info.kind = 0;
        for (int i = 0; i < eh.e_phnum; ++i) {
            Elf64_Phdr ph;
            if (!read_at(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff) + static_cast<off_t>(i) * eh.e_phentsize)) {
                break;
            }
            if (ph.p_type == PT_INTERP) {
                info.kind = 1;
            } else if (ph.p_type == PT_DYNAMIC) {
                info.kind = 1;
                info.needs_grove = needs_grove(fd, eh, ph);
            }
        }
    }
    ::close(fd);
    return info;
}

// The shim to preload, into out (PATH_MAX bytes): beside this executable
// first (a build tree), then the install libdir. The self-contained
// libgrove_shim_preload.so when built, unless the program links libgrove
// itself; else libgrove_shim.so.
void default_shim(bool program_links_grove, char* out) {
    const char* names[2] = {nullptr, "libgrove_shim.so"};
#ifdef GROVE_HAVE_PRELOAD
    if (!program_links_grove) {
        names[0] = "libgrove_shim_preload.so";
    }
#else
    (void)program_links_grove;
#endif
    char self[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    std::size_t dir_len = 0;
    if (n > 0) {
        self[n] = '\0';
        const char* slash = std::strrchr(self, '/');
        dir_len = slash != nullptr ? static_cast<std::size_t>(slash - self) : 0;
    }
    for (const char* name : names) {
        if (name == nullptr) {
            continue;
        }
        char rel[64];
        std::snprintf(rel, sizeof rel, "../shim/%s", name);
        if (dir_len > 0 && ((join_path(out, self, dir_len, name) && ::access(out, R_OK) == 0) ||
                            (join_path(out, self, dir_len, rel) && ::access(out, R_OK) == 0))) {
            return;
        }
        if (join_path(out, GROVE_SHIM_LIBDIR, std::strlen(GROVE_SHIM_LIBDIR), name) && ::access(out, R_OK) == 0) {
            return;
        }
    }
    // Nothing found: name the library the message should mention.
    join_path(out, GROVE_SHIM_LIBDIR, std::strlen(GROVE_SHIM_LIBDIR), "libgrove_shim.so");
}

}  // namespace

int main(int argc, char** argv) {
    const char* shim_arg = nullptr;
    int i = 1;
    for (; i < argc; ++i) {
        const char* a = argv[i];
        if (std::strcmp(a, "--") == 0) {
            ++i;
            break;
        }
        if (std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0) {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (std::strcmp(a, "--disable") == 0) {
            ::setenv("GROVE_DISABLE", "1", 1);
        } else if (std::strcmp(a, "--stack-size") == 0 || std::strcmp(a, "--shim") == 0) {
            if (i + 1 >= argc) {
                die(2, "%s needs a value (see --help)", a);
            }
            if (a[2] == 's' && a[3] == 't') {
                ::setenv("GROVE_STACK_SIZE", argv[++i], 1);
            } else {
                shim_arg = argv[++i];
            }
        } else if (a[0] == '-') {
            die(2, "unknown option %s (see --help)", a);
        } else {
            break;
        }
    }
    if (i >= argc) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    static char prog[PATH_MAX];
    struct stat st;
    if (!find_program(argv[i], prog) || ::stat(prog, &st) != 0) {
        die(127, "%s: no such program", argv[i]);
    }
    if (!S_ISREG(st.st_mode) || ::access(prog, X_OK) != 0) {
        die(126, "%s: not an executable file", prog);
    }
    if ((st.st_mode & (S_ISUID | S_ISGID)) != 0) {
        die(126, "%s is setuid/setgid: the loader ignores LD_PRELOAD for it", prog);
    }
    const ElfInfo elf = inspect(prog);
    if (elf.kind == 0) {
        die(126, "%s is statically linked: LD_PRELOAD cannot reach it", prog);
    }
    static char shim_buf[PATH_MAX];
    const char* shim = shim_arg;
    if (shim == nullptr) {
        shim = std::getenv("GROVE_SHIM");
    }
    if (shim == nullptr || shim[0] == '\0') {
        default_shim(elf.needs_grove, shim_buf);
        shim = shim_buf;
    }
    if (::access(shim, R_OK) != 0) {
        die(127, "cannot find the shim library %s (use --shim PATH)", shim);
    }
    const char* first = "";
#ifdef GROVE_PRELOAD_FIRST
    // A sanitizer build: its runtime must come first, and the unmodified
    // programs this runs were never meant to pass a leak check.
    first = GROVE_PRELOAD_FIRST ":";
    ::setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
#endif
    const char* old = std::getenv("LD_PRELOAD");
    const bool keep = old != nullptr && old[0] != '\0';
    const std::size_t size = std::strlen(first) + std::strlen(shim) + (keep ? std::strlen(old) + 1 : 0) + 1;
    char* preload = static_cast<char*>(std::malloc(size));
    if (preload == nullptr) {
        die(126, "%s", "out of memory");
    }
    std::snprintf(preload, size, "%s%s%s%s", first, shim, keep ? ":" : "", keep ? old : "");
    ::setenv("LD_PRELOAD", preload, 1);
    ::setenv("GROVE_THREADS", "green", 0);  // pthreads become fibers (README: green threads)
    ::execv(prog, argv + i);
    die(126, "cannot run %s", prog);
}
