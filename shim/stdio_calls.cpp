// stdio and the process helpers built on it. glibc's stdio refills its
// buffers through an internal read that no interposer sees, and pclose and
// system wait through an internal waitpid, so:
// - The input functions (fgetc, getc, getchar, fgets, fread, getdelim,
//   getline, their _unlocked and _chk forms, and __uflow/__underflow, which
//   the inline getc_unlocked-style macros of <stdio.h> call) are rebuilt
//   here on glibc's public FILE fields (<bits/types/struct_FILE.h>), step
//   for step as glibc 2.36 runs them: take what the buffer holds, and before
//   each refill that would read, park until the fd is readable, then let
//   stdio make its one read, which then cannot block. A read that needs
//   several refills (a long line arriving in pieces) parks before each.
//   Values, errno, the EOF and error flags, partial counts, ungetc's
//   pushback and the flush of stdout before a line-buffered read are
//   glibc's.
// - Fibers of one thread share glibc's FILE lock (recursive per OS thread),
//   so a read or write that parks claims its FILE for its fiber: other
//   fibers' calls on it, and fclose, wait until that call returns (Claim).
// - popen/pclose are reimplemented on posix_spawn, so pclose's wait for the
//   child is cooperative; system likewise.
// - The scanf family reads through a proxy FILE that refills the same way
//   (coop_vscan).
// - The output functions (fwrite, fputs, fputc, putc, putchar, puts,
//   fflush, their _unlocked forms, __overflow, which the inline
//   putc_unlocked macro calls, and the printf family with its _chk forms)
//   are rebuilt the same way: glibc's buffering step for step, each write
//   made through the interposed write(), so a full pipe or socket parks the
//   fiber however much is written. printf formats first (vsnprintf), then
//   puts the text through the same path; dprintf writes it to the fd.
//   fclose writes the pending output the same way; fflush(NULL) and exit
//   write any FILE but stdout as stdio does (blocking).
// Not covered: wide-character input and output.

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include "shim.hpp"

extern char** environ;
extern "C" int __vsnprintf_chk(char* s, size_t n, int flag, size_t slen, const char* format, va_list ap);

using namespace grove;
using namespace grove::shim;

namespace {

// ---- glibc's FILE ------------------------------------------------------------------
// Flag bits of FILE::_flags (glibc libio/libio.h; the FILE layout and these
// values are part of glibc's ABI: the inline getc macros of old binaries
// depend on them). Only _IO_EOF_SEEN, _IO_ERR_SEEN and _IO_USER_LOCK are
// in a public header.
constexpr int kUnbuffered = 0x0002;
constexpr int kNoReads = 0x0004;
constexpr int kNoWrites = 0x0008;
constexpr int kEofSeen = 0x0010;
constexpr int kErrSeen = 0x0020;
constexpr int kLinked = 0x0080;
constexpr int kInBackup = 0x0100;  // reading ungetc's pushback area
constexpr int kLineBuf = 0x0200;
constexpr int kPutting = 0x0800;
constexpr int kIsFilebuf = 0x2000;

// stdio's own entry points, found in libc itself (this file defines
// __uflow and __underflow too).
using FileFn = int (*)(FILE*);
int real_uflow(FILE* f) noexcept {
    const auto fn = GROVE_LIBC("__uflow", FileFn);
    return fn(f);
}
int real_underflow(FILE* f) noexcept {
    const auto fn = GROVE_LIBC("__underflow", FileFn);
    return fn(f);
}
void real_doallocbuf(FILE* f) noexcept {
    using Fn = void (*)(FILE*);
    const auto fn = GROVE_LIBC("_IO_doallocbuf", Fn);
    fn(f);
}
char* real_fgets_unlocked(char* s, int n, FILE* f) noexcept {
    using Fn = char* (*)(char*, int, FILE*);
    const auto fn = GROVE_LIBC("fgets_unlocked", Fn);
    return fn(s, n, f);
}
std::size_t real_fread_unlocked(void* p, std::size_t size, std::size_t n, FILE* f) noexcept {
    using Fn = std::size_t (*)(void*, std::size_t, std::size_t, FILE*);
    const auto fn = GROVE_LIBC("fread_unlocked", Fn);
    return fn(p, size, n, f);
}

// glibc's getc_unlocked, which is all in the FILE's fields.
int take_byte(FILE* f) noexcept {
    return f->_IO_read_ptr < f->_IO_read_end ? static_cast<unsigned char>(*f->_IO_read_ptr++) : real_uflow(f);
}

// The hub if reads of f may park: a file-backed, byte-oriented FILE on a
// pipe or socket the user did not make non-blocking, in a fiber. nullptr:
// the call goes to stdio as it is.
Hub* coop_hub(FILE* f) noexcept {
    if (f == nullptr || f->_mode > 0 || (f->_flags & (kIsFilebuf | kNoReads)) != kIsFilebuf || f->_fileno < 0) {
        return nullptr;
    }
    ErrnoGuard keep;
    Hub* hub = nullptr;
    const std::uint32_t kind = fd_bits_for_call(f->_fileno, hub) & kKindMask;
    if (kind != kind_socket && kind != kind_stream) {
        return nullptr;
    }
    const FdMode m = fd_mode(f->_fileno);
    return m.nonblock || !m.readable ? nullptr : hub;
}

// Whether the next refill would read: no byte in the get area, none left
// in the main area behind ungetc's pushback, and no sticky EOF (glibc
// answers EOF then without reading).
bool needs_read(const FILE* f) noexcept {
    if (f->_IO_read_ptr < f->_IO_read_end) {
        return false;
    }
    if ((f->_flags & kInBackup) != 0 && f->_IO_save_base < f->_IO_save_end) {
        return false;
    }
    return (f->_flags & (kEofSeen | kNoReads)) == 0;
}

// ---- claims ---------------------------------------------------------------------------
// A FILE whose read parked, and the fibers of this thread waiting to read it.
// Taken before the first park of a call, released when the call returns;
// a thread's table is only touched by its own fibers, and a full table
// (more FILEs parked at once than kClaims) leaves later reads unclaimed.
struct Claim {
    FILE* file = nullptr;
    detail::FiberCore* owner = nullptr;
    detail::WaitList waiters;
};
constexpr int kClaims = 32;
thread_local Claim claims[kClaims];
thread_local int claims_used = 0;

Claim* find_claim(FILE* f) noexcept {
    for (Claim& c : claims) {
        if (c.file == f) {
            return &c;
        }
    }
    return nullptr;
}

// Parks until no other fiber of this thread holds a claim on f. False, with
// errno ECANCELED or ETIMEDOUT, if a kill or grove::Timeout ends the wait.
bool await_claim(Hub* hub, FILE* f) noexcept {
    while (claims_used > 0) {
        Claim* c = find_claim(f);
        if (c == nullptr || c->owner == hub->running()) {
            return true;
        }
        detail::Waiter w;
        c->waiters.push_back(w);
        if (hub->park(w, kNoDeadline, true) != detail::WakeReason::ready) {
            errno = detail::defer_interruption(w);
            return false;
        }
    }
    return true;
}

// One stdio input call on a cooperative FILE: waits out other fibers'
// claims, takes the FILE lock (unless the call is an _unlocked one), and
// releases both at the end. A call that could not start (killed while
// waiting) fails as if its read had: error flag set, errno ECANCELED or
// ETIMEDOUT.
class FileCall {
public:
    FileCall(Hub* hub, FILE* f, bool lock) noexcept : hub_(hub), f_(f) {
        if (!await_claim(hub, f)) {
            f->_flags |= kErrSeen;
            return;
        }
        ok_ = true;
        if (lock) {
            flockfile(f);
            locked_ = true;
        }
    }
    ~FileCall() {
        if (claim_ != nullptr) {
            claim_->file = nullptr;
            claim_->owner = nullptr;
            --claims_used;
            claim_->waiters.wake_all();
        }
        if (locked_) {
            funlockfile(f_);
        }
    }
    FileCall(const FileCall&) = delete;
    FileCall& operator=(const FileCall&) = delete;

