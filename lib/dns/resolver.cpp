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

int ares_to_eai(int status) noexcept {
    switch (status) {
        case ARES_SUCCESS:
            return 0;
        case ARES_ENODATA:
            return EAI_NODATA;  // the name exists, without addresses of that family
        case ARES_ENOTFOUND:
        case ARES_ENONAME:
        case ARES_EBADNAME:
            return EAI_NONAME;
        case ARES_ETIMEOUT:
        case ARES_ESERVFAIL:
        case ARES_ECONNREFUSED:
        case ARES_EREFUSED:
        case ARES_ECANCELLED:
        case ARES_EDESTRUCTION:
            return EAI_AGAIN;
        case ARES_ENOMEM:
            return EAI_MEMORY;
        case ARES_EBADFAMILY:
            return EAI_FAMILY;
        case ARES_EBADFLAGS:
        case ARES_EBADHINTS:
            return EAI_BADFLAGS;
        case ARES_ESERVICE:
            return EAI_SERVICE;
        default:
            return EAI_FAIL;
    }
}

int ares_to_herrno(int status) noexcept {
    switch (status) {
        case ARES_SUCCESS:
            return 0;
        case ARES_ENOTFOUND:
        case ARES_ENONAME:
        case ARES_EBADNAME:
            return HOST_NOT_FOUND;
        case ARES_ENODATA:
            return NO_DATA;
        case ARES_ETIMEOUT:
        case ARES_ESERVFAIL:
        case ARES_ECONNREFUSED:
        case ARES_EREFUSED:
        case ARES_ECANCELLED:
        case ARES_EDESTRUCTION:
            return TRY_AGAIN;
        default:
            return NO_RECOVERY;
    }
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

// glibc's per-thread _res, pointed at `servers` (IPv4 "ip[:port]" list),
// or back at resolv.conf's for "". glibc keeps a hand-modified _res (its
// servers no longer match resolv.conf's) instead of reloading it.
void use_servers(const std::string& servers) noexcept {
    static thread_local std::string current;
    static thread_local bool initialised = false;
    if (initialised && servers == current) {
        return;
    }
    res_init();
    initialised = true;
    current = servers;
    if (servers.empty()) {
        return;
    }
    int n = 0;
    std::string_view s(servers);
    while (!s.empty() && n < MAXNS) {
        const std::size_t comma = s.find(',');
        std::string item(s.substr(0, comma));
        s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
        int port = 53;
        if (const std::size_t colon = item.find(':'); colon != std::string::npos) {
            port = std::atoi(item.c_str() + colon + 1);
            item.resize(colon);
        }
        struct sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET, item.c_str(), &sin.sin_addr) == 1) {
            _res.nsaddr_list[n++] = sin;
        }
    }
    if (n > 0) {
        _res.nscount = n;
    }
}

class Pool {
public:
    static Pool& get() noexcept {
        static Pool* p = new Pool;  // never destroyed: workers may outlive exit's destructors
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
            use_servers(j->servers);
            j->run();
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
    j->servers = req.servers;
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
};

struct HostJob final : Job {
    bool by_addr = false;
    std::string name;  // or the address bytes
    int af = AF_INET;
    int herr = 0;
    int err = 0;
    HostData out;

