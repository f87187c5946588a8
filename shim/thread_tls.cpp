// Thread-local variables of green threads (GROVE_THREAD_TLS=own, the
// default). A green thread is a fiber on its OS thread, so by itself it
// would share that thread's `__thread` variables and `thread_local`
// objects with every other green thread: a program's thread id, its
// current-request pointer, libstdc++'s exception stack. Here each green
// thread has an image of them, made from the initial values as a new
// thread's are, and the hub copies the live variables out and the next
// thread's image in at a switch between two green threads (Hub::TlsImages).
//
// The variables copied are those of the program and of every library
// loaded with it that has any (their static TLS, found with
// dl_iterate_phdr). Not copied: libc's (errno, which the hub keeps per fiber
// anyway, malloc's per-thread cache, which fibers of one thread may share
// as they never run at once), grove's own (per OS thread by design), a
// sanitizer runtime's. A library dlopen'ed later keeps its variables in
// blocks that glibc allocates per thread on first use and finds through
// the thread's dtv (the table of each module's block, in the thread
// descriptor): each green thread has its own dtv, swapped with the image
// (one pointer), so it gets blocks of its own too, freed when it ends. A
// library dlopen'ed later whose variables glibc put in the static block
// (initial-exec TLS) stays shared.
//
// Why copies and not a thread pointer per green thread: switching %fs
// takes an arch_prctl system call (3.3 us here, the CPU lacking
// FSGSBASE), more than a switch through the kernel between two OS
// threads, on every switch; a copy of a few hundred bytes is ~100 times
// cheaper. The price: a variable has one address in all green threads, so
// a library that links its threads' thread-local objects into one list
// (jemalloc, userspace RCU) still sees one object. README says so.

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <link.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

struct Span {
    std::ptrdiff_t at;      // from the thread pointer (negative: TLS is below it)
    std::size_t size;       // p_memsz
    const std::byte* init;  // the module's initial values (p_filesz bytes)
    std::size_t init_size;
    std::size_t image_at;   // where in an image
};

constexpr int kMaxSpans = 64;

// glibc's dtv (2.26 and later): d[-1] its length, d[0] its generation,
// d[1..length] each module's block; d is at offset 8 of x86-64's thread
// descriptor (tcbhead_t). An image keeps its dtv pointer in its first word.
struct DtvEntry {
    void* val;      // the block, or kUnallocated; d[-1] and d[0] hold counts here
    void* to_free;  // what glibc malloc'ed for it (dynamic blocks only)
};
void* const kUnallocated = reinterpret_cast<void*>(-1L);
constexpr std::size_t kDtvSlot = 16;  // the image's first bytes

struct Layout {
    bool too_many = false;  // more modules than spans: left shared
    int spans_used = 0;
    Span spans[kMaxSpans];
    std::size_t size = 0;
    std::byte* tp = nullptr;  // the computing thread's pointer (for the walk)
    std::size_t static_size = 0;
    bool dtv = false;  // green threads have dtvs of their own
    Hub::TlsImages images{};
};
Layout g_layout;
// 0 not worked out yet, 1 green threads have images, 2 they share the
// thread's. Only the thread that runs green threads (the main thread)
// makes them or registers their destructors, so only it reads this.
int g_state = 0;

std::byte* thread_pointer() noexcept {
    return static_cast<std::byte*>(__builtin_thread_pointer());
}

bool inside(const void* p, const std::byte* base, std::size_t size) noexcept {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= base && b < base + size;
}

// In the running thread's static TLS block (just below its thread pointer).
bool in_static_block(const void* p) noexcept {
    std::byte* tp = thread_pointer();
    return p >= tp - g_layout.static_size && p < tp;
}

int note_module(dl_phdr_info* info, std::size_t, void* arg) noexcept {
    auto* l = static_cast<Layout*>(arg);
    if (info->dlpi_tls_modid == 0 || info->dlpi_tls_data == nullptr) {
        return 0;
    }
    const ElfW(Phdr)* tls = nullptr;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            tls = &info->dlpi_phdr[i];
        }
    }
    if (tls == nullptr || tls->p_memsz == 0) {
        return 0;
    }
    auto* data = static_cast<std::byte*>(info->dlpi_tls_data);
    const std::size_t size = tls->p_memsz;
    // Static TLS only: the block just below the thread pointer.
    if (data < l->tp - l->static_size || data + size > l->tp) {
        return 0;
    }
    // libc's, grove's own (libgrove and the shim, or the preload library
    // that holds both), a sanitizer runtime's.
    const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
    if (inside(&errno, data, size) || inside(&detail::tls_hub, data, size) || inside(&vfork_child, data, size) ||
        std::strstr(name, "san.so") != nullptr) {
        return 0;
    }
    if (l->spans_used == kMaxSpans) {
        l->too_many = true;  // too many to copy at every switch: leave them shared
        return 1;
    }
    Span& s = l->spans[l->spans_used++];
    s.at = data - l->tp;
    s.size = size;
    s.init = reinterpret_cast<const std::byte*>(info->dlpi_addr + tls->p_vaddr);
    s.init_size = tls->p_filesz;
    s.image_at = l->size;
    l->size += (size + 15) & ~std::size_t{15};
    return 0;
}

DtvEntry*& live_dtv() noexcept {
    return *reinterpret_cast<DtvEntry**>(thread_pointer() + 8);
}