    bool ok() const noexcept { return ok_; }
    Hub* hub() const noexcept { return hub_; }
    // Before the call's first park.
    void claim() noexcept {
        if (claim_ != nullptr || find_claim(f_) != nullptr) {
            return;  // ours already (an outer call of this fiber holds it)
        }
        for (Claim& c : claims) {
            if (c.file == nullptr) {
                c.file = f_;
                c.owner = hub_->running();
                ++claims_used;
                claim_ = &c;
                return;
            }
        }
    }

private:
    Hub* hub_;
    FILE* f_;
    Claim* claim_ = nullptr;
    bool ok_ = false;
    bool locked_ = false;
};

// Parks until f's fd is readable. False when the wait failed (a signal
// without SA_RESTART, a kill, a grove::Timeout, the fd closed): then, as
// when stdio's read fails, the error flag is set and errno says why.
bool await_readable(FileCall& call, FILE* f) noexcept {
    const int fd = f->_fileno;
    const int saved = errno;
    for (;;) {
        struct pollfd p{fd, POLLIN, 0};
        if (sys::poll(&p, 1, 0) != 0) {
            errno = saved;
            return true;
        }
        call.claim();
        if (wait_fd(call.hub(), fd, POLLIN, kNoDeadline) != Wait::ready) {
            f->_flags |= kErrSeen;
            return false;
        }
    }
}

// glibc's __underflow (peek: the next byte, left in the buffer) or __uflow
// (take it), parking first when stdio would read and could block. What
// glibc does ahead of its read is done ahead of the wait, so output the
// reader's peer waits for is not held back: the FILE's own pending output
// (a "r+" stream switching to reading), and stdout's line buffer before a
// line-buffered or unbuffered stream reads.
int refill(FileCall& call, FILE* f, bool take) noexcept {
    if (needs_read(f)) {
        if ((f->_flags & kPutting) != 0 && f->_IO_write_ptr > f->_IO_write_base && fflush_unlocked(f) == EOF) {
            return EOF;  // as glibc's switch to reading fails: the write's error is set
        }
        if ((f->_flags & (kLineBuf | kUnbuffered)) != 0 && stdout != nullptr &&
            (stdout->_flags & (kLinked | kNoWrites | kLineBuf)) == (kLinked | kLineBuf)) {
            fflush(stdout);
        }
        if (!await_readable(call, f)) {
            return EOF;
        }
    }
    return take ? real_uflow(f) : real_underflow(f);
}

// glibc's _IO_switch_to_main_get_area: back from ungetc's pushback to the
// rest of the buffer.
void switch_to_main_area(FILE* f) noexcept {
    f->_flags &= ~kInBackup;
    char* end = f->_IO_read_end;
    f->_IO_read_end = f->_IO_save_end;
    f->_IO_save_end = end;
    char* base = f->_IO_read_base;
    f->_IO_read_base = f->_IO_save_base;
    f->_IO_save_base = base;
    f->_IO_read_ptr = f->_IO_read_base;
}

int coop_getc(FILE* f, bool lock) noexcept {
    if (f != nullptr && f->_IO_read_ptr < f->_IO_read_end) {
        return lock ? sys::getc(f) : take_byte(f);  // no read: stdio as it is
    }
    Hub* hub = coop_hub(f);
    if (hub == nullptr) {
        return lock ? sys::getc(f) : take_byte(f);
    }
    FileCall call(hub, f, lock);
    if (!call.ok()) {
        return EOF;
    }
    return f->_IO_read_ptr < f->_IO_read_end ? static_cast<unsigned char>(*f->_IO_read_ptr++)
                                              : refill(call, f, true);
}

// glibc's _IO_getline_info with extract_delim 1: up to n bytes, through
// the first delim (kept). Returns the count.
std::size_t get_line(FileCall& call, FILE* f, char* buf, std::size_t n, int delim) noexcept {
    if (f->_mode == 0) {
        fwide(f, -1);
    }
    char* ptr = buf;
    while (n != 0) {
        std::ptrdiff_t len = f->_IO_read_end - f->_IO_read_ptr;
        if (len <= 0) {
            const int c = refill(call, f, true);
            if (c == EOF) {
                break;
            }
            *ptr++ = static_cast<char>(c);
            if (c == delim) {
                return static_cast<std::size_t>(ptr - buf);
            }
            --n;
            continue;
        }
        std::size_t take = std::min(static_cast<std::size_t>(len), n);
        const void* t = std::memchr(f->_IO_read_ptr, delim, take);
        if (t != nullptr) {
            take = static_cast<std::size_t>(static_cast<const char*>(t) - f->_IO_read_ptr) + 1;
            std::memcpy(ptr, f->_IO_read_ptr, take);
            f->_IO_read_ptr += take;
            return static_cast<std::size_t>(ptr - buf) + take;
        }
        std::memcpy(ptr, f->_IO_read_ptr, take);
        f->_IO_read_ptr += take;
        ptr += take;
        n -= take;
    }
    return static_cast<std::size_t>(ptr - buf);
}

// glibc's fgets, on a cooperative FILE.
char* coop_fgets(char* buf, int n, FILE* f, bool lock) noexcept {
    Hub* hub = coop_hub(f);
    if (hub == nullptr) {
        return lock ? sys::fgets(buf, n, f) : real_fgets_unlocked(buf, n, f);
    }
    if (n <= 0) {
        return nullptr;
    }
    if (n == 1) {
        buf[0] = '\0';
        return buf;
    }
    FileCall call(hub, f, lock);
    if (!call.ok()) {
        return nullptr;
    }
    // An error flag set before the call does not fail it; only a new one.
    const int old_error = f->_flags & kErrSeen;
    f->_flags &= ~kErrSeen;
    const std::size_t count = get_line(call, f, buf, static_cast<std::size_t>(n - 1), '\n');
    char* result = nullptr;
    if (count != 0 && ((f->_flags & kErrSeen) == 0 || errno == EAGAIN)) {
        buf[count] = '\0';
        result = buf;
    }
    f->_flags |= old_error;
    return result;
}

// glibc's _IO_file_xsgetn: n bytes into s, through the buffer for reads
// smaller than it, straight into s for larger ones. Returns the count.
std::size_t get_bytes(FileCall& call, FILE* f, char* s, std::size_t n) noexcept {
    std::size_t want = n;
    if (f->_IO_buf_base == nullptr) {
        if (f->_IO_save_base != nullptr) {
            std::free(f->_IO_save_base);
            f->_flags &= ~kInBackup;
        }
        real_doallocbuf(f);
    }
    while (want > 0) {
        const auto have = static_cast<std::size_t>(f->_IO_read_end - f->_IO_read_ptr);
        if (want <= have) {
            std::memcpy(s, f->_IO_read_ptr, want);
            f->_IO_read_ptr += want;
            want = 0;
            break;
        }
        if (have > 0) {
            std::memcpy(s, f->_IO_read_ptr, have);
            s += have;
            want -= have;
            f->_IO_read_ptr += have;
        }
        if ((f->_flags & kInBackup) != 0) {
            switch_to_main_area(f);
            continue;
        }
        if (f->_IO_buf_base != nullptr && want < static_cast<std::size_t>(f->_IO_buf_end - f->_IO_buf_base)) {
            if (refill(call, f, false) == EOF) {
                break;
            }
            continue;
        }
        // A direct read, as glibc makes it: whole blocks, the buffer emptied
        // first, no EOF check (a tty can be read past an earlier EOF).
        f->_IO_read_base = f->_IO_read_ptr = f->_IO_read_end = f->_IO_buf_base;
        f->_IO_write_base = f->_IO_write_ptr = f->_IO_write_end = f->_IO_buf_base;
        std::size_t count = want;
        if (f->_IO_buf_base != nullptr) {
            const auto block = static_cast<std::size_t>(f->_IO_buf_end - f->_IO_buf_base);
            if (block >= 128) {
                count -= want % block;
            }
        }
        if (!await_readable(call, f)) {
            break;
        }
        const ssize_t r = sys::read(f->_fileno, s, count);
        if (r <= 0) {
            f->_flags |= r == 0 ? kEofSeen : kErrSeen;
            break;
        }
        s += r;
        want -= static_cast<std::size_t>(r);
        if (f->_offset != -1) {
            f->_offset += r;
        }
    }
    return n - want;
}

std::size_t coop_fread(void* p, std::size_t size, std::size_t n, FILE* f, bool lock) noexcept {
    Hub* hub = coop_hub(f);
    if (hub == nullptr) {
        return lock ? sys::fread(p, size, n, f) : real_fread_unlocked(p, size, n, f);
    }
    const std::size_t bytes = size * n;
    if (bytes == 0) {
        return 0;
    }
    FileCall call(hub, f, lock);
    if (!call.ok()) {
        return 0;
    }
    const std::size_t got = get_bytes(call, f, static_cast<char*>(p), bytes);
    return got == bytes ? n : got / size;
}

// glibc's getdelim, on a cooperative FILE.
ssize_t coop_getdelim(char** line, std::size_t* n, int delim, FILE* f) noexcept {
    Hub* hub = coop_hub(f);
    if (hub == nullptr) {
        return sys::getdelim(line, n, delim, f);
    }
    if (line == nullptr || n == nullptr) {
        errno = EINVAL;
        return -1;
    }
    FileCall call(hub, f, true);
    if (!call.ok() || (f->_flags & kErrSeen) != 0) {
        return -1;
    }
    if (*line == nullptr || *n == 0) {
        *n = 120;
        *line = static_cast<char*>(std::malloc(*n));
        if (*line == nullptr) {
            return -1;
        }
    }
    std::ptrdiff_t len = f->_IO_read_end - f->_IO_read_ptr;
    if (len <= 0) {
        if (refill(call, f, false) == EOF) {
            return -1;
        }
        len = f->_IO_read_end - f->_IO_read_ptr;
    }
    ssize_t cur = 0;
    for (;;) {
        const void* t = std::memchr(f->_IO_read_ptr, delim, static_cast<std::size_t>(len));
        if (t != nullptr) {
            len = (static_cast<const char*>(t) - f->_IO_read_ptr) + 1;
        }
        if (len >= SSIZE_MAX - cur) {
            errno = EOVERFLOW;
            return -1;
        }
        std::size_t needed = static_cast<std::size_t>(cur + len + 1);
        if (needed > *n) {
            if (needed < 2 * *n) {
                needed = 2 * *n;
            }
            auto* grown = static_cast<char*>(std::realloc(*line, needed));
            if (grown == nullptr) {
                return -1;
            }
            *line = grown;
            *n = needed;
        }
        std::memcpy(*line + cur, f->_IO_read_ptr, static_cast<std::size_t>(len));
        f->_IO_read_ptr += len;
        cur += len;
        if (t != nullptr || refill(call, f, false) == EOF) {
            break;
        }
        len = f->_IO_read_end - f->_IO_read_ptr;
    }
    (*line)[cur] = '\0';
    return cur;
}

// ---- output ---------------------------------------------------------------------------
// glibc writes through an internal write no interposer sees, so on a
// cooperative FILE the output functions are rebuilt here, step for step as
// glibc 2.36's _IO_new_file_xsputn, _IO_new_file_overflow, new_do_write and
// _IO_new_file_write run them, with each write made through the interposed
// write(): the fiber parks whenever the pipe or socket is full, however
// large the write. The buffer, the flags, the values and errno are glibc's.
// A call that stdio can serve from the buffer alone goes to stdio as it is.

constexpr int kAppending = 0x1000;

int real_overflow(FILE* f, int ch) noexcept {
    const auto fn = GROVE_LIBC("__overflow", int (*)(FILE*, int));
    return fn(f, ch);
}

// The hub if writes to f may park: a file-backed FILE open for writing, not
// wide-oriented, on a pipe or socket the user did not make non-blocking, in
// a fiber. nullptr: the call goes to stdio as it is.
Hub* coop_out_hub(FILE* f) noexcept {
    if (f == nullptr || f->_mode > 0 || (f->_flags & (kIsFilebuf | kNoWrites)) != kIsFilebuf || f->_fileno < 0 ||
        hub_for_call() == nullptr) {
        return nullptr;
    }
    ErrnoGuard keep;
    Hub* hub = nullptr;
    const std::uint32_t kind = fd_bits_for_call(f->_fileno, hub) & kKindMask;
    if (kind != kind_socket && kind != kind_stream) {
        return nullptr;
    }
    const FdMode m = fd_mode(f->_fileno);
    return m.nonblock || !m.writable ? nullptr : hub;
}

// No other fiber of this thread is inside a call on f that parked.
bool unclaimed(FILE* f) noexcept {
    return claims_used == 0 || find_claim(f) == nullptr;
}

// Whether glibc's xsputn would take n bytes into the buffer without writing.
bool fits(const FILE* f, const char* s, std::size_t n) noexcept {
    if ((f->_flags & kPutting) == 0 || f->_IO_write_base == nullptr) {
        return false;
    }
    if ((f->_flags & kLineBuf) != 0) {
        return n <= static_cast<std::size_t>(f->_IO_buf_end - f->_IO_write_ptr) && std::memchr(s, '\n', n) == nullptr;
    }
    return n <= static_cast<std::size_t>(f->_IO_write_end - f->_IO_write_ptr);
}

// Whether f holds output that a flush would write.
bool pending_output(const FILE* f) noexcept {
    return f->_IO_write_ptr > f->_IO_write_base;
}

// glibc's _IO_new_file_write: all n bytes, through the interposed write.
// Stops at an error (the error flag set), and after a short count that a
// kill or grove::Timeout of this fiber caused (then also with the error
// flag, errno ECANCELED or ETIMEDOUT); a signal's short count goes on, as
// glibc's loop does.
std::size_t write_all(FileCall& call, FILE* f, const char* data, std::size_t n) noexcept {
    call.claim();
    detail::FiberCore* self = call.hub()->running();
    const bool was_killed = self->kill_deferred;
    const Timeout* was_timed_out = self->timeout_deferred;
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::write(f->_fileno, data + done, n - done);
        if (r <= 0) {
            f->_flags |= kErrSeen;
            break;
        }
        done += static_cast<std::size_t>(r);
        if (done < n && (self->kill_deferred != was_killed || self->timeout_deferred != was_timed_out)) {
            errno = self->kill_deferred != was_killed ? ECANCELED : ETIMEDOUT;
            f->_flags |= kErrSeen;
            break;
        }
    }
    if (f->_offset >= 0) {
        f->_offset += static_cast<off64_t>(done);
    }
    return done;
}