    void run() noexcept override {
        std::vector<char> buf(1024);
        for (;;) {
            struct hostent he{};
            struct hostent* r = nullptr;
            int rc;
            if (by_addr) {
                rc = libc().gethostbyaddr_r(name.data(), static_cast<socklen_t>(name.size()), af, &he, buf.data(),
                                            buf.size(), &r, &herr);
            } else {
                rc = libc().gethostbyname2_r(name.c_str(), af, &he, buf.data(), buf.size(), &r, &herr);
            }
            if (rc == ERANGE && herr == NETDB_INTERNAL && buf.size() < (1u << 24)) {
                buf.resize(buf.size() * 2);
                continue;
            }
            err = rc != 0 ? rc : errno;
            if (r != nullptr) {
                try {
                    copy_hostent(r, out);
                    herr = 0;
                } catch (...) {
                    herr = NETDB_INTERNAL;
                    err = ENOMEM;
                }
            } else if (herr == 0) {
                herr = HOST_NOT_FOUND;
            }
            return;
        }
    }
};

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
        if (epfd_ >= 0) {
            if (Hub* h = Hub::current_if_any()) {
                h->fd_forget(epfd_);
            }
            sys::close(epfd_);
        }
    }

    ares_channel get() const noexcept { return channel_; }

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
        epfd_ = sys::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) {
            return false;
        }
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
        if (!servers.empty() && ares_set_servers_ports_csv(channel_, servers.c_str()) != ARES_SUCCESS) {
            errno = EINVAL;
            return false;
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
            const int n = sys::epoll_wait(epfd_, ev, 16, 0);
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
            if (io_wait(epfd_, POLLIN, deadline) != 0) {
                if (errno == ETIMEDOUT) {
                    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
                    continue;
                }
                ares_cancel(channel_);  // the driver was killed: fail every query
            }
        }
        driving_ = false;
    }

    static void sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
        auto* self = static_cast<Channel*>(data);
        if (readable == 0 && writable == 0) {
            (void)sys::epoll_ctl(self->epfd_, EPOLL_CTL_DEL, fd, nullptr);
            return;
        }
        struct epoll_event ev{};
        ev.events = (readable != 0 ? EPOLLIN : 0u) | (writable != 0 ? EPOLLOUT : 0u);
        ev.data.fd = fd;
        if (sys::epoll_ctl(self->epfd_, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
            (void)sys::epoll_ctl(self->epfd_, EPOLL_CTL_ADD, fd, &ev);
        }
    }

    // c-ares' own socket I/O, on the real calls: never the shim's.
    static ares_socket_t a_socket(int d, int t, int p, void*) noexcept {
        const int fd = sys::socket(d, t | SOCK_NONBLOCK | SOCK_CLOEXEC, p);
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
        (void)sys::epoll_ctl(static_cast<Channel*>(data)->epfd_, EPOLL_CTL_DEL, fd, nullptr);
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

    ares_channel channel_ = nullptr;
    int epfd_ = -1;
    std::size_t pending_ = 0;
    bool driving_ = false;
};

// This thread's channels, by server list.
struct Channels {
    std::unordered_map<std::string, std::unique_ptr<Channel>> map;
    ~Channels() {
        // Queries still in flight (their fibers can no longer run) are
        // destroyed with EDESTRUCTION, which the callbacks treat as "drop".
        map.clear();
    }
};