void save_image(void* image) noexcept {
    std::byte* tp = thread_pointer();
    auto* out = static_cast<std::byte*>(image);
    if (g_layout.dtv) {
        std::memcpy(out, &live_dtv(), sizeof(DtvEntry*));
    }
    for (int i = 0; i < g_layout.spans_used; ++i) {
        const Span& s = g_layout.spans[i];
        std::memcpy(out + s.image_at, tp + s.at, s.size);
    }
}

void load_image(const void* image) noexcept {
    std::byte* tp = thread_pointer();
    const auto* in = static_cast<const std::byte*>(image);
    if (g_layout.dtv) {
        std::memcpy(&live_dtv(), in, sizeof(DtvEntry*));
    }
    for (int i = 0; i < g_layout.spans_used; ++i) {
        const Span& s = g_layout.spans[i];
        std::memcpy(tp + s.at, in + s.image_at, s.size);
    }
}

using StaticInfoFn = void (*)(std::size_t*, std::size_t*);

// Whether green threads get images of their own.
bool compute_layout() noexcept {
    Layout& l = g_layout;
    const char* mode = ::getenv("GROVE_THREAD_TLS");
    if (mode != nullptr && std::strcmp(mode, "shared") == 0) {
        return false;
    }
    if (mode != nullptr && *mode != '\0' && std::strcmp(mode, "own") != 0) {
        std::fprintf(stderr, "grove: GROVE_THREAD_TLS=%s: expected own or shared; using own\n", mode);
    }
    // The loader's size of the static TLS block (the thread's variables
    // below the thread pointer, its descriptor above).
    auto info = reinterpret_cast<StaticInfoFn>(::dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
    if (info == nullptr) {
        return false;
    }
    std::size_t align = 0;
    info(&l.static_size, &align);
    l.tp = thread_pointer();
#if defined(__x86_64__)
    // The dtv's layout (entries of two words) dates from glibc 2.26.
    unsigned major = 0;
    unsigned minor = 0;
    l.dtv = std::sscanf(gnu_get_libc_version(), "%u.%u", &major, &minor) == 2 && (major > 2 || minor >= 26);
#endif
    l.size = l.dtv ? kDtvSlot : 0;
    ::dl_iterate_phdr(note_module, &l);
    if (l.too_many || l.size == 0) {
        return false;  // nothing to keep apart
    }
    l.images = Hub::TlsImages{save_image, load_image, l.size};
    return true;
}

}  // namespace

namespace grove::shim {

const Hub::TlsImages* green_tls_images() noexcept {
    if (g_state == 0) [[unlikely]] {
        g_state = compute_layout() ? 1 : 2;
    }
    return g_state == 1 ? &g_layout.images : nullptr;
}

void* new_green_tls() noexcept {
    const Hub::TlsImages* images = green_tls_images();
    if (images == nullptr) {
        return nullptr;
    }
    auto* image = static_cast<std::byte*>(std::malloc(images->size));
    if (image == nullptr) {
        return nullptr;
    }
    for (int i = 0; i < g_layout.spans_used; ++i) {
        const Span& s = g_layout.spans[i];
        std::memcpy(image + s.image_at, s.init, s.init_size);
        std::memset(image + s.image_at + s.init_size, 0, s.size - s.init_size);
    }
    if (g_layout.dtv) {
        // A copy of the running thread's dtv with the static blocks (shared:
        // their contents are the image's) and no dynamic one: glibc makes
        // those on first use, as for a new thread.
        const DtvEntry* cur = live_dtv();
        const auto length = reinterpret_cast<std::size_t>(cur[-1].val);
        auto* all = static_cast<DtvEntry*>(std::malloc((length + 2) * sizeof(DtvEntry)));
        if (all == nullptr) {
            std::free(image);
            return nullptr;
        }
        std::memcpy(all, cur - 1, (length + 2) * sizeof(DtvEntry));
        DtvEntry* dtv = all + 1;
        for (std::size_t i = 1; i <= length; ++i) {
            if (!in_static_block(dtv[i].val)) {
                dtv[i] = DtvEntry{kUnallocated, nullptr};
            }
        }
        std::memcpy(image, &dtv, sizeof dtv);
    }
    return image;
}

void free_green_tls(void* image) noexcept {
    if (image == nullptr) {
        return;
    }
    if (g_layout.dtv) {
        DtvEntry* dtv = nullptr;
        std::memcpy(&dtv, image, sizeof dtv);
        const auto length = reinterpret_cast<std::size_t>(dtv[-1].val);
        for (std::size_t i = 1; i <= length; ++i) {
            std::free(dtv[i].to_free);
        }
        std::free(dtv - 1);
    }
    std::free(image);
}

void end_green_tls(Hub& hub, void* image) noexcept {
    if (g_layout.dtv) {
        std::memcpy(image, &live_dtv(), sizeof(DtvEntry*));  // as it is now (a dlopen may have moved it)
    }
    hub.forget_tls(image);
    free_green_tls(image);
}

bool in_green_tls(const void* p) noexcept {
    if (g_state != 1) {
        return false;
    }
    std::byte* tp = thread_pointer();
    for (int i = 0; i < g_layout.spans_used; ++i) {
        const Span& s = g_layout.spans[i];
        if (inside(p, tp + s.at, s.size)) {
            return true;
        }
    }
    // Elsewhere in the static block: libc's, grove's, or a late library's
    // shared variables. Outside it: a dlopen'ed library's block of the
    // running green thread's own, or no thread-local object at all (what
    // is registered then is still to run when the calling thread ends).
    return !in_static_block(p);
}

}  // namespace grove::shim
