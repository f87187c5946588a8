// http_server: a small HTTP/1.1 server on grove's public fiber API, one
// fiber per connection, written as plain blocking code.
//
//     http_server [PORT] [--host ADDR] [--port-file FILE] [--idle-timeout MS]
//
// Routes:
//     GET  /             "Hello, World!\n" (the benchmark response)
//     GET  /sleep?ms=N   parks this connection's fiber N ms (0..60000), then
//                        answers; many at once finish together
//     GET  /stats        connections open and accepted, requests answered
//     POST /echo         the request body back
// HEAD works wherever GET does.
//
// Protocol, as RFC 9112 asks of a server:
// - Keep-alive: HTTP/1.1 keeps the connection unless the request says
//   `Connection: close`; HTTP/1.0 closes unless it says `keep-alive`.
// - Pipelining: every request already received is answered, in order, and
//   their responses go out in one write. Pending responses are also written
//   before any wait (for more input, or a /sleep), so an answer is never
//   held back behind a slow request.
// - Limits: a request head (line and headers) over 8 KiB gets 431 (414 when
//   the request line alone is that long), a malformed one 400, an HTTP major
//   version other than 1 505, a body over 1 MiB 413, a method this server
//   does not know 501, a known method a route does not take 405 with Allow.
//   Bodies are framed by Content-Length only: a chunked body gets 411 (send
//   a length), another transfer coding 501. Each error response closes the
//   connection, since the rest of the stream cannot be trusted.
// - `Expect: 100-continue` gets its interim 100 before the body is read.
// - A connection idle for the idle timeout is closed; one stalled in the
//   middle of a request gets 408 first. A client that stops reading its
//   responses is dropped after the same time.
//
// Runs until SIGINT/SIGTERM, whose default action ends the process (reset to
// it first: a shell starts background jobs with SIGINT ignored).

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <grove/fiber.hpp>
#include <grove/net.hpp>
#include <grove/timeout.hpp>

