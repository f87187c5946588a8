// Name resolution inside the hub (resolver.hpp for the contract).
//
// Why `thread` is the default backend (GROVE_RESOLVER unset):
//   glibc resolves through NSS, and its answer depends on more than
//   /etc/hosts and resolv.conf: nsswitch.conf modules (myhostname, mdns,
//   resolve, ldap, sss), gai.conf's sorting policy, resolv.conf options that
//   c-ares does not implement (single-request, edns0, trust-ad, no-aaaa).
//   Running glibc's own function in a worker thread gives the same answer
//   as without grove, always — the shim's first rule. gevent made the same
//   choice (its default resolver is the thread pool; ares is opt-in).
//   GROVE_RESOLVER=ares trades that for no thread per lookup in flight and
//   thousands of concurrent lookups on one thread, and is exact for the
//   common "hosts: files dns" set-up (the tests compare it with glibc).
//
// Ownership and threads:
// - Channels (ares) are per OS thread, hence per hub, and live until the
//   thread ends. A channel's queries are only ever touched on its thread.
// - Worker threads (thread backend) share nothing with the hub but the
//   queue (a spin lock) and a Job, whose atomic `state` decides who owns
//   the result: the worker signals the job's eventfd only while the fiber
//   has not abandoned it, and frees the result itself when it has (the
//   fiber has then closed the eventfd).

#if defined(GROVE_ASAN)
#include <sanitizer/lsan_interface.h>
#endif
#include "dns/resolver.hpp"

#include <arpa/inet.h>
#include <ares.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <sys/epoll.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>  // std::lock_guard (of SpinLock)
#include <string_view>
#include <unordered_map>

#include <grove/dns.hpp>
#include <grove/fiber.hpp>
#include <grove/io.hpp>

#include "hub/hub.hpp"
#include "hub/own_fd.hpp"
#include "io/io.hpp"
#include "sys/sys.hpp"

namespace grove::detail::dns {

namespace {

// ---- the real libc functions -------------------------------------------------------

template <class F>
void lookup(void* handle, F& f, const char* name) noexcept {
    void* p = handle != nullptr ? dlsym(handle, name) : nullptr;
    if (p == nullptr) {
        p = dlsym(RTLD_NEXT, name);
    }
    f = reinterpret_cast<F>(p);
}

Libc resolve_libc() noexcept {
    Libc l{};
    void* h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    lookup(h, l.getaddrinfo, "getaddrinfo");
    lookup(h, l.freeaddrinfo, "freeaddrinfo");
    lookup(h, l.gai_strerror, "gai_strerror");
    lookup(h, l.getnameinfo, "getnameinfo");
    lookup(h, l.gethostbyname, "gethostbyname");
    lookup(h, l.gethostbyname2, "gethostbyname2");
    lookup(h, l.gethostbyname_r, "gethostbyname_r");
    lookup(h, l.gethostbyname2_r, "gethostbyname2_r");
    lookup(h, l.gethostbyaddr, "gethostbyaddr");
    lookup(h, l.gethostbyaddr_r, "gethostbyaddr_r");
    return l;
}

using PthreadCreate = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

PthreadCreate real_pthread_create() noexcept {
    static const PthreadCreate fn = [] {
        PthreadCreate f = nullptr;
        void* h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        lookup(h, f, "pthread_create");
        return f;
    }();
    return fn;
}

// ---- configuration -------------------------------------------------------------------

bool env_is(const char* name, std::string_view v) noexcept {
    const char* e = std::getenv(name);
    return e != nullptr && v == e;
}

// glibc's timeout and attempts (resolv.conf "options", then RES_OPTIONS),
// with glibc's defaults and caps, for c-ares, whose own defaults differ
// (4 tries) and whose explicit options would override resolv.conf's.
struct RetryPolicy {
    int timeout_s = 5;  // RES_TIMEOUT
    int attempts = 2;   // RES_DFLRETRY

    void parse_options(std::string_view s) noexcept {
        while (!s.empty()) {
            const std::size_t sp = s.find_first_of(" \t\n");
            const std::string_view word = s.substr(0, sp);
            s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
            auto value = [&](std::string_view key, int& out, int lo, int hi) {
                if (word.size() > key.size() && word.substr(0, key.size()) == key) {
                    const int v = std::atoi(std::string(word.substr(key.size())).c_str());
                    out = std::clamp(v, lo, hi);
                }
            };
            value("timeout:", timeout_s, 1, 30);  // RES_MAXRETRANS
            value("attempts:", attempts, 1, 5);   // RES_MAXRETRY
        }
    }

    static RetryPolicy load() noexcept {
        RetryPolicy p;
        if (FILE* f = std::fopen("/etc/resolv.conf", "re")) {
            char line[512];
            while (std::fgets(line, sizeof line, f) != nullptr) {
                std::string_view l(line);
                if (l.substr(0, 7) == "options" && l.size() > 7 && (l[7] == ' ' || l[7] == '\t')) {
                    p.parse_options(l.substr(8));
                }
            }
            std::fclose(f);
        }
        if (const char* e = std::getenv("RES_OPTIONS")) {
            p.parse_options(e);
        }
        return p;
    }
};

// What a c-ares status says, in the two vocabularies glibc answers in:
// getaddrinfo's EAI_* codes and gethostbyname's h_errno.
struct FailureCodes {
    int eai;
    int herrno;
};

FailureCodes ares_failure(int status) noexcept {
    switch (status) {
        case ARES_SUCCESS:
            return {0, 0};
        case ARES_ENODATA:
            return {EAI_NODATA, NO_DATA};  // the name exists, without addresses of that family
        case ARES_ENOTFOUND:
        case ARES_ENONAME:
        case ARES_EBADNAME:
            return {EAI_NONAME, HOST_NOT_FOUND};
        case ARES_ETIMEOUT:
        case ARES_ESERVFAIL:
        case ARES_ECONNREFUSED:
        case ARES_EREFUSED:
        case ARES_ENOTIMP:
        case ARES_EFORMERR:
        case ARES_ECANCELLED:
        case ARES_EDESTRUCTION:
            return {EAI_AGAIN, TRY_AGAIN};
        case ARES_ENOMEM:
            return {EAI_MEMORY, NO_RECOVERY};
        case ARES_EBADFAMILY:
            return {EAI_FAMILY, NO_RECOVERY};
        case ARES_EBADFLAGS:
        case ARES_EBADHINTS:
            return {EAI_BADFLAGS, NO_RECOVERY};
        case ARES_ESERVICE:
            return {EAI_SERVICE, NO_RECOVERY};
        default:
            return {EAI_FAIL, NO_RECOVERY};
    }
}

int ares_to_eai(int status) noexcept {
    return ares_failure(status).eai;
}

int ares_to_herrno(int status) noexcept {
    return ares_failure(status).herrno;
}

void copy_hostent(const struct hostent* h, HostData& out) {
    out.name = h->h_name != nullptr ? h->h_name : "";
    out.aliases.clear();
    for (char** a = h->h_aliases; a != nullptr && *a != nullptr; ++a) {
        out.aliases.emplace_back(*a);
    }
    out.addrtype = h->h_addrtype;
    out.length = h->h_length;
    out.addrs.clear();
    for (char** a = h->h_addr_list; a != nullptr && *a != nullptr; ++a) {
        out.addrs.emplace_back(*a, static_cast<std::size_t>(h->h_length));
    }
}

// An interrupted wait (kill, grove::Timeout) as the call's failure: errno
// ECANCELED / ETIMEDOUT, deferred for the next C++ suspension point.
int interruption_errno(Waiter& w) noexcept {
    const int e = defer_interruption(w);
    return e != 0 ? e : ETIMEDOUT;
}

// ---- thread backend --------------------------------------------------------------------

// One lookup handed to a worker. run() is the blocking glibc call;
// discard() frees what run() made when no fiber wants it any more.
//
// No pthread mutex or condition variable here: under the shim those are
// green (cooperative) on a hub's thread and real on a worker, so the two
// sides would not exclude each other. `state` and futexes instead.
struct Job {
    enum : int {
        pending,    // queued or running
        signalling, // the worker is writing efd (the fiber must not close it)
        done,       // run() finished, efd signalled: the fiber owns the result
        abandoned,  // the fiber gave up and closed efd: the worker discards
    };
    virtual ~Job() { }
    virtual void run() noexcept = 0;
    // Ends the job without running it, as the call failing with errno `e`.
    virtual void fail(int e) noexcept = 0;
    virtual void discard() noexcept { }

    std::string servers;
    std::atomic<int> state{pending};
    int efd = -1;
};

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val, const struct timespec* t) noexcept {
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, val, t, nullptr, 0);
}

// A lock for a few instructions of queue work, safe between a hub's thread
// and plain threads alike.
class SpinLock {
public:
    void lock() noexcept {
        while (flag_.test_and_set(std::memory_order_acquire)) {
            while (flag_.test(std::memory_order_relaxed)) {
                __builtin_ia32_pause();
            }
        }
    }
    void unlock() noexcept { flag_.clear(std::memory_order_release); }

private:
    std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
};

// glibc's per-thread _res, pointed at `servers` (a list parse_servers
// takes), or back at resolv.conf's for "". glibc keeps a hand-modified _res
// (its servers no longer match resolv.conf's) instead of reloading it. An
// IPv6 server goes where res_init puts one read from resolv.conf: a zero
// family in nsaddr_list, the address in _u._ext.nsaddrs (glibc's
// allocation: reused when there, else malloc'd, glibc frees it).
bool use_servers(const std::string& servers) noexcept {
    static thread_local std::string current;
    static thread_local bool initialised = false;
    if (initialised && servers == current) {
        return true;
    }
    std::vector<Server> list;
    std::string error;
    try {
        if (!parse_servers(servers, list, error, MAXNS)) {
            errno = EINVAL;
            return false;
        }
        current = servers;
    } catch (...) {
        errno = ENOMEM;
        return false;
    }
    res_init();
    initialised = true;
    if (list.empty()) {
        return true;
    }
    int n = 0;
    for (const Server& sv : list) {
        if (sv.addr.ss_family == AF_INET) {
            std::memcpy(&_res.nsaddr_list[n], &sv.addr, sizeof(sockaddr_in));
        } else {
            struct sockaddr_in6*& slot = _res._u._ext.nsaddrs[n];
            if (slot == nullptr) {
                slot = static_cast<sockaddr_in6*>(std::malloc(sizeof(sockaddr_in6)));
                if (slot == nullptr) {
                    initialised = false;
                    errno = ENOMEM;
                    return false;
                }
            }
            std::memcpy(slot, &sv.addr, sizeof(sockaddr_in6));
            std::memset(&_res.nsaddr_list[n], 0, sizeof _res.nsaddr_list[n]);
        }
        ++n;
    }
    _res.nscount = n;
    _res._u._ext.nscount = 0;  // res_send takes the list afresh
    return true;
}