// glibc's new_do_write: n bytes from data (the buffer's pending output, or
// the caller's memory), then the buffer is empty. Returns the count written.
std::size_t new_do_write(FileCall& call, FILE* f, const char* data, std::size_t n) noexcept {
    if ((f->_flags & kAppending) != 0) {
        f->_offset = -1;
    } else if (f->_IO_read_end != f->_IO_write_base) {
        const off64_t pos = lseek64(f->_fileno, f->_IO_write_base - f->_IO_read_end, SEEK_CUR);
        if (pos == -1) {
            return 0;  // as glibc: nothing written, the buffer kept
        }
        f->_offset = pos;
    }
    // While this write parks, the inline putc macros of other fibers find
    // no room and call __overflow, which waits for this call to end.
    f->_IO_write_end = f->_IO_write_ptr;
    const std::size_t count = write_all(call, f, data, n);
    if (f->_cur_column != 0 && count != 0) {
        // glibc's _IO_adjust_column, for the old column-tracking streams.
        unsigned column = f->_cur_column - 1u + static_cast<unsigned>(count);
        for (const char* p = data + count; p > data;) {
            if (*--p == '\n') {
                column = static_cast<unsigned>(data + count - p - 1);
                break;
            }
        }
        f->_cur_column = static_cast<unsigned short>(column + 1);
    }
    f->_IO_read_base = f->_IO_read_ptr = f->_IO_read_end = f->_IO_buf_base;
    f->_IO_write_base = f->_IO_write_ptr = f->_IO_buf_base;
    f->_IO_write_end = (f->_flags & (kLineBuf | kUnbuffered)) != 0 ? f->_IO_buf_base : f->_IO_buf_end;
    return count;
}