namespace {

using namespace std::chrono_literals;
using std::string_view;

constexpr std::size_t kMaxHead = 8192;         // request line + headers
constexpr std::size_t kMaxBody = 1 << 20;      // Content-Length accepted
constexpr std::size_t kInitialBuffer = 16384;  // input buffer per connection
constexpr std::size_t kFlushAt = 64 * 1024;    // batched responses written early past this
constexpr long kMaxSleepMs = 60000;
constexpr auto kLingerTime = 2s;                // reading leftovers after the last response
constexpr std::size_t kLingerBytes = 1 << 20;

constexpr string_view kHello = "Hello, World!\n";
constexpr string_view kTextPlain = "text/plain; charset=utf-8";

// Process-wide state; everything runs on the main thread's hub.
struct App {
    std::chrono::milliseconds idle{30000};
    grove::net::StreamServer* server = nullptr;
    std::uint64_t accepted = 0;
    std::uint64_t answered = 0;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};
App app;

// The Date header value, formatted again only when the second changes.
// time() and gmtime_r need no system call on Linux.
class DateCache {
public:
    string_view get() noexcept {
        const std::time_t now = std::time(nullptr);
        if (now != last_) {
            std::tm tm{};
            gmtime_r(&now, &tm);
            len_ = std::strftime(buf_, sizeof buf_, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            last_ = now;
        }
        return {buf_, len_};
    }

private:
    std::time_t last_ = -1;
    char buf_[64] = {};
    std::size_t len_ = 0;
};
DateCache date_cache;

// ---- parsing --------------------------------------------------------------------------

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(string_view a, string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

// tchar (RFC 9110 5.6.2): the bytes of a method or a field name.
constexpr auto kTchar = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) {
        t[c] = true;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        t[c] = true;
        t[c - 'a' + 'A'] = true;
    }
    for (const char c : string_view("!#$%&'*+-.^_`|~")) {
        t[static_cast<unsigned char>(c)] = true;
    }
    return t;
}();

bool is_tchar(unsigned char c) noexcept {
    return kTchar[c];
}

bool is_token(string_view s) noexcept {
    if (s.empty()) {
        return false;
    }
    for (const char c : s) {
        if (!is_tchar(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

string_view trim_ows(string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// Calls fn(element) for each element of a comma-separated header list,
// trimmed, empty ones skipped.
template <class Fn>
void for_each_list_item(string_view v, Fn&& fn) {
    while (!v.empty()) {
        const std::size_t comma = v.find(',');
        const string_view item = trim_ows(v.substr(0, comma));
        if (!item.empty()) {
            fn(item);
        }
        if (comma == string_view::npos) {
            break;
        }
        v.remove_prefix(comma + 1);
    }
}

struct Request {
    string_view method;
    string_view target;
    string_view path;
    string_view query;
    int minor = 1;  // HTTP/1.minor
    bool keep_alive = true;
    bool expect_continue = false;
    std::size_t content_length = 0;
    std::size_t head_size = 0;  // bytes up to and including the blank line
};

// A request the server refuses: the status to answer with, then close.
struct Refusal {
    int status;
    string_view why;
};

enum class Parsed { incomplete, complete, refused };

// Where the next line of [p, end) ends: the '\n' itself, or nullptr.
const char* find_lf(const char* p, const char* end) noexcept {
    return static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
}

// A line without its terminator: LF or CRLF (RFC 9112 2.2 lets a server
// take a bare LF as a line end).
string_view line_of(const char* p, const char* lf) noexcept {
    if (lf > p && lf[-1] == '\r') {
        --lf;
    }
    return {p, static_cast<std::size_t>(lf - p)};
}

bool parse_request_line(string_view line, Request& r, Refusal& why) {
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == string_view::npos || line.find(' ', sp2 + 1) != string_view::npos) {
        why = {400, "malformed request line"};
        return false;
    }
    r.method = line.substr(0, sp1);
    r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const string_view version = line.substr(sp2 + 1);
    if (!is_token(r.method)) {
        why = {400, "malformed method"};
        return false;
    }
    if (r.target.empty()) {
        why = {400, "empty request target"};
        return false;
    }
    for (const char c : r.target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) {
            why = {400, "control character in request target"};
            return false;
        }
    }
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
        version[5] > '9' || version[7] < '0' || version[7] > '9') {
        why = {400, "malformed HTTP version"};
        return false;
    }
    if (version[5] != '1') {
        why = {505, "only HTTP/1.x is served"};
        return false;
    }
    r.minor = version[7] - '0';

    // origin-form "/path?query", or absolute-form "http://host/path?query"
    // (which a server must accept, RFC 9112 3.2.2).
    string_view t = r.target;
    if (t.front() != '/') {
        const std::size_t scheme = t.find("://");
        if (scheme == string_view::npos || (!iequals(t.substr(0, scheme), "http") &&
                                            !iequals(t.substr(0, scheme), "https"))) {
            why = {400, "request target is neither a path nor an absolute URI"};
            return false;
        }
        const std::size_t slash = t.find('/', scheme + 3);
        t = slash == string_view::npos ? string_view("/") : t.substr(slash);
    }
    const std::size_t q = t.find('?');
    r.path = t.substr(0, q);
    r.query = q == string_view::npos ? string_view() : t.substr(q + 1);
    return true;
}

// Parses the request head at the start of [p, p + n). complete: `r` is
// filled in (its views point into the buffer). refused: `why` says why.
Parsed parse_request(const char* p, std::size_t n, Request& r, Refusal& why) {
    const char* const begin = p;
    const char* const end = p + n;
    const char* const limit = n > kMaxHead ? p + kMaxHead : end;

    r = Request{};
    // Empty lines before a request line are skipped (RFC 9112 2.2).
    while (p < limit && (*p == '\n' || (*p == '\r' && p + 1 < limit && p[1] == '\n'))) {
        p += *p == '\n' ? 1 : 2;
    }
    const char* lf = find_lf(p, limit);
    if (lf == nullptr) {
        if (n >= kMaxHead) {
            why = {414, "request line longer than 8 KiB"};
            return Parsed::refused;
        }
        return Parsed::incomplete;
    }
    // Find the blank line first: nothing is judged on a partial head.
    const char* scan = lf + 1;
    const char* head_end = nullptr;
    for (;;) {
        const char* next = find_lf(scan, limit);
        if (next == nullptr) {
            if (n >= kMaxHead) {
                why = {431, "request head larger than 8 KiB"};
                return Parsed::refused;
            }
            return Parsed::incomplete;
        }
        if (line_of(scan, next).empty()) {
            head_end = next + 1;
            break;
        }
        scan = next + 1;
    }

    if (!parse_request_line(line_of(p, lf), r, why)) {
        return Parsed::refused;
    }

    bool has_length = false;
    bool has_te = false;
    bool te_chunked = false;
    bool conn_close = false;
    bool conn_keep = false;
    int hosts = 0;
    for (p = lf + 1;; p = lf + 1) {
        lf = find_lf(p, head_end);
        const string_view line = line_of(p, lf);
        if (line.empty()) {
            break;
        }
        if (line.front() == ' ' || line.front() == '\t') {
            why = {400, "obsolete header line folding"};
            return Parsed::refused;
        }
        const std::size_t colon = line.find(':');
        if (colon == string_view::npos || !is_token(line.substr(0, colon))) {
            why = {400, "malformed header field"};
            return Parsed::refused;
        }
        const string_view name = line.substr(0, colon);
        const string_view value = trim_ows(line.substr(colon + 1));
        for (const char c : value) {
            const auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7f) {
                why = {400, "control character in header value"};
                return Parsed::refused;
            }
        }
        if (iequals(name, "content-length")) {
            std::size_t v = 0;
            const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
            if (value.empty() || ptr != value.data() + value.size() || (ec != std::errc() &&
                                                                        ec != std::errc::result_out_of_range)) {
                why = {400, "malformed Content-Length"};
                return Parsed::refused;
            }
            if (ec == std::errc::result_out_of_range) {
                v = SIZE_MAX;
            }
            if (has_length && v != r.content_length) {
                why = {400, "conflicting Content-Length fields"};
                return Parsed::refused;
            }
            has_length = true;
            r.content_length = v;
        } else if (iequals(name, "transfer-encoding")) {
            has_te = true;
            te_chunked = false;
            for_each_list_item(value, [&](string_view coding) { te_chunked = iequals(coding, "chunked"); });
        } else if (iequals(name, "connection")) {
            for_each_list_item(value, [&](string_view opt) {
                conn_close = conn_close || iequals(opt, "close");
                conn_keep = conn_keep || iequals(opt, "keep-alive");
            });
        } else if (iequals(name, "host")) {
            ++hosts;
        } else if (iequals(name, "expect")) {
            if (!iequals(value, "100-continue")) {
                why = {417, "only 'Expect: 100-continue' is understood"};
                return Parsed::refused;
            }
            r.expect_continue = r.minor >= 1;
        }
    }
    r.head_size = static_cast<std::size_t>(head_end - begin);
    r.keep_alive = r.minor >= 1 ? !conn_close : conn_keep && !conn_close;

    if (r.minor >= 1 && hosts != 1) {
        why = {400, hosts == 0 ? "HTTP/1.1 request without Host" : "more than one Host field"};
        return Parsed::refused;
    }
    if (has_te) {
        if (has_length) {
            why = {400, "both Transfer-Encoding and Content-Length"};
        } else if (te_chunked) {
            why = {411, "chunked request bodies are not supported; send Content-Length"};
        } else {
            why = {501, "unsupported Transfer-Encoding"};
        }
        return Parsed::refused;
    }
    if (r.content_length > kMaxBody) {
        why = {413, "request body larger than 1 MiB"};
        return Parsed::refused;
    }
    return Parsed::complete;
}

// The value of `key` in a query string "a=1&b=2", if present.
std::optional<string_view> query_param(string_view query, string_view key) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const string_view item = query.substr(0, amp);
        const std::size_t eq = item.find('=');
        if (item.substr(0, eq) == key) {
            return eq == string_view::npos ? string_view() : item.substr(eq + 1);
        }
        if (amp == string_view::npos) {
            break;
        }
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

// Methods this server knows of; only GET, HEAD and POST are served.
bool known_method(string_view m) noexcept {
    for (const string_view k : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
        if (m == k) {
            return true;
        }
    }
    return false;
}

// ---- a connection ---------------------------------------------------------------------

class Connection {
public:
    explicit Connection(grove::net::TcpStream& s) : s_(s) { out_.reserve(4096); }

    void run();

private:
    // What a route answers.
    // The body is `fixed` (static text, or the request's own bytes), or
    // `text` when built on the fly: no view into a member that a copy or
    // move of the Response would leave behind.
    struct Response {
        int status = 200;
        string_view content_type = kTextPlain;
        string_view fixed;
        std::string text;
        bool built = false;
        string_view allow;  // for 405

        string_view body() const noexcept { return built ? string_view(text) : fixed; }
        void set_text(std::string s) {
            text = std::move(s);
            built = true;
        }
    };

    bool fill(std::size_t want);
    void flush();
    void linger_close();
    void append(const Request* r, const Response& res, bool keep_alive);
    void refuse(const Request* r, const Refusal& why);
    Response route(const Request& r, string_view body);

    grove::net::TcpStream& s_;
    std::unique_ptr<char[]> in_ = std::make_unique_for_overwrite<char[]>(kInitialBuffer);
    std::size_t cap_ = kInitialBuffer;
    std::size_t start_ = 0;  // first unconsumed byte
    std::size_t end_ = 0;    // end of received bytes
    std::string out_;        // responses not yet written
};

// Reads until at least `want` unconsumed bytes are buffered. False at end
// of stream or after the idle timeout (the connection should end). Pending
// responses are written first: the peer may be waiting for them.
bool Connection::fill(std::size_t want) {
    flush();
    if (start_ == end_) {
        start_ = end_ = 0;
    } else if (start_ > 0) {
        std::memmove(in_.get(), in_.get() + start_, end_ - start_);
        end_ -= start_;
        start_ = 0;
    }
    if (want > cap_) {
        std::size_t cap = cap_;
        while (cap < want) {
            cap *= 2;
        }
        auto bigger = std::make_unique_for_overwrite<char[]>(cap);
        std::memcpy(bigger.get(), in_.get(), end_);
        in_ = std::move(bigger);
        cap_ = cap;
    }
    while (end_ < want) {
        std::size_t n = 0;
        {
            grove::Timeout idle(app.idle);
            try {
                n = s_.read_some(in_.get() + end_, cap_ - end_);
            } catch (const grove::TimeoutError& e) {
                if (e.source() != &idle) {
                    throw;
                }
                if (end_ > 0) {
                    refuse(nullptr, {408, "request not completed in time"});
                    flush();
                }
                return false;
            }
        }
        if (n == 0) {
            return false;
        }
        end_ += n;
    }
    return true;
}

// One write for everything pending, bounded by the idle timeout: a peer
// that does not read its responses is dropped (TimeoutError ends run()).
void Connection::flush() {
    if (out_.empty()) {
        return;
    }
    grove::Timeout stalled(app.idle);
    s_.write_all(out_.data(), out_.size());
    out_.clear();
}

// After the last response: end our direction, then read and drop what the
// peer still sends until it closes, so that closing with unread input does
// not reset the connection before the peer has read the response.
void Connection::linger_close() {
    flush();
    try {
        s_.shutdown(grove::net::Stream::Shut::write);
        grove::Timeout linger(kLingerTime);
        std::size_t dropped = 0;
        char sink[4096];
        while (dropped < kLingerBytes) {
            const std::size_t n = s_.read_some(sink, sizeof sink);
            if (n == 0) {
                break;
            }
            dropped += n;
        }
    } catch (const grove::TimeoutError&) {
    } catch (const std::system_error&) {
    }
}

void Connection::append(const Request* r, const Response& res, bool keep_alive) {
    char num[24];
    const string_view body = res.body();
    const auto [num_end, ec] = std::to_chars(num, num + sizeof num, body.size());
    (void)ec;
    char status[8];
    const auto [status_end, ec2] = std::to_chars(status, status + sizeof status, res.status);
    (void)ec2;

    out_.append("HTTP/1.1 ");
    out_.append(status, status_end);
    out_.push_back(' ');
    out_.append(reason_phrase(res.status));
    out_.append("\r\nContent-Length: ");
    out_.append(num, num_end);
    out_.append("\r\nContent-Type: ");
    out_.append(res.content_type);
    out_.append("\r\nDate: ");
    out_.append(date_cache.get());
    if (!res.allow.empty()) {
        out_.append("\r\nAllow: ");
        out_.append(res.allow);
    }
    if (!keep_alive) {
        out_.append("\r\nConnection: close");
    } else if (r != nullptr && r->minor == 0) {
        out_.append("\r\nConnection: keep-alive");
    }
    out_.append("\r\n\r\n");
    if (r == nullptr || r->method != "HEAD") {
        out_.append(body);
    }
    ++app.answered;
}

void Connection::refuse(const Request* r, const Refusal& why) {
    Response res;
    res.status = why.status;
    std::string text = std::to_string(why.status);
    text.append(" ").append(reason_phrase(why.status)).append(": ").append(why.why).append("\n");
    res.set_text(std::move(text));
    append(r, res, false);
}

Connection::Response Connection::route(const Request& r, string_view body) {
    Response res;
    const bool get = r.method == "GET" || r.method == "HEAD";
    auto not_allowed = [&](string_view allow) {
        res.status = 405;
        res.allow = allow;
        res.set_text("405 Method Not Allowed: " + std::string(r.path) + " takes " + std::string(allow) + "\n");
        return res;
    };

    if (r.path == "/") {
        if (!get) {
            return not_allowed("GET, HEAD");
        }
        res.fixed = kHello;
        return res;
    }
    if (r.path == "/sleep") {
        if (!get) {
            return not_allowed("GET, HEAD");
        }
        const std::optional<string_view> ms_text = query_param(r.query, "ms");
        long ms = -1;
        if (ms_text) {
            const auto [ptr, ec] = std::from_chars(ms_text->data(), ms_text->data() + ms_text->size(), ms);
            if (ec != std::errc() || ptr != ms_text->data() + ms_text->size()) {
                ms = -1;
            }
        }
        if (ms < 0 || ms > kMaxSleepMs) {
            res.status = 400;
            res.fixed = "400 Bad Request: /sleep?ms=N wants N in 0..60000\n";
            return res;
        }
        // Earlier pipelined answers go out before this one waits.
        flush();
        grove::this_fiber::sleep_for(std::chrono::milliseconds(ms));
        res.set_text("slept " + std::to_string(ms) + " ms\n");
        return res;
    }
    if (r.path == "/stats") {
        if (!get) {
            return not_allowed("GET, HEAD");
        }
        const auto up = std::chrono::duration<double>(std::chrono::steady_clock::now() - app.started).count();
        char text[256];
        const int n = std::snprintf(text, sizeof text,
                                    "grove http_server: one fiber per connection, one OS thread\n"
                                    "connections open: %zu\nconnections accepted: %llu\n"
                                    "requests answered: %llu\nuptime: %.1f s\n",
                                    app.server != nullptr ? app.server->connections() : std::size_t{0},
                                    static_cast<unsigned long long>(app.accepted),
                                    static_cast<unsigned long long>(app.answered), up);
        res.set_text(std::string(text, n > 0 ? std::min(static_cast<std::size_t>(n), sizeof text - 1) : 0));
        return res;
    }
    if (r.path == "/echo") {
        if (r.method != "POST") {
            return not_allowed("POST");
        }
        res.content_type = "application/octet-stream";
        res.fixed = body;
        return res;
    }
    res.status = 404;
    res.set_text("404 Not Found: " + std::string(r.path) + "\n");
    return res;
}

void Connection::run() {
    for (;;) {
        // Answer every complete request already buffered, in order.
        for (;;) {
            Request r;
            Refusal why{};
            const Parsed p = parse_request(in_.get() + start_, end_ - start_, r, why);
            if (p == Parsed::incomplete) {
                break;
            }
            if (p == Parsed::refused) {
                refuse(r.method.empty() ? nullptr : &r, why);
                linger_close();
                return;
            }
            if (!known_method(r.method)) {
                refuse(&r, {501, "method not implemented"});
                linger_close();
                return;
            }
            const std::size_t need = r.head_size + r.content_length;
            if (end_ - start_ < need) {
                if (r.expect_continue) {
                    out_.append("HTTP/1.1 100 Continue\r\n\r\n");
                }
                // fill() may move the buffer: parse again once the body is in.
                if (!fill(need)) {
                    return;
                }
                continue;
            }
            const string_view body(in_.get() + start_ + r.head_size, r.content_length);
            const Response res = route(r, body);
            append(&r, res, r.keep_alive);
            start_ += need;
            if (!r.keep_alive) {
                linger_close();
                return;
            }
            if (out_.size() >= kFlushAt) {
                flush();
            }
        }
        if (!fill(end_ - start_ + 1)) {
            return;
        }
    }
}

void serve(grove::net::TcpStream& s) {
    ++app.accepted;
    s.set_nodelay();
    Connection c(s);
    try {
        c.run();
    } catch (const grove::TimeoutError&) {
        // A peer that stopped reading its responses: drop it.
    }
}

// ---- command line ---------------------------------------------------------------------

void usage(std::FILE* to, const char* prog) {
    std::fprintf(to,
                 "usage: %s [PORT] [--host ADDR] [--port-file FILE] [--idle-timeout MS]\n"
                 "  PORT               TCP port to listen on, 0 for any free one (default 8080)\n"
                 "  --host ADDR        numeric address to bind (default 127.0.0.1)\n"
                 "  --port-file FILE   once listening, write the port number to FILE\n"
                 "  --idle-timeout MS  close connections idle this long (default 30000)\n"
                 "Routes: GET / (hello), GET /sleep?ms=N, GET /stats, POST /echo\n",
                 prog);
}

bool parse_ulong(const char* s, unsigned long max, unsigned long& out) {
    char* end = nullptr;
    errno = 0;
    if (*s < '0' || *s > '9') {
        return false;
    }
    const unsigned long v = std::strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return false;
    }
    out = v;
    return true;
}

// Writes the port to `path` through a temporary file and a rename, so a
// reader polling for the file never sees it half written.
bool write_port_file(const std::string& path, unsigned port) {
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
        return false;
    }
    const bool ok = std::fprintf(f, "%u\n", port) > 0;
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const char* prog = argv[0];
    unsigned long port = 8080;
    bool have_port = false;
    std::string host = "127.0.0.1";
    std::string port_file;
    unsigned long idle_ms = 30000;