void hook_fork() noexcept;

class Pool {
public:
    static Pool& get() noexcept {
        // Never destroyed: workers may outlive exit's destructors.
        static Pool* p = (hook_fork(), new Pool);
        return *p;
    }

    // False (errno set) if no worker could be started.
    bool submit(std::shared_ptr<Job> j) noexcept {
        bool spawn = false;
        {
            std::lock_guard lk(lock_);
            try {
                queue_.push_back(std::move(j));
            } catch (...) {
                errno = ENOMEM;
                return false;
            }
            if (idle_ == 0 && threads_ < kMaxThreads) {
                ++threads_;
                spawn = true;
            }
        }
        if (spawn) {
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            pthread_attr_setstacksize(&attr, 256 * 1024);
            pthread_t t;
            const int rc = real_pthread_create()(&t, &attr, &Pool::main, this);
            pthread_attr_destroy(&attr);
            if (rc != 0) {
                std::lock_guard lk(lock_);
                --threads_;
                if (threads_ == 0) {
                    queue_.pop_back();
                    errno = rc;
                    return false;
                }
            }
        }
        seq_.fetch_add(1, std::memory_order_release);
        futex(&seq_, FUTEX_WAKE_PRIVATE, 1, nullptr);
        return true;
    }

    // In a forked child: the workers did not follow. The queue and the
    // lock may be mid-change (another thread held them at the fork): left
    // behind, not destroyed.
    void after_fork_child() noexcept {
        new (&lock_) SpinLock;
        new (&queue_) std::deque<std::shared_ptr<Job>>;
        threads_ = 0;
        idle_ = 0;
    }

private:
    static constexpr unsigned kMaxThreads = 64;

    static void* main(void* self) noexcept {
        static_cast<Pool*>(self)->work();
        return nullptr;
    }

    void work() noexcept {
        for (;;) {
            std::shared_ptr<Job> j;
            for (int idle_rounds = 0; j == nullptr;) {
                const std::uint32_t seen = seq_.load(std::memory_order_acquire);
                {
                    std::lock_guard lk(lock_);
                    if (!queue_.empty()) {
                        j = std::move(queue_.front());
                        queue_.pop_front();
                        break;
                    }
                    if (idle_rounds >= 3) {
                        --threads_;  // idle for a while: end
                        return;
                    }
                    ++idle_;
                }
                const struct timespec ten{10, 0};
                const long r = futex(&seq_, FUTEX_WAIT_PRIVATE, seen, &ten);
                {
                    std::lock_guard lk(lock_);
                    --idle_;
                }
                if (r != 0 && errno == ETIMEDOUT) {
                    ++idle_rounds;
                }
            }
            if (use_servers(j->servers)) {
                j->run();
            } else {
                j->fail(errno);
            }
            int expected = Job::pending;
            if (j->state.compare_exchange_strong(expected, Job::signalling, std::memory_order_acq_rel)) {
                const std::uint64_t one = 1;
                (void)sys::write(j->efd, &one, sizeof one);
                j->state.store(Job::done, std::memory_order_release);
            } else {
                j->discard();  // abandoned
            }
        }
    }

    SpinLock lock_;
    std::atomic<std::uint32_t> seq_{0};  // bumped per submit; idle workers wait on it
    std::deque<std::shared_ptr<Job>> queue_;
    unsigned threads_ = 0;
    unsigned idle_ = 0;
};

// Runs `j` on a worker and waits for it cooperatively. 0 when it ran;
// else the errno that ended the wait (ETIMEDOUT at the deadline or a
// grove::Timeout, ECANCELED when killed), the job then abandoned.
int run_job(const std::shared_ptr<Job>& j, const Request& req) noexcept {
    try {
        std::vector<Server> list;
        std::string error;
        if (!parse_servers(req.servers, list, error, MAXNS)) {
            return EINVAL;
        }
        j->servers = req.servers;
    } catch (...) {
        return ENOMEM;
    }
    j->efd = sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (j->efd < 0) {
        return errno;
    }
    io_adopt(j->efd, true);
    if (!Pool::get().submit(j)) {
        const int e = errno;
        io_close(j->efd);
        return e;
    }
    while (j->state.load(std::memory_order_acquire) != Job::done) {
        if (io_wait(j->efd, POLLIN, req.deadline) != 0) {
            const int e = errno;
            int expected = Job::pending;
            if (j->state.compare_exchange_strong(expected, Job::abandoned, std::memory_order_acq_rel)) {
                io_close(j->efd);
#if defined(GROVE_ASAN)
                // From here only the worker holds the job, and the workers
                // are made with libc's own pthread_create, which the leak
                // checker does not see: it would call the job leaked at exit.
                __lsan_ignore_object(j.get());
#endif
                return e;
            }
            while (j->state.load(std::memory_order_acquire) != Job::done) {
                __builtin_ia32_pause();  // the worker is between its write and `done`
            }
            break;  // finished as the wait ended: take the result
        }
    }
    io_close(j->efd);
    return 0;
}

// What a failed wait means to a getaddrinfo-style caller.
int eai_for_wait(int e) noexcept {
    errno = e;
    if (e == ETIMEDOUT && Hub::current().running()->timeout_deferred == nullptr) {
        return EAI_AGAIN;  // the call's own deadline
    }
    return EAI_SYSTEM;
}

int herrno_for_wait(int e) noexcept {
    errno = e;
    if (e == ETIMEDOUT && Hub::current().running()->timeout_deferred == nullptr) {
        return TRY_AGAIN;
    }
    return NETDB_INTERNAL;
}

struct GaiJob final : Job {
    std::string node, service;
    bool has_node = false, has_service = false, has_hints = false;
    struct addrinfo hints{};
    struct addrinfo* res = nullptr;
    int rc = 0;
    int err = 0;

    void run() noexcept override {
        rc = libc().getaddrinfo(has_node ? node.c_str() : nullptr, has_service ? service.c_str() : nullptr,
                                has_hints ? &hints : nullptr, &res);
        err = errno;
    }
    void fail(int e) noexcept override {
        rc = EAI_SYSTEM;
        err = e;
    }
    void discard() noexcept override {
        if (rc == 0 && res != nullptr) {
            libc().freeaddrinfo(res);
        }
    }
};

int thread_getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res,
                       const Request& req) noexcept {
    std::shared_ptr<GaiJob> j;
    try {
        j = std::make_shared<GaiJob>();
        j->has_node = node != nullptr;
        j->has_service = service != nullptr;
        if (node != nullptr) {
            j->node = node;
        }
        if (service != nullptr) {
            j->service = service;
        }
    } catch (...) {
        return EAI_MEMORY;
    }
    if (hints != nullptr) {
        j->has_hints = true;
        j->hints.ai_flags = hints->ai_flags;
        j->hints.ai_family = hints->ai_family;
        j->hints.ai_socktype = hints->ai_socktype;
        j->hints.ai_protocol = hints->ai_protocol;
    }
    if (const int e = run_job(j, req); e != 0) {
        return eai_for_wait(e);
    }
    if (j->rc == EAI_SYSTEM) {
        errno = j->err;
    }
    *res = j->rc == 0 ? j->res : nullptr;
    return j->rc;
}

struct NameInfoJob final : Job {
    struct sockaddr_storage sa{};
    socklen_t salen = 0;
    std::vector<char> host, serv;
    bool want_host = false, want_serv = false;
    int flags = 0;
    int rc = 0;
    int err = 0;

    void run() noexcept override {
        rc = libc().getnameinfo(reinterpret_cast<const struct sockaddr*>(&sa), salen,
                                want_host ? host.data() : nullptr, static_cast<socklen_t>(host.size()),
                                want_serv ? serv.data() : nullptr, static_cast<socklen_t>(serv.size()), flags);
        err = errno;
    }
    void fail(int e) noexcept override {
        rc = EAI_SYSTEM;
        err = e;
    }
};

// glibc's gethostbyname2_r (by_addr false: `key` is the name) or
// gethostbyaddr_r (`key` holds the address bytes), its buffer grown until
// the answer fits, the answer copied into `out`.
HostStatus libc_host(bool by_addr, const std::string& key, int af, HostData& out) noexcept {
    HostStatus st;
    std::vector<char> buf;
    for (std::size_t size = 1024;; size *= 2) {
        try {
            buf.resize(size);
        } catch (...) {
            return {NETDB_INTERNAL, ENOMEM};
        }
        struct hostent he{};
        struct hostent* r = nullptr;
        st.herr = 0;
        if (by_addr) {
            st.ret = libc().gethostbyaddr_r(key.data(), static_cast<socklen_t>(key.size()), af, &he, buf.data(),
                                            buf.size(), &r, &st.herr);
        } else {
            st.ret = libc().gethostbyname2_r(key.c_str(), af, &he, buf.data(), buf.size(), &r, &st.herr);
        }
        if (st.ret == ERANGE && st.herr == NETDB_INTERNAL && size < (1u << 24)) {
            continue;
        }
        if (r == nullptr) {
            if (st.herr == 0) {
                st.herr = HOST_NOT_FOUND;
            }
            return st;
        }
        try {
            copy_hostent(r, out);
        } catch (...) {
            return {NETDB_INTERNAL, ENOMEM};
        }
        return {0, 0};
    }
}

struct HostJob final : Job {
    bool by_addr = false;
    std::string key;  // the name, or the address bytes
    int af = AF_INET;
    HostStatus st;
    HostData out;

    void run() noexcept override { st = libc_host(by_addr, key, af, out); }
    void fail(int e) noexcept override { st = {NETDB_INTERNAL, e}; }
};

// A failed wait as a hostent call's ending (a timeout is TRY_AGAIN).
HostStatus wait_status(int e, bool by_addr) noexcept {
    const int herr = herrno_for_wait(e);
    const int ret = herr != TRY_AGAIN ? e : by_addr ? 0 : EAGAIN;
    errno = ret;
    return {herr, ret};
}

// The thread backend's gethostbyname2 / gethostbyaddr.
HostStatus thread_host(bool by_addr, const char* key, socklen_t len, int af, HostData& out,
                       const Request& req) noexcept {
    std::shared_ptr<HostJob> j;
    try {
        j = std::make_shared<HostJob>();
        if (by_addr) {
            j->key.assign(static_cast<const char*>(key), len);
        } else {
            j->key = key;
        }
    } catch (...) {
        errno = ENOMEM;
        return {NETDB_INTERNAL, ENOMEM};
    }
    j->by_addr = by_addr;
    j->af = af;
    if (const int e = run_job(j, req); e != 0) {
        return wait_status(e, by_addr);
    }
    if (j->st.herr == 0) {
        out = std::move(j->out);
    }
    errno = j->st.ret;
    return j->st;
}

