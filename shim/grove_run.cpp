// grove-run: runs a program with the grove shim preloaded.
//
//   grove-run [options] [--] PROGRAM [ARGS...]
//
// Sets LD_PRELOAD (keeping entries already there) and the GROVE_* settings,
// then execs PROGRAM. Refuses, with a message, what preloading cannot
// reach: a missing program, a static binary, a setuid/setgid one.

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

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
    "  --shim PATH         use this libgrove_shim.so\n"
    "  -h, --help          this text\n"
    "\n"
    "environment: GROVE_STACK_SIZE, GROVE_DISABLE, GROVE_MAIN_HUB (set to 1 here:\n"
    "the main thread is cooperative from the start), GROVE_THREADS (green here\n"
    "unless set: pthreads become fibers on one OS thread; native keeps OS\n"
    "threads), GROVE_THREAD_STACK_SIZE, GROVE_RESOLVER (thread or ares).\n";

[[noreturn]] void die(int code, const char* fmt, const char* arg) {
    std::fprintf(stderr, "grove-run: ");
    std::fprintf(stderr, fmt, arg);
    std::fprintf(stderr, "\n");
    std::exit(code);
}

std::string find_program(const char* name) {
    if (std::strchr(name, '/') != nullptr) {
        return name;
    }
    const char* path = std::getenv("PATH");
    std::string p = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= p.size()) {
        std::size_t end = p.find(':', start);
        if (end == std::string::npos) {
            end = p.size();
        }
        std::string dir = p.substr(start, end - start);
        if (dir.empty()) {
            dir = ".";
        }
        std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) {
            struct stat st;
            if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
                return candidate;
            }
        }
        start = end + 1;
    }
    return {};
}

// 1 dynamic ELF, 0 static ELF, -1 not ELF (a script: its interpreter decides).
int elf_dynamic(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    Elf64_Ehdr eh;
    int result = -1;
    if (::pread(fd, &eh, sizeof eh, 0) == static_cast<ssize_t>(sizeof eh) &&
        std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64) {
        result = 0;
        for (int i = 0; i < eh.e_phnum; ++i) {
            Elf64_Phdr ph;
            const off_t off = static_cast<off_t>(eh.e_phoff) + static_cast<off_t>(i) * eh.e_phentsize;
            if (::pread(fd, &ph, sizeof ph, off) != static_cast<ssize_t>(sizeof ph)) {
                break;
            }
            if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC) {
                result = 1;
                break;
            }
        }
    }
    ::close(fd);
    return result;
}

std::string default_shim() {
    // Beside this executable first (a build tree), then the install libdir.
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        std::string dir(self);
        const std::size_t slash = dir.rfind('/');
        dir = slash == std::string::npos ? std::string(".") : dir.substr(0, slash);
        for (const char* rel : {"/libgrove_shim.so", "/../shim/libgrove_shim.so"}) {
            std::string candidate = dir + rel;
            if (::access(candidate.c_str(), R_OK) == 0) {
                return candidate;
            }
        }
    }
    return std::string(GROVE_SHIM_LIBDIR) + "/libgrove_shim.so";
}

}  // namespace

int main(int argc, char** argv) {
    std::string shim;
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
                shim = argv[++i];
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
    const std::string prog = find_program(argv[i]);
    struct stat st;
    if (prog.empty() || ::stat(prog.c_str(), &st) != 0) {
        die(127, "%s: no such program", argv[i]);
    }
    if (!S_ISREG(st.st_mode) || ::access(prog.c_str(), X_OK) != 0) {
        die(126, "%s: not an executable file", prog.c_str());
    }
    if ((st.st_mode & (S_ISUID | S_ISGID)) != 0) {
        die(126, "%s is setuid/setgid: the loader ignores LD_PRELOAD for it", prog.c_str());
    }
    if (elf_dynamic(prog) == 0) {
        die(126, "%s is statically linked: LD_PRELOAD cannot reach it", prog.c_str());
    }
    if (shim.empty()) {
        if (const char* env = std::getenv("GROVE_SHIM")) {
            shim = env;
        } else {
            shim = default_shim();
        }
    }
    if (::access(shim.c_str(), R_OK) != 0) {
        die(127, "cannot find the shim library %s (use --shim PATH)", shim.c_str());
    }
    std::string preload = shim;
#ifdef GROVE_PRELOAD_FIRST
    // A sanitizer build: its runtime must come first, and the unmodified
    // programs this runs were never meant to pass a leak check.
    preload = std::string(GROVE_PRELOAD_FIRST) + ":" + preload;
    ::setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
#endif
    if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && old[0] != '\0') {
        preload += ":";
        preload += old;
    }
    ::setenv("LD_PRELOAD", preload.c_str(), 1);
    ::setenv("GROVE_MAIN_HUB", "1", 0);
    ::setenv("GROVE_THREADS", "green", 0);  // pthreads become fibers (README: green threads)
    ::execv(prog.c_str(), argv + i);
    die(126, "cannot run %s", prog.c_str());
}