    for (int i = 1; i < argc; ++i) {
        string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout, prog);
            return 0;
        }
        if (arg.starts_with("--")) {
            string_view name = arg;
            const char* value = nullptr;
            if (const std::size_t eq = arg.find('='); eq != string_view::npos) {
                name = arg.substr(0, eq);
                value = argv[i] + eq + 1;
            }
            if (name != "--host" && name != "--port-file" && name != "--idle-timeout") {
                std::fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[i]);
                usage(stderr, prog);
                return 2;
            }
            if (value == nullptr) {
                if (i + 1 >= argc) {
                    std::fprintf(stderr, "%s: %s needs a value\n", prog, argv[i]);
                    usage(stderr, prog);
                    return 2;
                }
                value = argv[++i];
            }
            if (name == "--host") {
                host = value;
            } else if (name == "--port-file") {
                if (*value == '\0') {
                    std::fprintf(stderr, "%s: --port-file needs a file name\n", prog);
                    return 2;
                }
                port_file = value;
            } else if (!parse_ulong(value, 24UL * 3600 * 1000, idle_ms) || idle_ms == 0) {
                std::fprintf(stderr, "%s: bad --idle-timeout '%s' (milliseconds, 1..86400000)\n", prog, value);
                return 2;
            }
            continue;
        }
        if (have_port) {
            std::fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[i]);
            usage(stderr, prog);
            return 2;
        }
        if (!parse_ulong(argv[i], 65535, port)) {
            std::fprintf(stderr, "%s: bad port '%s' (0..65535)\n", prog, argv[i]);
            usage(stderr, prog);
            return 2;
        }
        have_port = true;
    }
    app.idle = std::chrono::milliseconds(idle_ms);

    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    std::signal(SIGPIPE, SIG_IGN);
    try {
        grove::net::Address at;
        try {
            at = grove::net::Address(host, static_cast<std::uint16_t>(port));
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "%s: bad --host '%s': %s\n", prog, host.c_str(), e.what());
            return 2;
        }
        grove::net::StreamServer server(at, serve);
        app.server = &server;
        server.start();
        const grove::net::Address bound = server.address();
        if (!port_file.empty() && !write_port_file(port_file, bound.port())) {
            std::fprintf(stderr, "%s: cannot write port file '%s': %s\n", prog, port_file.c_str(),
                         std::strerror(errno));
            return 1;
        }
        std::printf("listening on http://%s/\n", bound.to_string().c_str());
        std::fflush(stdout);
        server.serve_forever();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
        return 1;
    }
    return 0;
}