// ---- ares backend --------------------------------------------------------------------------

class Channel;

// One lookup in flight. Heap-owned: by the calling fiber while it waits,
// by the callback once the fiber has abandoned it (deadline, kill).
struct Query {
    Waiter w;
    Channel* ch = nullptr;
    bool parked = false;
    bool done = false;
    bool abandoned = false;
    int status = ARES_SUCCESS;
    struct ares_addrinfo* ai = nullptr;
    HostData host;
    std::vector<unsigned char> answer;  // a raw query's reply
};

class Channel {
public:
    // Null (errno set) when c-ares or the servers refuse.
    static Channel* make(const std::string& servers) noexcept {
        static const int lib_rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (lib_rc != ARES_SUCCESS) {
            errno = ENOMEM;
            return nullptr;
        }
        auto* c = new (std::nothrow) Channel;
        if (c == nullptr) {
            errno = ENOMEM;
            return nullptr;
        }
        if (!c->init(servers)) {
            const int e = errno;
            delete c;
            errno = e;
            return nullptr;
        }
        return c;
    }

    ~Channel() {
        if (channel_ != nullptr) {
            ares_destroy(channel_);
        }
        if (const int ep = epfd(); ep >= 0) {
            if (Hub* h = Hub::current_if_any()) {
                h->fd_forget(ep);
            }
            own_fd_close(ep);
        }
    }

    ares_channel get() const noexcept { return channel_; }

    // In a forked child: this channel's sockets and epoll set are the
    // parent's too (an epoll set is shared across fork, so removing a socket
    // from it here would remove it for the parent). Closes this process's
    // copies and touches nothing shared; the destructor then only frees.
    void orphan() noexcept {
        orphaned_ = true;
        driving_ = false;
        if (channel_ != nullptr) {
            ares_destroy(channel_);  // the queries' callbacks see EDESTRUCTION
            channel_ = nullptr;
        }
        if (const int ep = epfd(); ep >= 0) {
            own_fd_close(ep);
            epfd_.store(-1, std::memory_order_relaxed);
        }
    }

    // A query was issued whose callback has not run yet.
    void started() noexcept {
        ++pending_;
        if (!driving_) {
            driving_ = true;
            try {
                SpawnOptions o;
                o.name = "grove-dns";
                (void)grove::spawn(o, [this] { drive(); });
            } catch (...) {
                driving_ = false;
                ares_cancel(channel_);  // no driver: fail the queries now
            }
        }
    }
    void finished() noexcept { --pending_; }

private:
    Channel() = default;

    bool init(const std::string& servers) noexcept {
        const int ep = sys::epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) {
            return false;
        }
        own_fd(ep, epfd_);
        const RetryPolicy p = RetryPolicy::load();
        struct ares_options o{};
        o.sock_state_cb = &Channel::sock_state;
        o.sock_state_cb_data = this;
        o.timeout = p.timeout_s * 1000;
        o.tries = p.attempts;
        const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
        if (ares_init_options(&channel_, &o, mask) != ARES_SUCCESS) {
            channel_ = nullptr;
            errno = ENOMEM;
            return false;
        }
        static const struct ares_socket_functions funcs = {
            &Channel::a_socket, &Channel::a_close, &Channel::a_connect, &Channel::a_recvfrom, &Channel::a_sendv,
        };
        ares_set_socket_functions(channel_, &funcs, this);
        if (!servers.empty()) {
            std::vector<Server> list;
            std::string error;
            try {
                if (!parse_servers(servers, list, error)) {
                    errno = EINVAL;
                    return false;
                }
            } catch (...) {
                errno = ENOMEM;
                return false;
            }
            std::vector<struct ares_addr_port_node> nodes(list.size());
            for (std::size_t i = 0; i < list.size(); ++i) {
                auto& n = nodes[i];
                n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
                n.family = list[i].addr.ss_family;
                if (n.family == AF_INET) {
                    const auto* sin = reinterpret_cast<const sockaddr_in*>(&list[i].addr);
                    n.addr.addr4 = sin->sin_addr;
                    n.udp_port = n.tcp_port = ntohs(sin->sin_port);
                } else {
                    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&list[i].addr);
                    std::memcpy(&n.addr.addr6, &sin6->sin6_addr, sizeof n.addr.addr6);
                    n.udp_port = n.tcp_port = ntohs(sin6->sin6_port);
                }
            }
            if (ares_set_servers_ports(channel_, nodes.data()) != ARES_SUCCESS) {
                errno = EINVAL;
                return false;
            }
        }
        return true;
    }

    // The driver: one fiber per channel while queries are in flight. It is
    // the only fiber that calls ares_process_fd. The private epoll set is
    // level-triggered and asked first without waiting, so nothing ready is
    // ever missed between two waits.
    void drive() noexcept {
        while (pending_ > 0) {
            struct epoll_event ev[16];
            const int ep = epfd();
            const int n = sys::epoll_wait(ep, ev, 16, 0);
            if (n > 0) {
                for (int i = 0; i < n; ++i) {
                    const int fd = ev[i].data.fd;
                    const std::uint32_t e = ev[i].events;
                    const bool bad = (e & (EPOLLERR | EPOLLHUP)) != 0;
                    ares_process_fd(channel_, (e & EPOLLIN) != 0 || bad ? fd : ARES_SOCKET_BAD,
                                    (e & EPOLLOUT) != 0 || bad ? fd : ARES_SOCKET_BAD);
                }
                ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
                continue;
            }
            struct timeval tv;
            Nanos deadline = kNoDeadline;
            if (ares_timeout(channel_, nullptr, &tv) != nullptr) {
                deadline = now_ns() + static_cast<Nanos>(tv.tv_sec) * 1'000'000'000 +
                           static_cast<Nanos>(tv.tv_usec) * 1000;
            }
            if (io_wait(ep, POLLIN, deadline) != 0) {
                if (errno == ETIMEDOUT) {
                    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
                    continue;
                }
                if (errno == EBADF && epfd() != ep) {
                    continue;  // the program took the set's number: the set moved (own_fd.hpp)
                }
                ares_cancel(channel_);  // the driver was killed: fail every query
            }
        }
        driving_ = false;
    }

    static void sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
        auto* self = static_cast<Channel*>(data);
        if (self->orphaned_) {
            return;
        }
        if (readable == 0 && writable == 0) {
            (void)sys::epoll_ctl(self->epfd(), EPOLL_CTL_DEL, fd, nullptr);
            return;
        }
        struct epoll_event ev{};
        ev.events = (readable != 0 ? EPOLLIN : 0u) | (writable != 0 ? EPOLLOUT : 0u);
        ev.data.fd = fd;
        if (sys::epoll_ctl(self->epfd(), EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
            (void)sys::epoll_ctl(self->epfd(), EPOLL_CTL_ADD, fd, &ev);
        }
    }

    // c-ares' own socket I/O, on the real calls: never the shim's.
    static ares_socket_t a_socket(int d, int t, int p, void*) noexcept {
        // High, out of the program's numbers, but not recorded as the
        // library's: c-ares keeps the number, so a dup2 onto it could not
        // be honoured by moving the socket (own_fd.hpp).
        int fd = sys::socket(d, t | SOCK_NONBLOCK | SOCK_CLOEXEC, p);
        if (fd >= 0) {
            fd = high_fd(fd);
        }
        if (fd >= 0 && t == SOCK_DGRAM) {
            // Every query of the hub shares this socket, and the answers to
            // a burst of them arrive before the driver next runs: room for
            // a thousand (net.core.rmem_max may cap it).
            const int size = 1 << 20;
            (void)sys::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        }
        return fd;
    }
    static int a_close(ares_socket_t fd, void* data) noexcept {
        auto* self = static_cast<Channel*>(data);
        if (!self->orphaned_) {
            (void)sys::epoll_ctl(self->epfd(), EPOLL_CTL_DEL, fd, nullptr);
        }
        return sys::close(fd);
    }
    static int a_connect(ares_socket_t fd, const struct sockaddr* a, ares_socklen_t l, void*) noexcept {
        return sys::connect(fd, a, l);
    }
    static ares_ssize_t a_recvfrom(ares_socket_t fd, void* b, size_t n, int f, struct sockaddr* a,
                                   ares_socklen_t* l, void*) noexcept {
        return sys::recvfrom(fd, b, n, f | MSG_DONTWAIT, a, l);
    }
    static ares_ssize_t a_sendv(ares_socket_t fd, const struct iovec* v, int n, void*) noexcept {
        struct msghdr m{};
        m.msg_iov = const_cast<struct iovec*>(v);
        m.msg_iovlen = static_cast<std::size_t>(n);
        return sys::sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    }

    int epfd() const noexcept { return epfd_.load(std::memory_order_relaxed); }

    ares_channel channel_ = nullptr;
    std::atomic<int> epfd_{-1};  // the library's own (own_fd.hpp): the shim may move it
    std::size_t pending_ = 0;
    bool driving_ = false;
    bool orphaned_ = false;
};

// Bumped in every forked child (pthread_atfork), so that a thread's
// channels, made before the fork, are replaced on their next use.
std::atomic<unsigned> fork_generation{0};

void note_fork() noexcept {
    fork_generation.fetch_add(1, std::memory_order_relaxed);
    Pool::get().after_fork_child();
}

void hook_fork() noexcept {
    static const bool hooked = pthread_atfork(nullptr, nullptr, &note_fork) == 0;
    (void)hooked;
}

// This thread's channels, by server list.
struct Channels {
    std::unordered_map<std::string, std::unique_ptr<Channel>> map;
    unsigned generation = 0;
    ~Channels() {
        // Queries still in flight (their fibers can no longer run) are
        // destroyed with EDESTRUCTION, which the callbacks treat as "drop".
        map.clear();
    }
};

Channel* channel_for(const std::string& servers) noexcept {
    static thread_local Channels channels;
    hook_fork();
    if (const unsigned g = fork_generation.load(std::memory_order_relaxed); g != channels.generation) {
        // A forked child: the parent's channels must not be used (their
        // sockets are the parent's) nor torn down through the shared epoll
        // sets. Fresh ones are made on demand.
        for (auto& [key, ch] : channels.map) {
            ch->orphan();
        }
        channels.map.clear();
        channels.generation = g;
    }
    try {
        auto it = channels.map.find(servers);
        if (it != channels.map.end()) {
            return it->second.get();
        }
        Channel* c = Channel::make(servers);
        if (c == nullptr) {
            return nullptr;
        }
        channels.map.emplace(servers, std::unique_ptr<Channel>(c));
        return c;
    } catch (...) {
        errno = ENOMEM;
        return nullptr;
    }
}