// glibc's _IO_do_write: 0, or EOF when not all of it was written.
int do_write(FileCall& call, FILE* f, const char* data, std::size_t n) noexcept {
    return n == 0 || new_do_write(call, f, data, n) == n ? 0 : EOF;
}

int flush_pending(FileCall& call, FILE* f) noexcept {
    return do_write(call, f, f->_IO_write_base, static_cast<std::size_t>(f->_IO_write_ptr - f->_IO_write_base));
}

// glibc's _IO_new_file_overflow: ch into a full (or not yet writing)
// buffer, or with EOF a flush. The switch to writing (buffer allocation,
// leaving the get area) is glibc's own: it writes nothing, as nothing is
// pending yet at that point.
int overflow(FileCall& call, FILE* f, int ch) noexcept {
    if ((f->_flags & kPutting) == 0 || f->_IO_write_base == nullptr) {
        real_overflow(f, EOF);
    }
    if (ch == EOF) {
        return flush_pending(call, f);
    }
    if (f->_IO_write_ptr == f->_IO_buf_end && flush_pending(call, f) == EOF) {
        return EOF;
    }
    *f->_IO_write_ptr++ = static_cast<char>(ch);
    if ((f->_flags & kUnbuffered) != 0 || ((f->_flags & kLineBuf) != 0 && ch == '\n')) {
        if (flush_pending(call, f) == EOF) {
            return EOF;
        }
    }
    return ch;
}

// glibc's _IO_putc_unlocked on a cooperative FILE (__overflow orients it).
int put_char(FileCall& call, FILE* f, int c) noexcept {
    if (f->_IO_write_ptr < f->_IO_write_end) {
        *f->_IO_write_ptr++ = static_cast<char>(c);
        return static_cast<unsigned char>(c);
    }
    if (f->_mode == 0) {
        fwide(f, -1);
    }
    return overflow(call, f, static_cast<unsigned char>(c));
}

// glibc's _IO_default_xsputn: what the buffer takes, a byte through
// overflow whenever it is full. Returns the count taken.
std::size_t default_put(FileCall& call, FILE* f, const char* s, std::size_t n) noexcept {
    std::size_t more = n;
    for (;;) {
        if (f->_IO_write_ptr < f->_IO_write_end) {
            const std::size_t count = std::min(more, static_cast<std::size_t>(f->_IO_write_end - f->_IO_write_ptr));
            std::memcpy(f->_IO_write_ptr, s, count);
            f->_IO_write_ptr += count;
            s += count;
            more -= count;
        }
        if (more == 0 || overflow(call, f, static_cast<unsigned char>(*s++)) == EOF) {
            break;
        }
        --more;
    }
    return n - more;
}

constexpr std::size_t kPutFailed = static_cast<std::size_t>(EOF);

// glibc's _IO_new_file_xsputn: the buffer takes what fits (up to the last
// newline of a line-buffered FILE); past that the buffer is flushed, whole
// blocks are written straight from s, and the rest is buffered. Returns the
// count taken, or kPutFailed when all of it was buffered but the flush
// that had to follow failed.
std::size_t put_bytes(FileCall& call, FILE* f, const char* s, std::size_t n) noexcept {
    if (n == 0) {
        return 0;
    }
    std::size_t to_do = n;
    std::size_t must_flush = 0;
    std::size_t count = 0;
    if ((f->_flags & kLineBuf) != 0 && (f->_flags & kPutting) != 0) {
        count = static_cast<std::size_t>(f->_IO_buf_end - f->_IO_write_ptr);
        if (count >= n) {
            for (const char* p = s + n; p > s;) {
                if (*--p == '\n') {
                    count = static_cast<std::size_t>(p - s) + 1;
                    must_flush = 1;
                    break;
                }
            }
        }
    } else if (f->_IO_write_end > f->_IO_write_ptr) {
        count = static_cast<std::size_t>(f->_IO_write_end - f->_IO_write_ptr);
    }
    if (count > 0) {
        count = std::min(count, to_do);
        std::memcpy(f->_IO_write_ptr, s, count);
        f->_IO_write_ptr += count;
        s += count;
        to_do -= count;
    }
    if (to_do + must_flush > 0) {
        if (overflow(call, f, EOF) == EOF) {
            return to_do == 0 ? kPutFailed : n - to_do;
        }
        const auto block = static_cast<std::size_t>(f->_IO_buf_end - f->_IO_buf_base);
        const std::size_t direct = to_do - (block >= 128 ? to_do % block : 0);
        if (direct != 0) {
            count = new_do_write(call, f, s, direct);
            to_do -= count;
            if (count < direct) {
                return n - to_do;
            }
        }
        if (to_do != 0) {
            to_do -= default_put(call, f, s + direct, to_do);
        }
    }
    return n - to_do;
}