Channel* channel_for(const std::string& servers) noexcept {
    static thread_local Channels channels;
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

// A name's addresses through c-ares, sorted (RFC 6724, by c-ares).
struct Names {
    std::vector<std::string> addrs;  // numeric, for glibc's AI_NUMERICHOST
    std::vector<int> families;
    std::string canon;
    bool aliased = false;  // the answer had a CNAME
};

// 0 with `out` filled, an ares status (> 0), or -errno for a failed wait.
int ares_names(Channel* ch, const char* name, int family, Names& out, const Request& req) noexcept {
    auto* q = new (std::nothrow) Query;
    if (q == nullptr) {
        return ARES_ENOMEM;
    }
    q->ch = ch;
    struct ares_addrinfo_hints h{};
    h.ai_family = family;
    h.ai_flags = ARES_AI_CANONNAME;
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
    return status;
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

// 0 with `out` filled, an ares status, or -errno.
int ares_host(bool by_addr, const void* key, socklen_t len, int af, HostData& out, const Request& req) noexcept {
    Channel* ch = channel_for(req.servers);
    if (ch == nullptr) {
        return -errno;
    }
    auto* q = new (std::nothrow) Query;
    if (q == nullptr) {
        return ARES_ENOMEM;
    }
    q->ch = ch;
    if (by_addr) {
        ares_gethostbyaddr(ch->get(), key, static_cast<int>(len), af, &on_host, q);
    } else {
        ares_gethostbyname(ch->get(), static_cast<const char*>(key), af, &on_host, q);
    }
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

int host_result(int r) noexcept {
    if (r < 0) {
        return herrno_for_wait(-r);
    }
    return ares_to_herrno(r);
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

const std::string& default_servers() noexcept {
    static const std::string s = [] {
        const char* e = std::getenv("GROVE_DNS_SERVERS");
        return std::string(e != nullptr ? e : "");
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
    const int r = ares_host(true, addr, alen, sa->sa_family, hd, req);
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
        if (r < 0) {
            return eai_for_wait(-r);
        }
        return ares_to_herrno(r) == TRY_AGAIN ? EAI_AGAIN : EAI_NONAME;
    } else {
        name = numeric;
    }
    if (name.size() + 1 > hostlen) {
        return EAI_OVERFLOW;
    }
    std::memcpy(host, name.c_str(), name.size() + 1);
    return 0;
}

int gethostbyname(const char* name, int af, HostData& out, const Request& req) noexcept {
    if (req.backend == Backend::thread) {
        std::shared_ptr<HostJob> j;
        try {
            j = std::make_shared<HostJob>();
            j->name = name;
        } catch (...) {
            errno = ENOMEM;
            return NETDB_INTERNAL;
        }
        j->af = af;
        if (const int e = run_job(j, req); e != 0) {
            return herrno_for_wait(e);
        }
        if (j->herr == 0) {
            out = std::move(j->out);
        } else if (j->herr == NETDB_INTERNAL) {
            errno = j->err;
        }
        return j->herr;
    }
    if (af != AF_INET && af != AF_INET6) {
        errno = EAFNOSUPPORT;
        return NETDB_INTERNAL;
    }
    if (struct in_addr ia; af == AF_INET && inet_aton(name, &ia) != 0) {
        // glibc's numeric forms ("127.1"), which c-ares does not take: no
        // network either way, so glibc's own answer.
        std::vector<char> buf(1024);
        struct hostent he{};
        struct hostent* res = nullptr;
        int herr = 0;
        if (libc().gethostbyname2_r(name, af, &he, buf.data(), buf.size(), &res, &herr) == 0 && res != nullptr) {
            try {
                copy_hostent(res, out);
            } catch (...) {
                errno = ENOMEM;
                return NETDB_INTERNAL;
            }
            return 0;
        }
        return herr != 0 ? herr : HOST_NOT_FOUND;
    }
    const int r = ares_host(false, name, 0, af, out, req);
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
    return host_result(r);
}

int gethostbyaddr(const void* addr, socklen_t len, int af, HostData& out, const Request& req) noexcept {
    if (req.backend == Backend::thread) {
        std::shared_ptr<HostJob> j;
        try {
            j = std::make_shared<HostJob>();
            j->name.assign(static_cast<const char*>(addr), len);
        } catch (...) {
            errno = ENOMEM;
            return NETDB_INTERNAL;
        }
        j->by_addr = true;
        j->af = af;
        if (const int e = run_job(j, req); e != 0) {
            return herrno_for_wait(e);
        }
        if (j->herr == 0) {
            out = std::move(j->out);
        } else if (j->herr == NETDB_INTERNAL) {
            errno = j->err;
        }
        return j->herr;
    }
    if ((af == AF_INET && len != sizeof(in_addr)) || (af == AF_INET6 && len != sizeof(in6_addr))) {
        errno = EINVAL;
        return NETDB_INTERNAL;
    }
    if (af != AF_INET && af != AF_INET6) {
        errno = EAFNOSUPPORT;
        return NETDB_INTERNAL;
    }
    const int r = ares_host(true, addr, len, af, out, req);
    // c-ares lists the PTR name among the aliases too; glibc does not.
    std::erase(out.aliases, out.name);
    return host_result(r);
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