// The callbacks' common ending. Drops an abandoned query; wakes a parked
// fiber; never touches a fiber when the channel is being destroyed.
void complete(Query* q, int status) noexcept {
    q->ch->finished();
    if (q->abandoned) {
        if (q->ai != nullptr) {
            ares_freeaddrinfo(q->ai);
        }
        delete q;
        return;
    }
    q->status = status;
    q->done = true;
    if (status != ARES_EDESTRUCTION && q->parked) {
        unpark(q->w, WakeReason::ready);
    }
}

void on_addrinfo(void* arg, int status, int, struct ares_addrinfo* ai) noexcept {
    auto* q = static_cast<Query*>(arg);
    q->ai = ai;
    complete(q, status);
}

void on_host(void* arg, int status, int, struct hostent* h) noexcept {
    auto* q = static_cast<Query*>(arg);
    if (status == ARES_SUCCESS && h != nullptr && !q->abandoned) {
        try {
            copy_hostent(h, q->host);
        } catch (...) {
            status = ARES_ENOMEM;
        }
    }
    complete(q, status);
}

// Waits for q. 0 when its callback ran (q->status tells); else the errno
// that ended the wait, q then abandoned (owned by its callback).
int await(Query* q, const Request& req) noexcept {
    q->ch->started();
    while (!q->done) {
        q->parked = true;
        const WakeReason why = park(q->w, req.deadline);
        q->parked = false;
        if (q->done) {
            break;
        }
        if (why == WakeReason::ready) {
            continue;
        }
        q->abandoned = true;
        return why == WakeReason::timed_out ? ETIMEDOUT : interruption_errno(q->w);
    }
    return 0;
}

void on_raw(void* arg, int status, int, unsigned char* abuf, int alen) noexcept {
    auto* q = static_cast<Query*>(arg);
    if (status == ARES_SUCCESS && !q->abandoned) {
        try {
            q->answer.assign(abuf, abuf + alen);
        } catch (...) {
            status = ARES_ENOMEM;
        }
    }
    complete(q, status);
}

// A name's addresses, in glibc's order (sort_like_glibc).
struct Names {
    std::vector<std::string> addrs;  // numeric, for glibc's AI_NUMERICHOST
    std::vector<int> families;
    std::string canon;
    std::vector<std::string> aliases;  // from /etc/hosts or the CNAME chain
    bool aliased = false;              // the answer had a CNAME
};

// ---- /etc/hosts, as glibc's "files" reads it (again on every call) ----------------

struct HostsLine {
    int af = AF_INET;
    unsigned char addr[16] = {};
    std::vector<std::string> names;
};

std::vector<HostsLine> read_hosts() {
    std::vector<HostsLine> out;
    FILE* f = std::fopen("/etc/hosts", "re");
    if (f == nullptr) {
        return out;
    }
    char line[1024];
    while (sys::fgets(line, sizeof line, f) != nullptr) {
        if (char* hash = std::strchr(line, '#')) {
            *hash = '\0';
        }
        HostsLine h;
        bool first = true;
        char* save = nullptr;
        for (char* tok = strtok_r(line, " \t\r\n", &save); tok != nullptr; tok = strtok_r(nullptr, " \t\r\n", &save)) {
            if (first) {
                first = false;
                struct in_addr v4{};
                if (inet_pton(AF_INET6, tok, h.addr) == 1) {
                    h.af = AF_INET6;
                } else if (inet_aton(tok, &v4) != 0) {
                    std::memcpy(h.addr, &v4, sizeof v4);
                } else {
                    break;
                }
                continue;
            }
            h.names.emplace_back(tok);
        }
        if (!h.names.empty()) {
            out.push_back(std::move(h));
        }
    }
    sys::fclose(f);
    return out;
}

std::size_t addr_len(int af) noexcept {
    return af == AF_INET6 ? sizeof(in6_addr) : sizeof(in_addr);
}

// gethostbyaddr's "files" step: the first line holding the address.
bool hosts_by_addr(const void* addr, int af, HostData& out) {
    for (const HostsLine& h : read_hosts()) {
        if (h.af == af && std::memcmp(h.addr, addr, addr_len(af)) == 0) {
            out.name = h.names[0];
            out.aliases.assign(h.names.begin() + 1, h.names.end());
            out.addrtype = af;
            out.length = static_cast<int>(addr_len(af));
            out.addrs.assign(1, std::string(static_cast<const char*>(addr), addr_len(af)));
            return true;
        }
    }
    return false;
}

// The "files" step by name (host.conf's "multi on": every line naming it;
// AF_UNSPEC: both families, as glibc's gethostbyname4 collects them).
bool hosts_by_name(const char* name, int family, Names& out) {
    bool found = false;
    for (const HostsLine& h : read_hosts()) {
        if (family != AF_UNSPEC && h.af != family) {
            continue;
        }
        const bool named = std::any_of(h.names.begin(), h.names.end(),
                                       [&](const std::string& n) { return strcasecmp(n.c_str(), name) == 0; });
        if (!named) {
            continue;
        }
        char buf[INET6_ADDRSTRLEN];
        if (inet_ntop(h.af, h.addr, buf, sizeof buf) == nullptr) {
            continue;
        }
        if (!found) {
            out.canon = h.names[0];
            out.aliases.assign(h.names.begin() + 1, h.names.end());
            found = true;
        }
        out.addrs.emplace_back(buf);
        out.families.push_back(h.af);
    }
    return found;
}

// The names c-ares answers itself, without asking the servers (RFC 6761:
// "localhost" and "*.localhost"). glibc has no such rule: it takes what
// /etc/hosts says and asks the servers for the rest (on a host whose
// /etc/hosts has no "::1 localhost" line, localhost's IPv6 address comes
// from DNS, or does not come). These go through local_names instead.
bool localhost_name(const char* name) noexcept {
    std::string_view n(name);
    if (!n.empty() && n.back() == '.') {
        n.remove_suffix(1);
    }
    constexpr std::string_view lh = "localhost";
    if (n.size() < lh.size() || strncasecmp(n.data() + n.size() - lh.size(), lh.data(), lh.size()) != 0) {
        return false;
    }
    return n.size() == lh.size() || n[n.size() - lh.size() - 1] == '.';
}

// One DNS query through the channel: ares_search (resolv.conf's search
// list and ndots) or ares_query (the name as it is). 0 with the reply in
// `answer`, an ares status, or -errno for a failed wait.
int ares_raw(Channel* ch, const char* name, int type, bool search, std::vector<unsigned char>& answer,
             const Request& req) noexcept {
    auto* q = new (std::nothrow) Query;
    if (q == nullptr) {
        return ARES_ENOMEM;
    }
    q->ch = ch;
    if (search) {
        ares_search(ch->get(), name, C_IN, type, &on_raw, q);
    } else {
        ares_query(ch->get(), name, C_IN, type, &on_raw, q);
    }
    if (const int e = await(q, req); e != 0) {
        return -e;
    }
    const int status = q->status;
    answer = std::move(q->answer);
    delete q;
    return status;
}

// The failures glibc reports as TRY_AGAIN / EAI_AGAIN: no usable answer
// from any server (res_send moves on from SERVFAIL, REFUSED, NOTIMP and
// FORMERR replies, then gives up with ECONNREFUSED or a timeout).
bool temporary(int status) noexcept {
    switch (status) {
        case ARES_ETIMEOUT:
        case ARES_ESERVFAIL:
        case ARES_ECONNREFUSED:
        case ARES_EREFUSED:
        case ARES_ENOTIMP:
        case ARES_EFORMERR:
        case ARES_ECANCELLED:
        case ARES_EDESTRUCTION:
            return true;
        default:
            return false;
    }
}

// A name's A or AAAA records through the servers.
int dns_addrs(Channel* ch, const char* name, int family, Names& out, const Request& req) noexcept {
    std::vector<unsigned char> answer;
    const int r = ares_raw(ch, name, family == AF_INET ? 1 /* T_A */ : 28 /* T_AAAA */, true, answer, req);
    if (r != 0) {
        return r;
    }
    struct hostent* h = nullptr;
    const int n = static_cast<int>(answer.size());
    const int pr = family == AF_INET ? ares_parse_a_reply(answer.data(), n, &h, nullptr, nullptr)
                                     : ares_parse_aaaa_reply(answer.data(), n, &h, nullptr, nullptr);
    if (pr != ARES_SUCCESS) {
        return pr;
    }
    try {
        for (char** a = h->h_addr_list; a != nullptr && *a != nullptr; ++a) {
            char buf[INET6_ADDRSTRLEN];
            if (inet_ntop(family, *a, buf, sizeof buf) != nullptr) {
                out.addrs.emplace_back(buf);
                out.families.push_back(family);
            }
        }
        if (out.canon.empty() && h->h_name != nullptr) {
            out.canon = h->h_name;
        }
        for (char** a = h->h_aliases; a != nullptr && *a != nullptr; ++a) {
            out.aliased = true;
            out.aliases.emplace_back(*a);
        }
    } catch (...) {
        ares_free_hostent(h);
        return ARES_ENOMEM;
    }
    ares_free_hostent(h);
    return 0;
}

// glibc's way for "hosts: files dns": /etc/hosts, then the servers (for
// AF_UNSPEC both queries; a success of either is a success).
int local_names(Channel* ch, const char* name, int family, Names& out, const Request& req) noexcept {
    try {
        if (hosts_by_name(name, family, out)) {
            return 0;
        }
    } catch (...) {
        return ARES_ENOMEM;
    }
    if (family != AF_UNSPEC) {
        const int r = dns_addrs(ch, name, family, out, req);
        return r == 0 && out.addrs.empty() ? ARES_ENODATA : r;
    }
    const int r4 = dns_addrs(ch, name, AF_INET, out, req);
    if (r4 < 0) {
        return r4;
    }
    const int r6 = dns_addrs(ch, name, AF_INET6, out, req);
    if (r6 < 0) {
        return r6;
    }
    if (!out.addrs.empty()) {
        return 0;
    }
    if (r4 == 0 || r6 == 0) {
        return ARES_ENODATA;
    }
    if (temporary(r4)) {
        return r4;
    }
    if (temporary(r6)) {
        return r6;
    }
    return r4 == ARES_ENODATA && r6 == ARES_ENODATA ? ARES_ENODATA : ARES_ENOTFOUND;
}