using FwriteFn = std::size_t (*)(const void*, std::size_t, std::size_t, FILE*);
using FputsFn = int (*)(const char*, FILE*);
using FlushFn = int (*)(FILE*);

std::size_t coop_fwrite(const void* p, std::size_t size, std::size_t n, FILE* f, bool lock) noexcept {
    const auto locked = GROVE_LIBC("fwrite", FwriteFn);
    const auto unlocked = GROVE_LIBC("fwrite_unlocked", FwriteFn);
    const std::size_t request = size * n;
    Hub* hub = nullptr;
    if (request == 0 || f == nullptr || (fits(f, static_cast<const char*>(p), request) && unclaimed(f)) ||
        (hub = coop_out_hub(f)) == nullptr) {
        return (lock ? locked : unlocked)(p, size, n, f);
    }
    FileCall call(hub, f, lock);
    if (!call.ok()) {
        return 0;
    }
    if (f->_mode == 0) {
        fwide(f, -1);
    }
    const std::size_t written = put_bytes(call, f, static_cast<const char*>(p), request);
    return written == request || written == kPutFailed ? n : written / size;
}

int coop_fputs(const char* s, FILE* f, bool lock) noexcept {
    const auto locked = GROVE_LIBC("fputs", FputsFn);
    const auto unlocked = GROVE_LIBC("fputs_unlocked", FputsFn);
    Hub* hub = nullptr;
    const std::size_t len = s != nullptr ? std::strlen(s) : 0;
    if (s == nullptr || f == nullptr || (fits(f, s, len) && unclaimed(f)) || (hub = coop_out_hub(f)) == nullptr) {
        return (lock ? locked : unlocked)(s, f);
    }
    FileCall call(hub, f, lock);
    if (!call.ok()) {
        return EOF;
    }
    if (f->_mode == 0) {
        fwide(f, -1);
    }
    return put_bytes(call, f, s, len) == len ? 1 : EOF;
}

int coop_putc(int c, FILE* f, bool lock) noexcept {
    const auto locked = GROVE_LIBC("fputc", int (*)(int, FILE*));
    Hub* hub = nullptr;
    if (f == nullptr || (f->_IO_write_ptr < f->_IO_write_end && unclaimed(f)) || (hub = coop_out_hub(f)) == nullptr) {
        if (lock) {
            return locked(c, f);
        }
        if (f->_IO_write_ptr < f->_IO_write_end) {
            *f->_IO_write_ptr++ = static_cast<char>(c);
            return static_cast<unsigned char>(c);
        }
        return real_overflow(f, static_cast<unsigned char>(c));
    }
    FileCall call(hub, f, lock);
    return call.ok() ? put_char(call, f, c) : EOF;
}

int coop_puts(const char* s) noexcept {
    const auto real = GROVE_LIBC("puts", int (*)(const char*));
    FILE* f = stdout;
    Hub* hub = nullptr;
    const std::size_t len = s != nullptr ? std::strlen(s) : 0;
    // The fast case needs room for the newline too.
    const bool stores = s != nullptr && f != nullptr && fits(f, s, len) && f->_IO_write_ptr + len < f->_IO_write_end;
    if (s == nullptr || (stores && unclaimed(f)) || (hub = coop_out_hub(f)) == nullptr) {
        return real(s);
    }
    FileCall call(hub, f, true);
    if (!call.ok()) {
        return EOF;
    }
    if (f->_mode == 0) {
        fwide(f, -1);
    }
    if (put_bytes(call, f, s, len) != len || put_char(call, f, '\n') == EOF) {
        return EOF;
    }
    return static_cast<int>(std::min<std::size_t>(INT_MAX, len + 1));
}

// glibc's fflush: the pending output (written cooperatively here), then
// the rest of its sync, which has nothing left to write.
int coop_fflush(FILE* f, bool lock) noexcept {
    const auto locked = GROVE_LIBC("fflush", FlushFn);
    const auto unlocked = GROVE_LIBC("fflush_unlocked", FlushFn);
    Hub* hub = nullptr;
    if (f == nullptr) {
        // All streams. Other fibers' calls that parked mid-write end first
        // (stdio would write their buffers again); stdout's output is
        // written cooperatively; then stdio itself writes any other FILE's
        // output as it is.
        Hub* waiting = claims_used > 0 ? Hub::current_if_any() : nullptr;
        while (waiting != nullptr && !waiting->in_hub_fiber()) {
            FILE* busy = nullptr;
            for (const Claim& c : claims) {
                if (c.file != nullptr && c.owner != waiting->running()) {
                    busy = c.file;
                }
            }
            if (busy == nullptr) {
                break;
            }
            if (!await_claim(waiting, busy)) {
                return EOF;  // killed or timed out while waiting
            }
        }
        int failed = 0;
        if (stdout != nullptr && pending_output(stdout) && coop_out_hub(stdout) != nullptr &&
            coop_fflush(stdout, true) == EOF) {
            failed = errno;
        }
        const int r = locked(nullptr);
        if (r == 0 && failed != 0) {
            errno = failed;  // as stdio reports a stream that failed
            return EOF;
        }
        return r;
    }
    if ((!pending_output(f) && unclaimed(f)) || (hub = coop_out_hub(f)) == nullptr) {
        return (lock ? locked : unlocked)(f);
    }
    FileCall call(hub, f, lock);
    if (!call.ok()) {
        return EOF;
    }
    if (pending_output(f) && flush_pending(call, f) == EOF) {
        return EOF;
    }
    return unlocked(f);
}

// The printf family on a cooperative FILE formats first, into a stack
// buffer (on the heap when longer: the arguments are then formatted
// twice), and puts the text through put_bytes.
class Formatted {
public:
    // flag < 0: the plain vsnprintf; else the fortified one with that flag.
    Formatted(int flag, const char* format, va_list ap) noexcept {
        va_list again;
        va_copy(again, ap);
        len_ = format_into(flag, stack_, sizeof stack_, format, ap);
        if (len_ >= static_cast<int>(sizeof stack_)) {
            heap_ = static_cast<char*>(std::malloc(static_cast<std::size_t>(len_) + 1));
            if (heap_ == nullptr) {
                errno = ENOMEM;
                len_ = -1;
            } else {
                len_ = format_into(flag, heap_, static_cast<std::size_t>(len_) + 1, format, again);
            }
        }
        va_end(again);
    }
    ~Formatted() { std::free(heap_); }
    Formatted(const Formatted&) = delete;
    Formatted& operator=(const Formatted&) = delete;