// 0 with `out` filled, an ares status (> 0), or -errno for a failed wait.
// Unsorted: the caller sorts the whole list as glibc does.
int ares_names(Channel* ch, const char* name, int family, Names& out, const Request& req) noexcept {
    if (localhost_name(name)) {
        return local_names(ch, name, family, out, req);
    }
    auto* q = new (std::nothrow) Query;
    if (q == nullptr) {
        return ARES_ENOMEM;
    }
    q->ch = ch;
    struct ares_addrinfo_hints h{};
    h.ai_family = family;
    // c-ares' own RFC 6724 sort probes source addresses with sockets it
    // makes outside the socket functions; sort_like_glibc sorts instead.
    h.ai_flags = ARES_AI_CANONNAME | ARES_AI_NOSORT;
    ares_getaddrinfo(ch->get(), name, nullptr, &h, &on_addrinfo, q);
    if (const int e = await(q, req); e != 0) {
        return -e;
    }
    const int status = q->status;
    if (status == ARES_SUCCESS && q->ai != nullptr) {
        try {
            for (auto* n = q->ai->nodes; n != nullptr; n = n->ai_next) {
                char buf[INET6_ADDRSTRLEN];
                const void* a = n->ai_family == AF_INET6
                                    ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(n->ai_addr)->sin6_addr)
                                    : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(n->ai_addr)->sin_addr);
                if (inet_ntop(n->ai_family, a, buf, sizeof buf) != nullptr) {
                    out.addrs.emplace_back(buf);
                    out.families.push_back(n->ai_family);
                }
            }
            const char* canon = q->ai->name;
            out.aliased = q->ai->cnames != nullptr;
            for (auto* c = q->ai->cnames; c != nullptr; c = c->next) {
                if (c->name != nullptr && c->next == nullptr) {
                    canon = c->name;
                }
            }
            if (canon != nullptr) {
                out.canon = canon;
            }
        } catch (...) {
            ares_freeaddrinfo(q->ai);
            delete q;
            return ARES_ENOMEM;
        }
    }
    if (q->ai != nullptr) {
        ares_freeaddrinfo(q->ai);
    }
    delete q;
    if (status == ARES_SUCCESS && out.addrs.empty()) {
        return ARES_ENODATA;
    }
    if (status == ARES_SUCCESS) {
        // glibc's order before its sort: the A answer, then the AAAA one.
        // (Moves and swaps only: nothing here can throw.)
        for (std::size_t i = 0, v4 = 0; i < out.addrs.size(); ++i) {
            if (out.families[i] == AF_INET) {
                for (std::size_t j = i; j > v4; --j) {
                    std::swap(out.addrs[j], out.addrs[j - 1]);
                    std::swap(out.families[j], out.families[j - 1]);
                }
                ++v4;
            }
        }
    }
    return status;
}

// ---- glibc's destination address sort (RFC 3484 with gai.conf) ----------------------

struct PrefixRule {
    unsigned char prefix[16];
    int bits;
    int value;
};

struct ScopeRule {
    std::uint32_t addr;  // network order
    std::uint32_t mask;
    int scope;
};

PrefixRule rule(std::initializer_list<unsigned char> head, int bits, int value) {
    PrefixRule r{{}, bits, value};
    std::copy(head.begin(), head.end(), r.prefix);
    return r;
}

// glibc's tables (RFC 3484's, plus ULA and Teredo labels), replaced by
// /etc/gai.conf's "label", "precedence" and "scopev4" lines when it has any.
struct SortPolicy {
    std::vector<PrefixRule> labels{
        rule({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 0), rule({0x20, 0x02}, 16, 2),
        rule({}, 96, 3), rule({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 4),
        rule({0xfe, 0xc0}, 10, 5), rule({0xfc}, 7, 6), rule({0x20, 0x01}, 32, 7), rule({}, 0, 1),
    };
    std::vector<PrefixRule> precedence{
        rule({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 50), rule({0x20, 0x02}, 16, 30),
        rule({}, 96, 20), rule({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 10), rule({}, 0, 40),
    };
    std::vector<ScopeRule> scopes{
        {htonl(0xa9fe0000u), htonl(0xffff0000u), 2},
        {htonl(0x7f000000u), htonl(0xff000000u), 2},
        {0, 0, 14},
    };

    // Read once (glibc rereads gai.conf only with "reload yes"). Throws
    // bad_alloc.
    static const SortPolicy& get() {
        static const SortPolicy p = [] {
            SortPolicy sp;
            sp.load("/etc/gai.conf");
            return sp;
        }();
        return p;
    }

private:
    void load(const char* path) {
        FILE* f = std::fopen(path, "re");
        if (f == nullptr) {
            return;
        }
        std::vector<PrefixRule> lab, prec;
        std::vector<ScopeRule> sc;
        char line[512];
        while (sys::fgets(line, sizeof line, f) != nullptr) {
            if (char* hash = std::strchr(line, '#')) {
                *hash = '\0';
            }
            char key[32], spec[128];
            int value = 0;
            if (std::sscanf(line, "%31s %127s %d", key, spec, &value) != 3) {
                continue;
            }
            char* slash = std::strchr(spec, '/');
            int bits = -1;
            if (slash != nullptr) {
                *slash = '\0';
                bits = std::atoi(slash + 1);
            }
            unsigned char a6[16];
            struct in_addr a4{};
            const bool is6 = inet_pton(AF_INET6, spec, a6) == 1;
            if (std::strcmp(key, "label") == 0 || std::strcmp(key, "precedence") == 0) {
                if (!is6 || bits > 128) {
                    continue;
                }
                PrefixRule r{{}, bits < 0 ? 128 : bits, value};
                std::memcpy(r.prefix, a6, 16);
                (key[0] == 'l' ? lab : prec).push_back(r);
            } else if (std::strcmp(key, "scopev4") == 0) {
                int b4 = -1;
                if (is6 && IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(a6)) && (bits < 0 || bits >= 96)) {
                    std::memcpy(&a4, a6 + 12, 4);
                    b4 = bits < 0 ? 32 : bits - 96;
                } else if (!is6 && inet_pton(AF_INET, spec, &a4) == 1 && bits <= 32) {
                    b4 = bits < 0 ? 32 : bits;
                }
                if (b4 >= 0) {
                    const std::uint32_t mask = b4 == 0 ? 0 : htonl(0xffffffffu << (32 - b4));
                    sc.push_back({a4.s_addr & mask, mask, value});
                }
            }
        }
        sys::fclose(f);
        auto finish = [](std::vector<PrefixRule>& v, int dflt, std::vector<PrefixRule>& into) {
            if (v.empty()) {
                return;
            }
            if (std::none_of(v.begin(), v.end(), [](const PrefixRule& r) { return r.bits == 0; })) {
                v.push_back(rule({}, 0, dflt));
            }
            std::stable_sort(v.begin(), v.end(), [](const PrefixRule& a, const PrefixRule& b) { return a.bits > b.bits; });
            into = std::move(v);
        };
        finish(lab, 1, labels);
        finish(prec, 40, precedence);
        if (!sc.empty()) {
            if (std::none_of(sc.begin(), sc.end(), [](const ScopeRule& r) { return r.mask == 0; })) {
                sc.push_back({0, 0, 14});
            }
            std::stable_sort(sc.begin(), sc.end(),
                             [](const ScopeRule& a, const ScopeRule& b) { return ntohl(a.mask) > ntohl(b.mask); });
            scopes = std::move(sc);
        }
    }
};

// An address as glibc's tables see it: IPv4 as ::ffff:a.b.c.d.
void as_v6(const sockaddr_storage& ss, unsigned char out[16]) noexcept {
    if (ss.ss_family == AF_INET6) {
        std::memcpy(out, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, 16);
    } else {
        std::memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        std::memcpy(out + 12, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, 4);
    }
}

int match_rule(const sockaddr_storage& ss, const std::vector<PrefixRule>& rules) noexcept {
    unsigned char a[16];
    as_v6(ss, a);
    for (const PrefixRule& r : rules) {
        const int whole = r.bits / 8, rest = r.bits % 8;
        if (std::memcmp(a, r.prefix, static_cast<std::size_t>(whole)) != 0) {
            continue;
        }
        const unsigned mask = (0xff00u >> rest) & 0xffu;
        if (rest == 0 || (a[whole] & mask) == (r.prefix[whole] & mask)) {
            return r.value;
        }
    }
    return rules.empty() ? 0 : rules.back().value;
}

int scope_of(const sockaddr_storage& ss, const SortPolicy& p) noexcept {
    if (ss.ss_family == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr;
        if (IN6_IS_ADDR_MULTICAST(&a)) {
            return a.s6_addr[1] & 0xf;
        }
        if (IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_LOOPBACK(&a)) {
            return 2;
        }
        return IN6_IS_ADDR_SITELOCAL(&a) ? 5 : 14;
    }
    if (ss.ss_family == AF_INET) {
        const std::uint32_t a = reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr;
        for (const ScopeRule& r : p.scopes) {
            if ((a & r.mask) == r.addr) {
                return r.scope;
            }
        }
        return 14;
    }
    return 15;
}

struct SortItem {
    sockaddr_storage dst{};
    sockaddr_storage src{};
    bool has_src = false;
    int prefixlen = 0;
    std::size_t order = 0;
};

int fls32(std::uint32_t v) noexcept {
    return v == 0 ? 0 : 32 - __builtin_clz(v);
}

// glibc's rfc3484_sort comparison: true when a goes before b. Rules 3, 4
// and 7 (deprecated and home addresses, tunnels) never decide here: the
// flags behind them are not visible without netlink, and on ordinary hosts
// they are all clear.
bool before(const SortItem& a, const SortItem& b, const SortPolicy& p) noexcept {
    if (a.has_src != b.has_src) {  // 1: avoid unusable destinations
        return a.has_src;
    }
    const int a_dscope = scope_of(a.dst, p), b_dscope = scope_of(b.dst, p);
    if (a.has_src) {  // 2: prefer matching scope
        const bool am = a_dscope == scope_of(a.src, p), bm = b_dscope == scope_of(b.src, p);
        if (am != bm) {
            return am;
        }
        // 5: prefer matching label
        const bool al = match_rule(a.dst, p.labels) == match_rule(a.src, p.labels);
        const bool bl = match_rule(b.dst, p.labels) == match_rule(b.src, p.labels);
        if (al != bl) {
            return al;
        }
    }
    const int ap = match_rule(a.dst, p.precedence), bp = match_rule(b.dst, p.precedence);
    if (ap != bp) {  // 6: prefer higher precedence
        return ap > bp;
    }
    if (a_dscope != b_dscope) {  // 8: prefer smaller scope
        return a_dscope < b_dscope;
    }
    if (a.has_src && a.dst.ss_family == b.dst.ss_family) {  // 9: longest matching prefix
        int abit = 0, bbit = 0;
        if (a.dst.ss_family == AF_INET) {
            // The common prefix counts only inside the source's subnet.
            auto common = [](const SortItem& x) {
                const std::uint32_t d = ntohl(reinterpret_cast<const sockaddr_in*>(&x.dst)->sin_addr.s_addr);
                const std::uint32_t s = ntohl(reinterpret_cast<const sockaddr_in*>(&x.src)->sin_addr.s_addr);
                // glibc shifts by 32 for a prefix length of 0 (x86: by 0).
                const std::uint32_t mask = x.prefixlen <= 0 ? 0xffffffffu : 0xffffffffu << (32 - x.prefixlen);
                return (s & mask) == (d & mask) ? 32 - fls32(d ^ s) : 0;
            };
            if (common(a) != common(b)) {
                return common(a) > common(b);
            }
        } else {
            const auto* ad = reinterpret_cast<const sockaddr_in6*>(&a.dst)->sin6_addr.s6_addr;
            const auto* as = reinterpret_cast<const sockaddr_in6*>(&a.src)->sin6_addr.s6_addr;
            const auto* bd = reinterpret_cast<const sockaddr_in6*>(&b.dst)->sin6_addr.s6_addr;
            const auto* bs = reinterpret_cast<const sockaddr_in6*>(&b.src)->sin6_addr.s6_addr;
            auto word = [](const std::uint8_t* x, int i) {
                std::uint32_t w;
                std::memcpy(&w, x + 4 * i, 4);
                return ntohl(w);
            };
            int i = 0;
            while (i < 4 && word(ad, i) == word(as, i) && word(bd, i) == word(bs, i)) {
                ++i;
            }
            if (i < 4) {
                abit = fls32(word(ad, i) ^ word(as, i));
                bbit = fls32(word(bd, i) ^ word(bs, i));
            }
        }
        if (abit != bbit) {
            return abit < bbit;
        }
    }
    return a.order < b.order;  // 10: keep the order
}

// Orders `n` as glibc's getaddrinfo orders its answer: each destination's
// source address is found by connecting a UDP socket to it (no packet is
// sent), through the real calls, never the shim's.
void sort_like_glibc(Names& n) {
    if (n.addrs.size() < 2) {
        return;
    }
    const SortPolicy& p = SortPolicy::get();
    std::vector<SortItem> items(n.addrs.size());
    struct ifaddrs* ifa = nullptr;
    const bool have_ifa = getifaddrs(&ifa) == 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
        SortItem& it = items[i];
        it.order = i;
        socklen_t len = 0;
        if (n.families[i] == AF_INET6) {
            auto* s6 = reinterpret_cast<sockaddr_in6*>(&it.dst);
            s6->sin6_family = AF_INET6;
            inet_pton(AF_INET6, n.addrs[i].c_str(), &s6->sin6_addr);
            len = sizeof *s6;
        } else {
            auto* s4 = reinterpret_cast<sockaddr_in*>(&it.dst);
            s4->sin_family = AF_INET;
            inet_pton(AF_INET, n.addrs[i].c_str(), &s4->sin_addr);
            len = sizeof *s4;
        }
        const int fd = sys::socket(n.families[i], SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_IP);
        if (fd < 0) {
            continue;
        }
        socklen_t slen = sizeof it.src;
        it.has_src = sys::connect(fd, reinterpret_cast<sockaddr*>(&it.dst), len) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&it.src), &slen) == 0;
        sys::close(fd);
        if (!it.has_src || !have_ifa) {
            continue;
        }
        for (auto* a = ifa; a != nullptr; a = a->ifa_next) {
            if (a->ifa_addr == nullptr || a->ifa_netmask == nullptr || a->ifa_addr->sa_family != it.src.ss_family) {
                continue;
            }
            const bool same = it.src.ss_family == AF_INET
                                  ? reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr ==
                                        reinterpret_cast<const sockaddr_in*>(&it.src)->sin_addr.s_addr
                                  : std::memcmp(&reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr,
                                                &reinterpret_cast<const sockaddr_in6*>(&it.src)->sin6_addr, 16) == 0;
            if (!same) {
                continue;
            }
            const auto* m = a->ifa_netmask->sa_family == AF_INET
                                ? reinterpret_cast<const unsigned char*>(
                                      &reinterpret_cast<const sockaddr_in*>(a->ifa_netmask)->sin_addr)
                                : reinterpret_cast<const sockaddr_in6*>(a->ifa_netmask)->sin6_addr.s6_addr;
            const std::size_t mlen = a->ifa_netmask->sa_family == AF_INET ? 4 : 16;
            it.prefixlen = 0;
            for (std::size_t k = 0; k < mlen; ++k) {
                // Counted by hand: __builtin_popcount would call into libgcc_s
                // (no popcnt instruction in the baseline ISA).
                for (unsigned b = m[k]; b != 0; b &= b - 1) {
                    ++it.prefixlen;
                }
            }
            break;
        }
    }
    if (have_ifa) {
        freeifaddrs(ifa);
    }
    std::stable_sort(items.begin(), items.end(), [&](const SortItem& a, const SortItem& b) { return before(a, b, p); });
    Names sorted;
    for (const SortItem& it : items) {
        sorted.addrs.push_back(std::move(n.addrs[it.order]));
        sorted.families.push_back(n.families[it.order]);
    }
    n.addrs = std::move(sorted.addrs);
    n.families = std::move(sorted.families);
}


// glibc's __check_pf: has the host an IPv4 address other than 127.0.0.1,
// an IPv6 address other than ::1?
void seen_families(bool& v4, bool& v6) noexcept {
    v4 = v6 = false;
    struct ifaddrs* ifa = nullptr;
    if (getifaddrs(&ifa) != 0) {
        v4 = v6 = true;
        return;
    }
    for (auto* i = ifa; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr) {
            continue;
        }
        if (i->ifa_addr->sa_family == AF_INET) {
            const auto* s = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
            v4 = v4 || s->sin_addr.s_addr != htonl(INADDR_LOOPBACK);
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            const auto* s = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
            v6 = v6 || !IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
        }
    }
    freeifaddrs(ifa);
}

// glibc's res_hnok: nss_dns looks up only names made of labels of
// letters, digits, '-' and '_', not starting with '-'. Others are not
// found, without a query.
bool host_name_ok(const char* name) noexcept {
    const std::size_t n = std::strlen(name);
    if (n == 0 || name[0] == '-' || n > NS_MAXDNAME) {
        return false;
    }
    if (std::strcmp(name, ".") == 0) {
        return true;
    }
    std::size_t label = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char c = static_cast<unsigned char>(name[i]);
        if (c == '.') {
            if (label == 0) {
                return false;  // an empty label
            }
            label = 0;
            continue;
        }
        const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
                        c == '_';
        if (!ok || ++label > 63) {
            return false;
        }
    }
    return true;
}

int wait_to_eai(int r) noexcept {
    return r < 0 ? eai_for_wait(-r) : ares_to_eai(r);
}

int ares_getaddrinfo_impl(const char* node, const char* service, const struct addrinfo* hints,
                          struct addrinfo** res, const Request& req) noexcept {
    const Libc& l = libc();
    struct addrinfo h{};
    if (hints != nullptr) {
        h.ai_flags = hints->ai_flags;
        h.ai_family = hints->ai_family;
        h.ai_socktype = hints->ai_socktype;
        h.ai_protocol = hints->ai_protocol;
    } else {
        h.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;  // glibc's default hints
    }
    // Everything but the name lookup is glibc's: numeric hosts, no host,
    // flag, family, socket type and service checks. A name that is not
    // numeric comes back EAI_NONAME (the service already checked).
    {
        struct addrinfo nh = h;
        nh.ai_flags |= AI_NUMERICHOST;
        const int rc = l.getaddrinfo(node, service, &nh, res);
        if (node == nullptr || (h.ai_flags & AI_NUMERICHOST) != 0 || rc != EAI_NONAME) {
            if (rc == 0 && (h.ai_flags & AI_NUMERICHOST) == 0) {
                for (auto* a = *res; a != nullptr; a = a->ai_next) {
                    a->ai_flags = h.ai_flags;
                }
            }
            return rc;
        }
    }
    *res = nullptr;
    int family = h.ai_family;
    if ((h.ai_flags & AI_ADDRCONFIG) != 0) {
        bool v4 = false, v6 = false;
        seen_families(v4, v6);
        if (family == AF_UNSPEC && (v4 || v6) && v4 != v6) {
            family = v4 ? AF_INET : AF_INET6;
        } else if ((family == AF_INET && !v4) || (family == AF_INET6 && !v6)) {
            return EAI_NONAME;
        }
    }
    if (!host_name_ok(node)) {
        return EAI_NONAME;
    }
    Channel* ch = channel_for(req.servers);
    if (ch == nullptr) {
        return EAI_SYSTEM;
    }
    Names names;
    const bool mapped = family == AF_INET6 && (h.ai_flags & AI_V4MAPPED) != 0;
    int r = 0;
    if (mapped && (h.ai_flags & AI_ALL) != 0) {
        // Both families, in c-ares' RFC 6724 order (glibc sorts the mapped
        // addresses by the same rules), the IPv4 ones then mapped.
        r = ares_names(ch, node, AF_UNSPEC, names, req);
        for (std::size_t i = 0; r == 0 && i < names.addrs.size(); ++i) {
            if (names.families[i] == AF_INET) {
                names.addrs[i] = "::ffff:" + names.addrs[i];
                names.families[i] = AF_INET6;
            }
        }
    } else {
        r = ares_names(ch, node, family, names, req);
    }
    // glibc's AI_V4MAPPED: IPv4 answers, mapped, when there is no IPv6 one
    // (whatever the IPv6 query's failure).
    if (mapped && r > 0) {
        Names v4;
        const int r4 = ares_names(ch, node, AF_INET, v4, req);
        if (r4 < 0) {
            return wait_to_eai(r4);
        }
        if (r4 == 0) {
            for (const std::string& a : v4.addrs) {
                names.addrs.push_back("::ffff:" + a);
                names.families.push_back(AF_INET6);
            }
            names.canon = v4.canon;
            r = 0;
        }
    }
    if (r == ARES_ENODATA && family != AF_UNSPEC) {
        // glibc: a name that is an alias (CNAME) of one without addresses
        // of the family is not found (EAI_NONAME), not EAI_NODATA. The
        // other family's answer tells whether there is a CNAME.
        Names other;
        const int ro = ares_names(ch, node, family == AF_INET ? AF_INET6 : AF_INET, other, req);
        if (ro < 0) {
            return wait_to_eai(ro);
        }
        if (ro == 0 && other.aliased) {
            return EAI_NONAME;
        }
    }
    if (r != 0) {
        return wait_to_eai(r);
    }
    try {
        sort_like_glibc(names);
    } catch (...) {
        return EAI_MEMORY;
    }
    struct addrinfo* head = nullptr;
    struct addrinfo** tail = &head;
    for (std::size_t i = 0; i < names.addrs.size(); ++i) {
        struct addrinfo nh{};
        nh.ai_flags = (h.ai_flags & (AI_PASSIVE | AI_NUMERICSERV)) | AI_NUMERICHOST;
        nh.ai_family = names.families[i];
        nh.ai_socktype = h.ai_socktype;
        nh.ai_protocol = h.ai_protocol;
        struct addrinfo* part = nullptr;
        const int rc = l.getaddrinfo(names.addrs[i].c_str(), service, &nh, &part);
        if (rc != 0) {
            if (head != nullptr) {
                l.freeaddrinfo(head);
            }
            return rc;
        }
        *tail = part;
        while (*tail != nullptr) {
            (*tail)->ai_flags = h.ai_flags;
            tail = &(*tail)->ai_next;
        }
    }
    if (head == nullptr) {
        return EAI_NONAME;
    }
    if ((h.ai_flags & AI_CANONNAME) != 0) {
        // glibc frees ai_canonname with free(): strdup is its allocation.
        head->ai_canonname = strdup(names.canon.empty() ? node : names.canon.c_str());
        if (head->ai_canonname == nullptr) {
            l.freeaddrinfo(head);
            return EAI_MEMORY;
        }
    }
    *res = head;
    return 0;
}