    int size() const noexcept { return len_; }  // < 0: failed, errno says why
    const char* data() const noexcept { return heap_ != nullptr ? heap_ : stack_; }

private:
    static int format_into(int flag, char* buf, std::size_t n, const char* format, va_list ap) noexcept {
        return flag < 0 ? std::vsnprintf(buf, n, format, ap) : __vsnprintf_chk(buf, n, flag, n, format, ap);
    }
    char stack_[1024];
    char* heap_ = nullptr;
    int len_ = -1;
};

using VfprintfFn = int (*)(FILE*, const char*, va_list);
using VfprintfChkFn = int (*)(FILE*, int, const char*, va_list);

// vfprintf (flag < 0) or __vfprintf_chk.
int coop_vfprintf(FILE* f, int flag, const char* format, va_list ap) noexcept {
    const auto plain = GROVE_LIBC("vfprintf", VfprintfFn);
    const auto checked = GROVE_LIBC("__vfprintf_chk", VfprintfChkFn);
    Hub* hub = coop_out_hub(f);
    if (hub == nullptr) {
        return flag < 0 ? plain(f, format, ap) : checked(f, flag, format, ap);
    }
    FileCall call(hub, f, true);
    if (!call.ok()) {
        return -1;
    }
    if (f->_mode == 0) {
        fwide(f, -1);
    }
    const Formatted text(flag, format, ap);
    if (text.size() < 0) {
        return -1;
    }
    const auto n = static_cast<std::size_t>(text.size());
    return put_bytes(call, f, text.data(), n) == n ? text.size() : -1;
}

using VdprintfFn = int (*)(int, const char*, va_list);
using VdprintfChkFn = int (*)(int, int, const char*, va_list);

// vdprintf (flag < 0) or __vdprintf_chk: formatted, then written whole
// through the interposed write; any failure makes it -1, as stdio's.
int coop_vdprintf(int fd, int flag, const char* format, va_list ap) noexcept {
    const auto plain = GROVE_LIBC("vdprintf", VdprintfFn);
    const auto checked = GROVE_LIBC("__vdprintf_chk", VdprintfChkFn);
    Hub* hub = nullptr;
    bool coop = false;
    if (hub_for_call() != nullptr) {
        ErrnoGuard keep;
        const std::uint32_t kind = fd_bits_for_call(fd, hub) & kKindMask;
        if (kind == kind_socket || kind == kind_stream) {
            const FdMode m = fd_mode(fd);
            coop = !m.nonblock && m.writable;
        }
    }
    if (!coop) {
        return flag < 0 ? plain(fd, format, ap) : checked(fd, flag, format, ap);
    }
    const Formatted text(flag, format, ap);
    if (text.size() < 0) {
        return -1;
    }
    detail::FiberCore* self = hub->running();
    const bool was_killed = self->kill_deferred;
    const Timeout* was_timed_out = self->timeout_deferred;
    const auto n = static_cast<std::size_t>(text.size());
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::write(fd, text.data() + done, n - done);
        if (r <= 0) {
            return -1;
        }
        done += static_cast<std::size_t>(r);
        if (done < n && (self->kill_deferred != was_killed || self->timeout_deferred != was_timed_out)) {
            errno = self->kill_deferred != was_killed ? ECANCELED : ETIMEDOUT;
            return -1;
        }
    }
    return text.size();
}

// popen'd streams and their children (a short list, under a spin lock:
// this runs inside arbitrary programs, with no allocator assumptions).
struct Child {
    FILE* stream;
    int fd;
    pid_t pid;
    Child* next;
};
Child* children = nullptr;
std::atomic_flag children_lock = ATOMIC_FLAG_INIT;

struct Locked {
    Locked() noexcept {
        while (children_lock.test_and_set(std::memory_order_acquire)) {
        }
    }
    ~Locked() { children_lock.clear(std::memory_order_release); }
};