// gethostbyname2 through the channel. 0 with `out` filled, an ares
// status, or -errno.
int ares_byname(const char* name, int af, HostData& out, const Request& req) noexcept {
    Channel* ch = channel_for(req.servers);
    if (ch == nullptr) {
        return -errno;
    }
    if (localhost_name(name)) {
        Names n;
        const int r = local_names(ch, name, af, n, req);
        if (r != 0) {
            return r;
        }
        try {
            out.name = n.canon.empty() ? name : n.canon;
            out.aliases = std::move(n.aliases);
            out.addrtype = af;
            out.length = static_cast<int>(addr_len(af));
            out.addrs.clear();
            for (const std::string& a : n.addrs) {
                unsigned char b[16];
                if (inet_pton(af, a.c_str(), b) == 1) {
                    out.addrs.emplace_back(reinterpret_cast<const char*>(b), addr_len(af));
                }
            }
        } catch (...) {
            return ARES_ENOMEM;
        }
        return 0;
    }
    auto* q = new (std::nothrow) Query;
    if (q == nullptr) {
        return ARES_ENOMEM;
    }
    q->ch = ch;
    ares_gethostbyname(ch->get(), name, af, &on_host, q);
    if (const int e = await(q, req); e != 0) {
        return -e;
    }
    const int status = q->status;
    if (status == ARES_SUCCESS) {
        out = std::move(q->host);
    }
    delete q;
    return status;
}

// "1.2.0.192.in-addr.arpa", or the nibbles under ip6.arpa.
std::string ptr_name(const void* addr, int af) {
    const auto* b = static_cast<const unsigned char*>(addr);
    std::string n;
    char part[8];
    if (af == AF_INET) {
        for (int i = 3; i >= 0; --i) {
            std::snprintf(part, sizeof part, "%u.", b[i]);
            n += part;
        }
        return n + "in-addr.arpa";
    }
    for (int i = 15; i >= 0; --i) {
        std::snprintf(part, sizeof part, "%x.%x.", b[i] & 0xf, b[i] >> 4);
        n += part;
    }
    return n + "ip6.arpa";
}

// gethostbyaddr as glibc does it for "hosts: files dns": /etc/hosts, then
// a PTR query whose failure is told apart (NXDOMAIN: not found; SERVFAIL,
// refused, no answer: try again), which c-ares' own gethostbyaddr does not
// (it reports every failure as not found). 0 with `out` filled, an ares
// status, or -errno.
int ares_byaddr(const void* addr, socklen_t len, int af, HostData& out, const Request& req) noexcept {
    std::string name;
    try {
        if (hosts_by_addr(addr, af, out)) {
            return 0;
        }
        name = ptr_name(addr, af);
    } catch (...) {
        return ARES_ENOMEM;
    }
    Channel* ch = channel_for(req.servers);
    if (ch == nullptr) {
        return -errno;
    }
    std::vector<unsigned char> answer;
    int r = ares_raw(ch, name.c_str(), 12 /* T_PTR */, false, answer, req);
    if (r != 0) {
        return r;
    }
    struct hostent* h = nullptr;
    r = ares_parse_ptr_reply(answer.data(), static_cast<int>(answer.size()), addr, static_cast<int>(len), af, &h);
    if (r != ARES_SUCCESS) {
        return r;
    }
    try {
        copy_hostent(h, out);
        // c-ares lists the PTR name among the aliases too; glibc does not.
        std::erase(out.aliases, out.name);
    } catch (...) {
        r = ARES_ENOMEM;
    }
    ares_free_hostent(h);
    return r;
}

// An ares-side result as a hostent call's ending.
HostStatus host_status(int r, bool by_addr) noexcept {
    if (r < 0) {
        return wait_status(-r, by_addr);
    }
    if (r == ARES_ENOMEM) {
        errno = ENOMEM;
        return {NETDB_INTERNAL, ENOMEM};
    }
    const int herr = ares_to_herrno(r);
    const int ret = herr == TRY_AGAIN && !by_addr ? EAGAIN : 0;
    errno = ret;
    return {herr, ret};
}

}  // namespace

const Libc& libc() noexcept {
    static const Libc l = resolve_libc();
    return l;
}

Backend default_backend() noexcept {
    static const Backend b = env_is("GROVE_RESOLVER", "ares") ? Backend::ares : Backend::thread;
    return b;
}

bool parse_servers(const std::string& list, std::vector<Server>& out, std::string& error, std::size_t max) {
    out.clear();
    if (list.empty()) {
        return true;
    }
    std::string_view rest(list);
    for (;;) {
        const std::size_t comma = rest.find(',');
        const std::string item(rest.substr(0, comma));
        auto bad = [&](const char* why) {
            error = "bad DNS server \"" + item + "\": " + why;
            out.clear();
            return false;
        };
        if (item.empty()) {
            return bad("empty entry");
        }
        std::string host = item;
        std::string port;
        bool v6 = false;
        if (item[0] == '[') {
            const std::size_t close = item.find(']');
            if (close == std::string::npos) {
                return bad("no closing ']'");
            }
            host = item.substr(1, close - 1);
            v6 = true;
            if (close + 1 < item.size()) {
                if (item[close + 1] != ':') {
                    return bad("expected ':port' after ']'");
                }
                port = item.substr(close + 2);
                if (port.empty()) {
                    return bad("empty port");
                }
            }
        } else if (const std::size_t colon = item.find(':'); colon != std::string::npos) {
            if (item.find(':', colon + 1) != std::string::npos) {
                v6 = true;  // a plain IPv6 address, no port
            } else {
                host = item.substr(0, colon);
                port = item.substr(colon + 1);
                if (port.empty()) {
                    return bad("empty port");
                }
            }
        }
        int p = 53;
        if (!port.empty()) {
            if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
                return bad("the port is not a number");
            }
            p = std::atoi(port.c_str());
            if (p < 1 || p > 65535) {
                return bad("the port is out of range (1-65535)");
            }
        }
        Server sv;
        if (v6) {
            auto* s6 = reinterpret_cast<sockaddr_in6*>(&sv.addr);
            if (inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) != 1) {
                return bad("not an IPv6 address");
            }
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons(static_cast<std::uint16_t>(p));
            sv.len = sizeof *s6;
        } else {
            auto* s4 = reinterpret_cast<sockaddr_in*>(&sv.addr);
            if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) != 1) {
                return bad("not an IPv4 address (IPv6: \"addr\" or \"[addr]:port\")");
            }
            s4->sin_family = AF_INET;
            s4->sin_port = htons(static_cast<std::uint16_t>(p));
            sv.len = sizeof *s4;
        }
        if (max > 0 && out.size() == max) {
            return bad("more servers than the resolver takes (3)");
        }
        out.push_back(sv);
        if (comma == std::string_view::npos) {
            return true;
        }
        rest = rest.substr(comma + 1);
    }
}

const std::string& default_servers() noexcept {
    static const std::string s = [] {
        const char* e = std::getenv("GROVE_DNS_SERVERS");
        std::string v(e != nullptr ? e : "");
        std::vector<Server> list;
        std::string error;
        if (!parse_servers(v, list, error)) {
            // Every lookup will fail with EAI_SYSTEM / EINVAL: say why, once.
            error = "grove: GROVE_DNS_SERVERS: " + error + "\n";
            (void)!sys::write(2, error.data(), error.size());
        }
        return v;
    }();
    return s;
}

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res,
                const Request& req) noexcept {
    *res = nullptr;
    if (req.backend == Backend::thread) {
        return thread_getaddrinfo(node, service, hints, res, req);
    }
    return ares_getaddrinfo_impl(node, service, hints, res, req);
}

int getnameinfo(const struct sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags, const Request& req) noexcept {
    const Libc& l = libc();
    const bool inet = sa != nullptr && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
                      salen >= (sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    const bool lookup_host = inet && host != nullptr && hostlen > 0 && (flags & NI_NUMERICHOST) == 0;
    if (!lookup_host) {
        return l.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    }
    if (req.backend == Backend::thread) {
        std::shared_ptr<NameInfoJob> j;
        try {
            j = std::make_shared<NameInfoJob>();
            j->host.resize(hostlen);
            j->serv.resize(serv != nullptr ? servlen : 0);
        } catch (...) {
            return EAI_MEMORY;
        }
        std::memcpy(&j->sa, sa, std::min<std::size_t>(salen, sizeof j->sa));
        j->salen = salen;
        j->want_host = true;
        j->want_serv = serv != nullptr;
        j->flags = flags;
        if (const int e = run_job(j, req); e != 0) {
            return eai_for_wait(e);
        }
        if (j->rc == 0) {
            std::memcpy(host, j->host.data(), hostlen);
            if (serv != nullptr) {
                std::memcpy(serv, j->serv.data(), servlen);
            }
        } else if (j->rc == EAI_SYSTEM) {
            errno = j->err;
        }
        return j->rc;
    }
    // glibc first: the service, the checks, and the numeric form of the host
    // (the answer when the name is not required and not found).
    char numeric[NI_MAXHOST];
    const int rc = l.getnameinfo(sa, salen, numeric, sizeof numeric, serv, servlen,
                                 (flags & ~NI_NAMEREQD) | NI_NUMERICHOST);
    if (rc != 0) {
        return rc;
    }
    const void* addr = sa->sa_family == AF_INET
                           ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr)
                           : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
    const socklen_t alen = sa->sa_family == AF_INET ? sizeof(in_addr) : sizeof(in6_addr);
    HostData hd;
    const int r = ares_byaddr(addr, alen, sa->sa_family, hd, req);
    // glibc: a temporary failure is EAI_AGAIN even without NI_NAMEREQD.
    if (r < 0) {
        return eai_for_wait(-r);
    }
    if (r == ARES_ENOMEM) {
        return EAI_MEMORY;
    }
    if (r != 0 && ares_to_herrno(r) == TRY_AGAIN) {
        return EAI_AGAIN;
    }
    std::string name;
    if (r == 0 && !hd.name.empty()) {
        name = hd.name;
        if ((flags & NI_NOFQDN) != 0) {
            char self[256];
            if (gethostname(self, sizeof self) == 0) {
                self[sizeof self - 1] = '\0';
                const char* dom = std::strchr(self, '.');
                const std::size_t dot = name.find('.');
                if (dom != nullptr && dot != std::string::npos && name.compare(dot, std::string::npos, dom) == 0) {
                    name.resize(dot);
                }
            }
        }
    } else if ((flags & NI_NAMEREQD) != 0) {
        return EAI_NONAME;
    } else {
        name = numeric;
    }
    if (name.size() + 1 > hostlen) {
        return EAI_OVERFLOW;
    }
    std::memcpy(host, name.c_str(), name.size() + 1);
    return 0;
}

HostStatus gethostbyname(const char* name, int af, HostData& out, const Request& req) noexcept {
    if (req.backend == Backend::thread) {
        return thread_host(false, name, 0, af, out, req);
    }
    if (struct in_addr ia; (af != AF_INET && af != AF_INET6) || (af == AF_INET && inet_aton(name, &ia) != 0)) {
        // A family glibc refuses, or one of its numeric forms ("127.1"),
        // which c-ares does not take: no network either way, so glibc's own
        // answer.
        const HostStatus st = libc_host(false, name, af, out);
        errno = st.ret;
        return st;
    }
    const int r = ares_byname(name, af, out, req);
    if (r == 0 && std::find(out.aliases.begin(), out.aliases.end(), out.name) != out.aliases.end()) {
        // c-ares 1.18 names a CNAME chain's hostent after its last alias,
        // not its target as glibc does: ask for the canonical name.
        if (Channel* ch = channel_for(req.servers)) {
            Names n;
            if (ares_names(ch, name, af, n, req) == 0 && !n.canon.empty()) {
                out.name = n.canon;
            }
        }
    }
    return host_status(r, false);
}

HostStatus gethostbyaddr(const void* addr, socklen_t len, int af, HostData& out, const Request& req) noexcept {
    if (req.backend == Backend::thread) {
        return thread_host(true, static_cast<const char*>(addr), len, af, out, req);
    }
    if ((af != AF_INET && af != AF_INET6) || len < addr_len(af)) {
        // What glibc's argument checks refuse (EAFNOSUPPORT): no network.
        std::string key;
        try {
            key.assign(static_cast<const char*>(addr), len);
        } catch (...) {
            errno = ENOMEM;
            return {NETDB_INTERNAL, ENOMEM};
        }
        const HostStatus st = libc_host(true, key, af, out);
        errno = st.ret;
        return st;
    }
    // A longer buffer: glibc's DNS step asks for its first bytes.
    return host_status(ares_byaddr(addr, static_cast<socklen_t>(addr_len(af)), af, out, req), true);
}

bool fill_hostent(const HostData& h, struct hostent* ret, char* buf, size_t buflen) noexcept {
    // glibc's order: pointer arrays, then addresses, then strings.
    const std::size_t ptr = sizeof(char*);
    std::size_t pad = (ptr - reinterpret_cast<std::uintptr_t>(buf) % ptr) % ptr;
    std::size_t need = pad + ptr * (h.addrs.size() + 1 + h.aliases.size() + 1) +
                       h.addrs.size() * static_cast<std::size_t>(h.length) + h.name.size() + 1;
    for (const std::string& a : h.aliases) {
        need += a.size() + 1;
    }
    if (need > buflen) {
        errno = ERANGE;
        return false;
    }
    char* p = buf + pad;
    auto** addr_list = reinterpret_cast<char**>(p);
    p += ptr * (h.addrs.size() + 1);
    auto** aliases = reinterpret_cast<char**>(p);
    p += ptr * (h.aliases.size() + 1);
    for (std::size_t i = 0; i < h.addrs.size(); ++i) {
        std::memcpy(p, h.addrs[i].data(), static_cast<std::size_t>(h.length));
        addr_list[i] = p;
        p += h.length;
    }
    addr_list[h.addrs.size()] = nullptr;
    for (std::size_t i = 0; i < h.aliases.size(); ++i) {
        std::memcpy(p, h.aliases[i].c_str(), h.aliases[i].size() + 1);
        aliases[i] = p;
        p += h.aliases[i].size() + 1;
    }
    aliases[h.aliases.size()] = nullptr;
    std::memcpy(p, h.name.c_str(), h.name.size() + 1);
    ret->h_name = p;
    ret->h_aliases = aliases;
    ret->h_addrtype = h.addrtype;
    ret->h_length = h.length;
    ret->h_addr_list = addr_list;
    return true;
}

}  // namespace grove::detail::dns

// ---- grove::dns: the public API ----------------------------------------------------------

namespace grove::dns {

namespace {

detail::dns::Request make_request(const Options& o) {
    detail::dns::Request r;
    {
        const std::string& list = o.servers.empty() ? r.servers : o.servers;
        std::vector<detail::dns::Server> parsed;
        std::string error;
        const bool thread = o.backend == Backend::thread ||
                            (o.backend == Backend::default_backend && r.backend == detail::dns::Backend::thread);
        if (!detail::dns::parse_servers(list, parsed, error, thread ? MAXNS : 0)) {
            errno = EINVAL;
            throw Error(EAI_SYSTEM, Error::Kind::other,
                        "grove::dns: " + error + (o.servers.empty() ? " (GROVE_DNS_SERVERS)" : ""));
        }
    }
    if (o.backend == Backend::ares) {
        r.backend = detail::dns::Backend::ares;
    } else if (o.backend == Backend::thread) {
        r.backend = detail::dns::Backend::thread;
    }
    if (!o.servers.empty()) {
        r.servers = o.servers;
    }
    if (o.timeout != forever) {
        r.deadline = detail::deadline_after(o.timeout);
    }
    return r;
}

[[noreturn]] void throw_eai(int rc, std::string_view what, bool timed_out) {
    if (rc == EAI_SYSTEM && (errno == ECANCELED || errno == ETIMEDOUT)) {
        detail::throw_pending();  // FiberExit / TimeoutError, if due
    }
    Error::Kind kind = Error::Kind::other;
    switch (rc) {
        case EAI_NONAME:
        case EAI_NODATA:
        case EAI_ADDRFAMILY:
            kind = Error::Kind::not_found;
            break;
        case EAI_AGAIN:
            kind = timed_out ? Error::Kind::timeout : Error::Kind::temporary;
            break;
        default:
            break;
    }
    std::string msg = "grove::dns: ";
    msg += what;
    msg += ": ";
    msg += timed_out && rc == EAI_AGAIN ? "timed out" : rc == EAI_SYSTEM ? std::strerror(errno) : detail::dns::libc().gai_strerror(rc);
    throw Error(rc, kind, msg);
}

}  // namespace

Error::Error(int code, Kind kind, const std::string& what) : std::runtime_error(what), code_(code), kind_(kind) { }

std::string Address::ip() const {
    char buf[INET6_ADDRSTRLEN] = "";
    if (family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
    } else if (family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
    }
    return buf;
}

int Address::port() const noexcept {
    if (family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    }
    if (family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    }
    return 0;
}

Result resolve(std::string_view host, std::string_view service, const Hints& hints, const Options& options) {
    const detail::dns::Request req = make_request(options);
    const std::string h(host), s(service);
    struct addrinfo ah{};
    ah.ai_flags = hints.flags;
    ah.ai_family = hints.family;
    ah.ai_socktype = hints.socktype;
    ah.ai_protocol = hints.protocol;
    struct addrinfo* res = nullptr;
    const int rc = detail::dns::getaddrinfo(host.empty() ? nullptr : h.c_str(), service.empty() ? nullptr : s.c_str(),
                                            &ah, &res, req);
    if (rc != 0) {
        throw_eai(rc, h.empty() ? s : h, req.deadline != detail::kNoDeadline && detail::now_ns() >= req.deadline);
    }
    Result out;
    try {
        if (res != nullptr && res->ai_canonname != nullptr) {
            out.canonical_name = res->ai_canonname;
        }
        for (auto* a = res; a != nullptr; a = a->ai_next) {
            Address ad;
            std::memcpy(&ad.storage, a->ai_addr, std::min<std::size_t>(a->ai_addrlen, sizeof ad.storage));
            ad.len = a->ai_addrlen;
            ad.family = a->ai_family;
            ad.socktype = a->ai_socktype;
            ad.protocol = a->ai_protocol;
            out.addresses.push_back(ad);
        }
    } catch (...) {
        detail::dns::libc().freeaddrinfo(res);
        throw;
    }
    detail::dns::libc().freeaddrinfo(res);
    return out;
}

std::string reverse(const struct sockaddr* sa, socklen_t len, int flags, const Options& options) {
    const detail::dns::Request req = make_request(options);
    char host[NI_MAXHOST];
    const int rc = detail::dns::getnameinfo(sa, len, host, sizeof host, nullptr, 0, flags | NI_NAMEREQD, req);
    if (rc != 0) {
        throw_eai(rc, "reverse lookup", req.deadline != detail::kNoDeadline && detail::now_ns() >= req.deadline);
    }
    return host;
}

std::string reverse(const Address& a, int flags, const Options& options) {
    return reverse(a.addr(), a.len, flags, options);
}

std::string reverse(std::string_view ip, int flags, const Options& options) {
    const std::string s(ip);
    struct sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        len = sizeof *v6;
    } else {
        throw Error(EAI_NONAME, Error::Kind::other, "grove::dns: not a numeric address: " + s);
    }
    return reverse(reinterpret_cast<const sockaddr*>(&ss), len, flags, options);
}

}  // namespace grove::dns