// Waits for pid cooperatively (the interposed waitpid), through EINTR.
int wait_status(pid_t pid) noexcept {
    int status = 0;
    for (;;) {
        if (waitpid(pid, &status, 0) == pid) {
            return status;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

// SIGINT and SIGQUIT are ignored while any system() runs, as glibc does.
std::atomic<int> system_users{0};
struct sigaction saved_int;
struct sigaction saved_quit;

// ---- the scanf family ---------------------------------------------------------------
// glibc's scanf refills through internal calls, so it runs here on a proxy
// FILE (fopencookie) whose reads take bytes from the real FILE's buffer,
// refilling it cooperatively (refill), never more than that buffer holds at
// once. When scanf is done, what the proxy holds unread (its lookahead,
// pushed back with ungetc) is still just behind the real FILE's read
// pointer, which steps back over it: the real FILE ends as if scanf had
// read it directly. Flags: the refills set the real FILE's EOF and error
// flags as stdio does; the proxy's own reflect them to scanf.
struct ScanSource {
    FileCall* call;
    FILE* f;
};

ssize_t scan_source_read(void* cookie, char* buf, std::size_t n) {
    auto* src = static_cast<ScanSource*>(cookie);
    FILE* f = src->f;
    if (f->_IO_read_ptr >= f->_IO_read_end) {
        const int had_error = f->_flags & kErrSeen;
        if (refill(*src->call, f, false) == EOF) {
            return had_error == 0 && (f->_flags & kErrSeen) != 0 ? -1 : 0;
        }
    }
    const std::size_t k = std::min(n, static_cast<std::size_t>(f->_IO_read_end - f->_IO_read_ptr));
    std::memcpy(buf, f->_IO_read_ptr, k);
    f->_IO_read_ptr += k;
    return static_cast<ssize_t>(k);
}

using VscanFn = int (*)(FILE*, const char*, va_list);

// `c99`: the caller is one of the __isoc99_ forms, which differ from the
// plain ones in how they read %a (C99 float, not GNU allocation).
int coop_vscan(bool c99, FILE* f, const char* format, va_list ap) noexcept {
    const auto gnu_fn = GROVE_LIBC("vfscanf", VscanFn);
    const auto c99_fn = GROVE_LIBC("__isoc99_vfscanf", VscanFn);
    const VscanFn real = c99 ? c99_fn : gnu_fn;
    Hub* hub = coop_hub(f);
    if (hub == nullptr) {
        return real(f, format, ap);
    }
    FileCall call(hub, f, true);
    if (!call.ok()) {
        return EOF;
    }
    if (f->_mode == 0) {
        fwide(f, -1);  // scanf makes the stream byte-oriented
    }
    ScanSource src{&call, f};
    cookie_io_functions_t io{};
    io.read = &scan_source_read;
    FILE* proxy = fopencookie(&src, "r", io);
    if (proxy == nullptr) {
        return EOF;  // ENOMEM
    }
    // The proxy's buffer lives here: nothing to allocate but the FILE.
    char buffer[512];
    setvbuf(proxy, buffer, _IOFBF, sizeof buffer);
    const int r = real(proxy, format, ap);
    const int saved = errno;
    // Give back what the proxy read but scanf did not take.
    if ((proxy->_flags & kInBackup) == 0) {
        const std::ptrdiff_t unread = proxy->_IO_read_end - proxy->_IO_read_ptr;
        if (unread > 0 && unread <= f->_IO_read_ptr - f->_IO_read_base) {
            f->_IO_read_ptr -= unread;
        }
        proxy->_IO_read_ptr = proxy->_IO_read_end;
    } else {
        for (char* p = proxy->_IO_read_end; p > proxy->_IO_read_ptr;) {
            ungetc(static_cast<unsigned char>(*--p), f);
        }
    }
    fclose(proxy);
    errno = saved;
    return r;
}

}  // namespace

extern "C" {

// In C++, <stdio.h> maps the plain names to the __isoc99_ ones; the plain
// symbols (the GNU %a) are defined under their own assembler names.
int plain_vfscanf(FILE* f, const char* format, va_list ap) __asm__("vfscanf");
int plain_vscanf(const char* format, va_list ap) __asm__("vscanf");
int plain_fscanf(FILE* f, const char* format, ...) __asm__("fscanf");
int plain_scanf(const char* format, ...) __asm__("scanf");
int __isoc99_vfscanf(FILE* f, const char* format, va_list ap);
int __isoc99_vscanf(const char* format, va_list ap);
int __isoc99_fscanf(FILE* f, const char* format, ...);
int __isoc99_scanf(const char* format, ...);

int plain_vfscanf(FILE* f, const char* format, va_list ap) {
    return coop_vscan(false, f, format, ap);
}

int __isoc99_vfscanf(FILE* f, const char* format, va_list ap) {
    return coop_vscan(true, f, format, ap);
}

int plain_vscanf(const char* format, va_list ap) {
    return coop_vscan(false, stdin, format, ap);
}

int __isoc99_vscanf(const char* format, va_list ap) {
    return coop_vscan(true, stdin, format, ap);
}

int plain_fscanf(FILE* f, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vscan(false, f, format, ap);
    va_end(ap);
    return r;
}

int __isoc99_fscanf(FILE* f, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vscan(true, f, format, ap);
    va_end(ap);
    return r;
}

int plain_scanf(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vscan(false, stdin, format, ap);
    va_end(ap);
    return r;
}

int __isoc99_scanf(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vscan(true, stdin, format, ap);
    va_end(ap);
    return r;
}

char* fgets(char* s, int n, FILE* f) {
    return coop_fgets(s, n, f, true);
}

char* fgets_unlocked(char* s, int n, FILE* f) {
    return coop_fgets(s, n, f, false);
}

int fgetc(FILE* f) {
    return coop_getc(f, true);
}

int getc(FILE* f) {
    return coop_getc(f, true);
}

int _IO_getc(FILE* f) {
    return coop_getc(f, true);
}

int getchar(void) {
    return coop_getc(stdin, true);
}

int fgetc_unlocked(FILE* f) {
    return coop_getc(f, false);
}

int getc_unlocked(FILE* f) {
    return coop_getc(f, false);
}

int getchar_unlocked(void) {
    return coop_getc(stdin, false);
}

// What the inline getc_unlocked/peekc macros call when the buffer is
// empty: the caller holds the FILE lock if it wants one.
int __uflow(FILE* f) {
    Hub* hub = f != nullptr && needs_read(f) ? coop_hub(f) : nullptr;
    if (hub == nullptr) {
        return real_uflow(f);
    }
    FileCall call(hub, f, false);
    return call.ok() ? refill(call, f, true) : EOF;
}

int __underflow(FILE* f) {
    Hub* hub = f != nullptr && needs_read(f) ? coop_hub(f) : nullptr;
    if (hub == nullptr) {
        return real_underflow(f);
    }
    FileCall call(hub, f, false);
    return call.ok() ? refill(call, f, false) : EOF;
}

size_t fread(void* p, size_t size, size_t n, FILE* f) {
    return coop_fread(p, size, n, f, true);
}

size_t fread_unlocked(void* p, size_t size, size_t n, FILE* f) {
    return coop_fread(p, size, n, f, false);
}

ssize_t getdelim(char** line, size_t* n, int delim, FILE* f) {
    return coop_getdelim(line, n, delim, f);
}

ssize_t __getdelim(char** line, size_t* n, int delim, FILE* f) {
    return coop_getdelim(line, n, delim, f);
}

ssize_t getline(char** line, size_t* n, FILE* f) {
    return coop_getdelim(line, n, '\n', f);
}

char* __fgets_chk(char* s, size_t size, int n, FILE* f) {
    if (static_cast<size_t>(n) > size) {
        __builtin_trap();
    }
    return fgets(s, n, f);
}

char* __fgets_unlocked_chk(char* s, size_t size, int n, FILE* f) {
    if (static_cast<size_t>(n) > size) {
        __builtin_trap();
    }
    return fgets_unlocked(s, n, f);
}

size_t __fread_chk(void* p, size_t ptrlen, size_t size, size_t n, FILE* f) {
    if (size != 0 && n > ptrlen / size) {
        __builtin_trap();
    }
    return fread(p, size, n, f);
}

size_t __fread_unlocked_chk(void* p, size_t ptrlen, size_t size, size_t n, FILE* f) {
    if (size != 0 && n > ptrlen / size) {
        __builtin_trap();
    }
    return fread_unlocked(p, size, n, f);
}

size_t fwrite(const void* p, size_t size, size_t n, FILE* f) {
    return coop_fwrite(p, size, n, f, true);
}

size_t fwrite_unlocked(const void* p, size_t size, size_t n, FILE* f) {
    return coop_fwrite(p, size, n, f, false);
}

int fputs(const char* s, FILE* f) {
    return coop_fputs(s, f, true);
}

int fputs_unlocked(const char* s, FILE* f) {
    return coop_fputs(s, f, false);
}

int puts(const char* s) {
    return coop_puts(s);
}

int fputc(int c, FILE* f) {
    return coop_putc(c, f, true);
}

int putc(int c, FILE* f) {
    return coop_putc(c, f, true);
}

int _IO_putc(int c, FILE* f) {
    return coop_putc(c, f, true);
}

int putchar(int c) {
    return coop_putc(c, stdout, true);
}

int fputc_unlocked(int c, FILE* f) {
    return coop_putc(c, f, false);
}

int putc_unlocked(int c, FILE* f) {
    return coop_putc(c, f, false);
}

int putchar_unlocked(int c) {
    return coop_putc(c, stdout, false);
}

// What the inline putc_unlocked macro calls when the buffer has no room:
// the caller holds the FILE lock if it wants one.
int __overflow(FILE* f, int ch) {
    // Room for ch, and no flush due after it: stdio only stores it.
    const bool stores = f != nullptr && ch != EOF && f->_mode != 0 &&
                        (f->_flags & (kPutting | kUnbuffered)) == kPutting && f->_IO_write_base != nullptr &&
                        f->_IO_write_ptr < f->_IO_buf_end && ((f->_flags & kLineBuf) == 0 || ch != '\n');
    Hub* hub = nullptr;
    if (f == nullptr || (stores && unclaimed(f)) || (hub = coop_out_hub(f)) == nullptr) {
        return real_overflow(f, ch);
    }
    FileCall call(hub, f, false);
    if (!call.ok()) {
        return EOF;
    }
    if (f->_mode == 0) {
        fwide(f, -1);
    }
    return overflow(call, f, ch);
}

int fflush(FILE* f) {
    return coop_fflush(f, true);
}

int fflush_unlocked(FILE* f) {
    return coop_fflush(f, false);
}

int vfprintf(FILE* f, const char* format, va_list ap) {
    return coop_vfprintf(f, -1, format, ap);
}

int vprintf(const char* format, va_list ap) {
    return coop_vfprintf(stdout, -1, format, ap);
}

int fprintf(FILE* f, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vfprintf(f, -1, format, ap);
    va_end(ap);
    return r;
}

int printf(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vfprintf(stdout, -1, format, ap);
    va_end(ap);
    return r;
}

int __vfprintf_chk(FILE* f, int flag, const char* format, va_list ap) {
    return coop_vfprintf(f, flag, format, ap);
}

int __vprintf_chk(int flag, const char* format, va_list ap) {
    return coop_vfprintf(stdout, flag, format, ap);
}

int __fprintf_chk(FILE* f, int flag, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vfprintf(f, flag, format, ap);
    va_end(ap);
    return r;
}

int __printf_chk(int flag, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vfprintf(stdout, flag, format, ap);
    va_end(ap);
    return r;
}

int vdprintf(int fd, const char* format, va_list ap) {
    return coop_vdprintf(fd, -1, format, ap);
}

int dprintf(int fd, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vdprintf(fd, -1, format, ap);
    va_end(ap);
    return r;
}

int __vdprintf_chk(int fd, int flag, const char* format, va_list ap) {
    return coop_vdprintf(fd, flag, format, ap);
}

int __dprintf_chk(int fd, int flag, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = coop_vdprintf(fd, flag, format, ap);
    va_end(ap);
    return r;
}

// A FILE that a parked call of another fiber holds is closed only after
// that call returns (a thread's fclose would wait for the FILE lock).
int fclose(FILE* stream) {
    int flush_errno = 0;
    if (stream != nullptr) {
        // A claim exists only on a thread whose hub runs (no hub is made
        // here: fclose runs inside the hub's own start-up too).
        Hub* hub = claims_used > 0 ? Hub::current_if_any() : nullptr;
        if (hub != nullptr && !hub->in_hub_fiber() && !await_claim(hub, stream)) {
            return EOF;  // killed or timed out while waiting: the FILE stays open
        }
        // Pending output is written cooperatively first; if that fails,
        // fclose fails after closing, as when stdio's own flush does.
        if ((stream->_flags & kPutting) != 0 && pending_output(stream) && Hub::current_if_any() != nullptr) {
            if (Hub* h = coop_out_hub(stream)) {
                FileCall call(h, stream, true);
                if (call.ok() && flush_pending(call, stream) == EOF) {
                    flush_errno = errno != 0 ? errno : EIO;
                }
            }
        }
        const int fd = fileno(stream);
        if (fd >= 0) {
            note_fd_closing(fd);
        }
    }
    const int r = sys::fclose(stream);
    if (r == 0 && flush_errno != 0) {
        errno = flush_errno;
        return EOF;
    }
    return r;
}

FILE* popen(const char* command, const char* mode) {
    // The shim's own whether or not this thread has a hub yet: a stream
    // libc's popen made before the first green thread would be missing from
    // the list later popen children close, and its pclose would wait inside
    // libc, past the hub.
    if (!ready.load(std::memory_order_acquire) || config.disabled || command == nullptr || mode == nullptr) {
        return sys::popen(command, mode);
    }
    const bool reading = mode[0] == 'r';
    if ((mode[0] != 'r' && mode[0] != 'w') || (mode[1] != '\0' && (mode[1] != 'e' || mode[2] != '\0'))) {
        errno = EINVAL;
        return nullptr;
    }
    const bool cloexec = mode[1] == 'e';
    int fds[2];
    if (sys::pipe2(fds, O_CLOEXEC) != 0) {
        return nullptr;
    }
    const int parent_end = reading ? fds[0] : fds[1];
    const int child_end = reading ? fds[1] : fds[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, child_end, reading ? STDOUT_FILENO : STDIN_FILENO);
    {
        // POSIX: streams of earlier popen calls are closed in the child.
        Locked lock;
        for (Child* c = children; c != nullptr; c = c->next) {
            posix_spawn_file_actions_addclose(&fa, c->fd);
        }
    }
    char sh[] = "sh";
    char dash_c[] = "-c";
    char* argv[] = {sh, dash_c, const_cast<char*>(command), nullptr};
    pid_t pid = -1;
    const int err = posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    sys::close(child_end);
    if (err != 0) {
        sys::close(parent_end);
        errno = err;
        return nullptr;
    }
    if (!cloexec) {
        sys::fcntl(parent_end, F_SETFD, 0);
    }
    FILE* f = fdopen(parent_end, reading ? "r" : "w");
    auto* c = static_cast<Child*>(std::malloc(sizeof(Child)));
    if (f == nullptr || c == nullptr) {
        const int e = f == nullptr ? errno : ENOMEM;
        if (f != nullptr) {
            sys::fclose(f);
        } else {
            sys::close(parent_end);
        }
        std::free(c);
        wait_status(pid);
        errno = e;
        return nullptr;
    }
    note_fd_created(parent_end, kind_stream, kFifo);
    {
        Locked lock;
        *c = Child{f, parent_end, pid, children};
        children = c;
    }
    return f;
}

int pclose(FILE* f) {
    Child* found = nullptr;
    {
        Locked lock;
        for (Child** p = &children; *p != nullptr; p = &(*p)->next) {
            if ((*p)->stream == f) {
                found = *p;
                *p = found->next;
                break;
            }
        }
    }
    if (found == nullptr) {
        return sys::pclose(f);  // opened before the shim was ready, or not popen'd
    }
    const pid_t pid = found->pid;
    std::free(found);
    fclose(f);
    return wait_status(pid);
}

int system(const char* command) {
    if (hub_for_call() == nullptr || command == nullptr) {
        return sys::system(command);
    }
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (system_users.fetch_add(1) == 0) {
        sys::sigaction(SIGINT, &ignore, &saved_int);
        sys::sigaction(SIGQUIT, &ignore, &saved_quit);
    }
    sigset_t chld;
    sigset_t old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sys::pthread_sigmask(SIG_BLOCK, &chld, &old_mask);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults;
    sigemptyset(&defaults);
    if (saved_int.sa_handler != SIG_IGN) {
        sigaddset(&defaults, SIGINT);
    }
    if (saved_quit.sa_handler != SIG_IGN) {
        sigaddset(&defaults, SIGQUIT);
    }
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &old_mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char sh[] = "sh";
    char dash_c[] = "-c";
    char* argv[] = {sh, dash_c, const_cast<char*>(command), nullptr};
    pid_t pid = -1;
    int status;
    if (posix_spawn(&pid, "/bin/sh", nullptr, &attr, argv, environ) == 0) {
        status = wait_status(pid);
    } else {
        status = 127 << 8;  // as if the shell could not be run
    }
    posix_spawnattr_destroy(&attr);

    const int saved = errno;
    sys::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (system_users.fetch_sub(1) == 1) {
        sys::sigaction(SIGINT, &saved_int, nullptr);
        sys::sigaction(SIGQUIT, &saved_quit, nullptr);
    }
    errno = saved;
    return status;
}

}  // extern "C"
