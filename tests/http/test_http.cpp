// demos/http_server as a process, driven by grove fibers as HTTP clients.
// Each case starts its own server (GROVE_HTTP_SERVER names the binary), runs
// under a grove::Timeout (Bounded) so a hang fails, and checks at the end
// that the server is still alive: no input may crash it.
#define BOOST_TEST_MODULE http
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grove/fiber.hpp>
#include <grove/io.hpp>
#include <grove/net.hpp>
#include <grove/timeout.hpp>

extern char** environ;

using namespace std::chrono_literals;
namespace net = grove::net;
using Clock = std::chrono::steady_clock;

namespace {

struct Bounded {
    grove::Timeout limit{30s};
};

const char* server_path() {
    const char* p = std::getenv("GROVE_HTTP_SERVER");
    BOOST_REQUIRE_MESSAGE(p != nullptr && ::access(p, X_OK) == 0,
                          "GROVE_HTTP_SERVER must name the built demos/http_server");
    return p;
}

// Reads fd until end of file (or 5 s pass), cooperatively.
std::string read_fd_to_eof(int fd) {
    std::string all;
    char buf[4096];
    for (;;) {
        const ssize_t n = grove::io::read(fd, buf, sizeof buf, 5s);
        BOOST_REQUIRE_MESSAGE(n >= 0, "reading a child's output: " << std::strerror(errno));
        if (n == 0) {
            return all;
        }
        all.append(buf, static_cast<std::size_t>(n));
    }
}

// A child process with its stdout and stderr on pipes (stderr optional).
struct Child {
    pid_t pid = -1;
    int out = -1;  // read end of its stdout
    int err = -1;  // read end of its stderr, or -1 when inherited

    // argv[0] without a '/' is looked up in PATH. *spawn_error (when
    // given) receives posix_spawnp's error instead of failing the case.
    static Child spawn(const std::vector<std::string>& argv, bool capture_stderr, int* spawn_error = nullptr) {
        int o[2];
        int e[2] = {-1, -1};
        BOOST_REQUIRE(::pipe2(o, O_CLOEXEC) == 0);
        if (capture_stderr) {
            BOOST_REQUIRE(::pipe2(e, O_CLOEXEC) == 0);
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, o[1], 1);
        if (capture_stderr) {
            posix_spawn_file_actions_adddup2(&fa, e[1], 2);
        }
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        Child c;
        const int rc = ::posix_spawnp(&c.pid, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(o[1]);
        if (capture_stderr) {
            ::close(e[1]);
        }
        if (spawn_error != nullptr) {
            *spawn_error = rc;
            if (rc != 0) {
                ::close(o[0]);
                if (capture_stderr) {
                    ::close(e[0]);
                }
                return Child{};
            }
        }
        BOOST_REQUIRE_MESSAGE(rc == 0, "posix_spawnp " << argv[0] << ": " << std::strerror(rc));
        c.out = o[0];
        c.err = e[0];
        return c;
    }

    // The exit status once it ended (polled, so the hub keeps running);
    // nullopt if it is still running after `patience`.
    std::optional<int> wait_exit(std::chrono::milliseconds patience) {
        const auto until = Clock::now() + patience;
        for (;;) {
            int status = 0;
            const pid_t r = ::waitpid(pid, &status, WNOHANG);
            if (r == pid) {
                pid = -1;
                return status;
            }
            if (r < 0 || Clock::now() > until) {
                return std::nullopt;
            }
            grove::this_fiber::sleep_for(5ms);
        }
    }

    void close_pipes() {
        if (out >= 0) {
            grove::io::close(std::exchange(out, -1));
        }
        if (err >= 0) {
            grove::io::close(std::exchange(err, -1));
        }
    }
};

// One demo server for one case: started on a free port, ended by SIGTERM.
// The destructor checks that it was still running, i.e. did not crash.
class DemoServer {
public:
    explicit DemoServer(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{server_path(), "0"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        child_ = Child::spawn(argv, false);
        // "listening on http://127.0.0.1:PORT/"
        std::string line;
        char c;
        while (line.find('\n') == std::string::npos) {
            const ssize_t n = grove::io::read(child_.out, &c, 1, 10s);
            BOOST_REQUIRE_MESSAGE(n == 1, "the server did not say where it listens");
            line.push_back(c);
        }
        const std::string prefix = "listening on http://127.0.0.1:";
        BOOST_REQUIRE_MESSAGE(line.rfind(prefix, 0) == 0, "unexpected first line: " << line);
        port_ = static_cast<std::uint16_t>(std::stoul(line.substr(prefix.size())));
        BOOST_REQUIRE_GT(port_, 0);
    }
    DemoServer(const DemoServer&) = delete;
    DemoServer& operator=(const DemoServer&) = delete;
    ~DemoServer() {
        if (child_.pid > 0) {
            int status = 0;
            const pid_t r = ::waitpid(child_.pid, &status, WNOHANG);
            BOOST_CHECK_MESSAGE(r == 0, "the server died during the case (status " << status << ")");
            if (r == 0) {
                ::kill(child_.pid, SIGTERM);
                if (!child_.wait_exit(5000ms)) {
                    ::kill(child_.pid, SIGKILL);
                    ::waitpid(child_.pid, &status, 0);
                }
            }
        }
        child_.close_pipes();
    }

    std::uint16_t port() const { return port_; }
    net::Address address() const { return net::Address::loopback_v4(port_); }

private:
    Child child_;
    std::uint16_t port_ = 0;
};

struct Response {
    std::string head;  // status line and fields, with the blank line
    int status = 0;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string body;

    // The value of a field (case-insensitive name), if present once or more.
    std::optional<std::string> field(std::string_view name) const {
        for (const auto& [n, v] : fields) {
            if (n.size() == name.size() && ::strncasecmp(n.c_str(), name.data(), name.size()) == 0) {
                return v;
            }
        }
        return std::nullopt;
    }
};

// An HTTP client on one connection, with its own strict response parser.
class Client {
public:
    explicit Client(const net::Address& at) : s_(net::TcpStream::connect(at, 5s)) {}

    void send(std::string_view bytes) { s_.write_all(bytes); }

    // The next response; a HEAD response has no body whatever its length.
    // Fails the case at end of stream.
    Response read_response(bool head = false) {
        Response r;
        std::size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
            BOOST_REQUIRE_MESSAGE(fill(), "connection closed before a response head; got: " << buf_);
        }
        r.head = buf_.substr(0, end + 4);
        buf_.erase(0, end + 4);
        std::size_t line_end = r.head.find("\r\n");
        const std::string status_line = r.head.substr(0, line_end);
        BOOST_REQUIRE_MESSAGE(status_line.rfind("HTTP/1.1 ", 0) == 0 && status_line.size() >= 13 &&
                                  status_line[12] == ' ',
                              "bad status line: " << status_line);
        r.status = std::stoi(status_line.substr(9, 3));
        std::size_t pos = line_end + 2;
        while (pos < r.head.size() - 2) {
            line_end = r.head.find("\r\n", pos);
            const std::string line = r.head.substr(pos, line_end - pos);
            const std::size_t colon = line.find(':');
            BOOST_REQUIRE_MESSAGE(colon != std::string::npos && colon > 0, "bad field line: " << line);
            std::string value = line.substr(colon + 1);
            BOOST_REQUIRE_MESSAGE(!value.empty() && value[0] == ' ', "no space after colon: " << line);
            r.fields.emplace_back(line.substr(0, colon), value.substr(1));
            pos = line_end + 2;
        }
        if (r.status == 100) {
            return r;
        }
        const auto len = r.field("Content-Length");
        BOOST_REQUIRE_MESSAGE(len.has_value(), "a response without Content-Length");
        const std::size_t n = head ? 0 : std::stoul(*len);
        while (buf_.size() < n) {
            BOOST_REQUIRE_MESSAGE(fill(), "connection closed inside a response body");
        }
        r.body = buf_.substr(0, n);
        buf_.erase(0, n);
        return r;
    }

    // True when the server ended the stream with nothing more sent;
    // fails the case on extra bytes.
    bool at_eof() {
        const bool more = fill();
        BOOST_CHECK_MESSAGE(buf_.empty(), "unexpected bytes after the response: " << buf_);
        return !more;
    }

    net::TcpStream& stream() { return s_; }

private:
    bool fill() {
        char tmp[16384];
        const std::size_t n = s_.read_some(tmp, sizeof tmp);
        buf_.append(tmp, n);
        return n > 0;
    }

    net::TcpStream s_;
    std::string buf_;
};

std::string get(std::string_view target, std::string_view extra = "") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) + "\r\n";
}

// "Thu, 26 Nov 2026 13:33:21 GMT" (IMF-fixdate), within a minute of now.
bool recent_imf_date(const std::string& v) {
    std::tm tm{};
    const char* end = ::strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0' || v.size() != 29) {
        return false;
    }
    const std::time_t t = ::timegm(&tm);
    const std::time_t now = std::time(nullptr);
    return t > now - 60 && t < now + 60;
}

// The "name: N" figure of a /stats body.
unsigned long stat_of(const std::string& body, const std::string& name) {
    const std::size_t at = body.find(name + ": ");
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, "no '" << name << "' in /stats: " << body);
    return std::stoul(body.substr(at + name.size() + 2));
}

// Sends `request` on a new connection; expects `status` and then the end
// of the stream (every refusal closes).
void expect_refused(const DemoServer& srv, std::string_view request, int status) {
    Client c(srv.address());
    c.send(request);
    const Response r = c.read_response();
    BOOST_CHECK_MESSAGE(r.status == status, "for " << std::string(request).substr(0, 60) << ": got " << r.status
                                                   << ", want " << status);
    BOOST_CHECK_EQUAL(r.field("Connection").value_or(""), "close");
    BOOST_CHECK(c.at_eof());
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http_suite, Bounded)

BOOST_AUTO_TEST_CASE(get_root_answers_hello_with_exact_head) {
    DemoServer srv;
    Client c(srv.address());
    c.send(get("/"));
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "Hello, World!\n");
    const std::string date = r.field("Date").value_or("");
    BOOST_CHECK_MESSAGE(recent_imf_date(date), "Date: " << date);
    BOOST_CHECK_EQUAL(r.head, "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              "Date: " + date + "\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(head_gets_the_fields_without_the_body) {
    DemoServer srv;
    Client c(srv.address());
    c.send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    const Response h = c.read_response(true);
    BOOST_CHECK_EQUAL(h.status, 200);
    BOOST_CHECK_EQUAL(h.field("Content-Length").value_or(""), "14");
    // Had a body been sent, it would now be read as the next response.
    c.send(get("/"));
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "Hello, World!\n");
}

BOOST_AUTO_TEST_CASE(keep_alive_serves_many_requests_on_one_connection) {
    DemoServer srv;
    Client c(srv.address());
    c.send(get("/stats"));
    const Response before = c.read_response();
    BOOST_REQUIRE_EQUAL(before.status, 200);
    constexpr int kRequests = 1000;
    for (int i = 0; i < kRequests; ++i) {
        c.send(get("/"));
        const Response r = c.read_response();
        BOOST_REQUIRE_EQUAL(r.status, 200);
        BOOST_REQUIRE_EQUAL(r.body, "Hello, World!\n");
        BOOST_REQUIRE(!r.field("Connection").has_value());
    }
    c.send(get("/stats"));
    const Response after = c.read_response();
    BOOST_CHECK_EQUAL(stat_of(after.body, "connections accepted"), stat_of(before.body, "connections accepted"));
    BOOST_CHECK_EQUAL(stat_of(after.body, "connections accepted"), 1u);
    BOOST_CHECK_EQUAL(stat_of(after.body, "requests answered") - stat_of(before.body, "requests answered"),
                      static_cast<unsigned long>(kRequests + 1));
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
    DemoServer srv;
    Client c(srv.address());
    // One write: a slow request first, so a server answering out of order,
    // or holding the later ones back, would show.
    c.send(get("/sleep?ms=50") + get("/") + get("/missing") +
           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde" + get("/sleep?ms=0"));
    Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "slept 50 ms\n");
    r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "Hello, World!\n");
    r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 404);
    r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "abcde");
    r = c.read_response();
    BOOST_CHECK_EQUAL(r.body, "slept 0 ms\n");

    // Many at once, more than one read's worth.
    std::string batch;
    constexpr int kPipelined = 500;
    for (int i = 0; i < kPipelined; ++i) {
        batch += get(i % 2 == 0 ? "/" : "/sleep?ms=" + std::to_string(i % 3));
    }
    c.send(batch);
    for (int i = 0; i < kPipelined; ++i) {
        r = c.read_response();
        BOOST_REQUIRE_EQUAL(r.status, 200);
        BOOST_REQUIRE_EQUAL(r.body, i % 2 == 0 ? std::string("Hello, World!\n")
                                               : "slept " + std::to_string(i % 3) + " ms\n");
    }
}

BOOST_AUTO_TEST_CASE(request_split_across_writes_is_assembled) {
    DemoServer srv;
    Client c(srv.address());
    const std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world";
    for (char ch : req) {
        c.send(std::string_view(&ch, 1));
        if (ch == '\n') {
            grove::this_fiber::sleep_for(2ms);
        }
    }
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "hello world");
}

BOOST_AUTO_TEST_CASE(connection_close_is_honoured) {
    DemoServer srv;
    Client c(srv.address());
    c.send(get("/", "Connection: close\r\n"));
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "Hello, World!\n");
    BOOST_CHECK_EQUAL(r.field("Connection").value_or(""), "close");
    BOOST_CHECK(c.at_eof());
}

BOOST_AUTO_TEST_CASE(requests_after_connection_close_are_not_answered) {
    DemoServer srv;
    Client c(srv.address());
    c.send(get("/", "Connection: keep-alive, close\r\n") + get("/"));
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.field("Connection").value_or(""), "close");
    BOOST_CHECK(c.at_eof());
}

BOOST_AUTO_TEST_CASE(http_1_0_closes_unless_keep_alive_is_asked) {
    DemoServer srv;
    {
        Client c(srv.address());
        c.send("GET / HTTP/1.0\r\n\r\n");
        const Response r = c.read_response();
        BOOST_CHECK_EQUAL(r.status, 200);
        BOOST_CHECK_EQUAL(r.body, "Hello, World!\n");
        BOOST_CHECK_EQUAL(r.field("Connection").value_or(""), "close");
        BOOST_CHECK(c.at_eof());
    }
    {
        Client c(srv.address());
        for (int i = 0; i < 3; ++i) {
            c.send("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
            const Response r = c.read_response();
            BOOST_CHECK_EQUAL(r.status, 200);
            BOOST_CHECK_EQUAL(r.field("Connection").value_or(""), "keep-alive");
        }
        c.send("GET / HTTP/1.0\r\n\r\n");
        BOOST_CHECK_EQUAL(c.read_response().status, 200);
        BOOST_CHECK(c.at_eof());
    }
}

BOOST_AUTO_TEST_CASE(malformed_requests_get_400_and_close) {
    DemoServer srv;
    const char* bad[] = {
        "garbage\r\n\r\n",
        "GET /\r\nHost: t\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: t\r\n\r\n",
        "GET / HTTP/1.10\r\nHost: t\r\n\r\n",
        "GET / FTP/1.1\r\nHost: t\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET nopath HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                          // HTTP/1.1 without Host
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    // two Hosts
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (const char* req : bad) {
        expect_refused(srv, req, 400);
    }
    // A NUL byte in a field value.
    expect_refused(srv, std::string_view("GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n", 35), 400);
}

BOOST_AUTO_TEST_CASE(other_http_major_versions_get_505) {
    DemoServer srv;
    expect_refused(srv, "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
    expect_refused(srv, "GET / HTTP/0.9\r\nHost: t\r\n\r\n", 505);
}

BOOST_AUTO_TEST_CASE(oversized_head_gets_431_and_long_request_line_414) {
    DemoServer srv;
    std::string big = "GET / HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; big.size() < 9000; ++i) {
        big += "X-Filler-" + std::to_string(i) + ": " + std::string(100, 'v') + "\r\n";
    }
    big += "\r\n";
    expect_refused(srv, big, 431);
    // Arriving without its end: judged as soon as 8 KiB are in.
    expect_refused(srv, big.substr(0, 8300), 431);
    expect_refused(srv, "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414);

    // Just under the limit is fine.
    std::string fits = "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ";
    fits += std::string(8192 - fits.size() - 4, 'v') + "\r\n\r\n";
    BOOST_REQUIRE_EQUAL(fits.size(), 8192u);
    Client c(srv.address());
    c.send(fits);
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "Hello, World!\n");
}

BOOST_AUTO_TEST_CASE(unknown_method_gets_501_and_unsupported_one_405) {
    DemoServer srv;
    expect_refused(srv, "BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501);

    Client c(srv.address());
    c.send("DELETE / HTTP/1.1\r\nHost: t\r\n\r\n");
    Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 405);
    BOOST_CHECK_EQUAL(r.field("Allow").value_or(""), "GET, HEAD");
    // A 405 keeps the connection, its body (if any) consumed.
    c.send("PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nGET " + get("/echo"));
    r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 405);
    r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 405);
    BOOST_CHECK_EQUAL(r.field("Allow").value_or(""), "POST");
    c.send(get("/"));
    BOOST_CHECK_EQUAL(c.read_response().body, "Hello, World!\n");
}

BOOST_AUTO_TEST_CASE(post_with_content_length_is_echoed) {
    DemoServer srv;
    Client c(srv.address());
    std::string body(300000, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>((i * 7 + 3) % 256);
    }
    const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\n\r\n";
    // The body in pieces, with pauses: the server must wait for all of it.
    c.send(head + body.substr(0, 1000));
    grove::this_fiber::sleep_for(20ms);
    c.send(std::string_view(body).substr(1000, 100000));
    grove::this_fiber::sleep_for(20ms);
    c.send(std::string_view(body).substr(101000));
    Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.field("Content-Type").value_or(""), "application/octet-stream");
    BOOST_CHECK(r.body == body);

    // An empty body, then the connection still works.
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "");
    c.send(get("/"));
    BOOST_CHECK_EQUAL(c.read_response().body, "Hello, World!\n");
}

BOOST_AUTO_TEST_CASE(oversized_or_unframed_bodies_are_refused) {
    DemoServer srv;
    expect_refused(srv, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n", 413);
    expect_refused(srv, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413);
    expect_refused(srv, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                   411);
    expect_refused(srv, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    expect_refused(srv, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\n\r\n", 417);
}

BOOST_AUTO_TEST_CASE(expect_100_continue_gets_the_interim_response_first) {
    DemoServer srv;
    Client c(srv.address());
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    const Response interim = c.read_response();
    BOOST_CHECK_EQUAL(interim.status, 100);
    BOOST_CHECK_EQUAL(interim.head, "HTTP/1.1 100 Continue\r\n\r\n");
    c.send("ping");
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 200);
    BOOST_CHECK_EQUAL(r.body, "ping");
}

BOOST_AUTO_TEST_CASE(routes_reject_bad_input_and_unknown_paths) {
    DemoServer srv;
    Client c(srv.address());
    for (const char* t : {"/sleep", "/sleep?ms=", "/sleep?ms=-5", "/sleep?ms=1x", "/sleep?ms=60001"}) {
        c.send(get(t));
        const Response r = c.read_response();
        BOOST_CHECK_MESSAGE(r.status == 400, t << ": " << r.status);
    }
    c.send(get("/sleep?x=1&ms=3"));
    BOOST_CHECK_EQUAL(c.read_response().body, "slept 3 ms\n");
    c.send(get("/nothing/here"));
    const Response r = c.read_response();
    BOOST_CHECK_EQUAL(r.status, 404);
    BOOST_CHECK_NE(r.body.find("/nothing/here"), std::string::npos);
    // absolute-form target
    c.send(get("http://test/?q=1"));
    BOOST_CHECK_EQUAL(c.read_response().body, "Hello, World!\n");
}

BOOST_AUTO_TEST_CASE(idle_connection_is_closed_after_the_timeout) {
    DemoServer srv({"--idle-timeout", "300"});
    Client idle(srv.address());
    Client partial(srv.address());
    Client busy(srv.address());
    partial.send("GET / HTTP/1.1\r\nHo");
    const auto t0 = Clock::now();
    auto closed_after = grove::spawn([&] {
        const bool eof = idle.at_eof();
        return eof ? Clock::now() - t0 : Clock::duration::max();
    });
    // Requests keep `busy` alive past the timeout.
    for (int i = 0; i < 8; ++i) {
        grove::this_fiber::sleep_for(100ms);
        busy.send(get("/"));
        BOOST_REQUIRE_EQUAL(busy.read_response().status, 200);
    }
    const auto waited = closed_after.join();
    BOOST_CHECK_MESSAGE(waited >= 250ms && waited < 5s,
                        "idle connection closed after " << std::chrono::duration<double>(waited).count() << " s");
    // A stalled request gets 408 before the close.
    const Response r = partial.read_response();
    BOOST_CHECK_EQUAL(r.status, 408);
    BOOST_CHECK(partial.at_eof());
    busy.send(get("/"));
    BOOST_CHECK_EQUAL(busy.read_response().status, 200);
}

BOOST_AUTO_TEST_CASE(two_hundred_sleeping_clients_are_served_concurrently) {
    DemoServer srv;
    constexpr int kClients = 200;
    std::vector<grove::Fiber<std::string>> clients;
    const auto t0 = Clock::now();
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(grove::spawn([&srv] {
            Client c(srv.address());
            c.send(get("/sleep?ms=200"));
            return c.read_response().body;
        }));
    }
    int ok = 0;
    for (auto& f : clients) {
        ok += f.join() == "slept 200 ms\n" ? 1 : 0;
    }
    const auto took = Clock::now() - t0;
    BOOST_CHECK_EQUAL(ok, kClients);
    // One after another this would take 40 s.
    BOOST_CHECK_MESSAGE(took < 5s, "took " << std::chrono::duration<double>(took).count() << " s");
    BOOST_CHECK(took >= 200ms);
}

BOOST_AUTO_TEST_CASE(abrupt_clients_do_not_disturb_the_server) {
    DemoServer srv;
    for (int i = 0; i < 50; ++i) {
        Client c(srv.address());
        if (i % 3 == 0) {
            c.send("GET / HTTP/1.1\r\nHost");
        } else if (i % 3 == 1) {
            // Many requests, none of the answers read: close with data unread.
            std::string many;
            for (int k = 0; k < 200; ++k) {
                many += get("/");
            }
            c.send(many);
        } else {
            // Reset: SO_LINGER 0 makes the close send RST.
            struct linger lg{1, 0};
            ::setsockopt(c.stream().fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            c.send(get("/sleep?ms=10"));
        }
    }
    Client c(srv.address());
    c.send(get("/"));
    BOOST_CHECK_EQUAL(c.read_response().body, "Hello, World!\n");
}

BOOST_AUTO_TEST_CASE(curl_gets_the_same_body) {
    DemoServer srv;
    const std::string url = "http://127.0.0.1:" + std::to_string(srv.port()) + "/";
    int spawn_error = 0;
    Child c = Child::spawn({"curl", "-sS", "--max-time", "10", url, url}, false, &spawn_error);
    if (spawn_error != 0) {
        BOOST_TEST_MESSAGE("curl not runnable (" << std::strerror(spawn_error) << "): skipped");
        return;
    }
    const std::string out = read_fd_to_eof(c.out);
    const auto status = c.wait_exit(10000ms);
    c.close_pipes();
    BOOST_REQUIRE(status.has_value());
    BOOST_CHECK(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    // Two URLs: curl reuses the connection for the second.
    BOOST_CHECK_EQUAL(out, "Hello, World!\nHello, World!\n");
}

BOOST_AUTO_TEST_CASE(bad_arguments_exit_2_with_a_usage_message) {
    const std::vector<std::vector<std::string>> bad = {
        {"notaport"}, {"65536"}, {"-1"}, {"1", "2"}, {"--idle-timeout", "0"}, {"--idle-timeout"},
        {"--idle-timeout=abc"}, {"--bogus"}, {"--host", "not-an-address"}, {"--port-file="},
    };
    for (const auto& args : bad) {
        std::vector<std::string> argv{server_path()};
        argv.insert(argv.end(), args.begin(), args.end());
        Child c = Child::spawn(argv, true);
        const std::string err = read_fd_to_eof(c.err);
        const auto status = c.wait_exit(5000ms);
        c.close_pipes();
        BOOST_REQUIRE_MESSAGE(status.has_value(), "still running with " << args[0]);
        BOOST_CHECK_MESSAGE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2, "exit status for " << args[0]);
        BOOST_CHECK_MESSAGE(!err.empty() && err.find(server_path()) != std::string::npos,
                            "stderr for " << args[0] << ": " << err);
    }
}

BOOST_AUTO_TEST_CASE(port_file_names_the_listening_port) {
    char dir[] = "/tmp/grove_http_XXXXXX";
    BOOST_REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string file = std::string(dir) + "/port";
    {
        DemoServer srv({"--port-file", file});
        const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        BOOST_REQUIRE(fd >= 0);
        const std::string text = read_fd_to_eof(fd);
        grove::io::close(fd);
        BOOST_CHECK_EQUAL(text, std::to_string(srv.port()) + "\n");
    }
    ::unlink(file.c_str());
    ::rmdir(dir);
}

BOOST_AUTO_TEST_SUITE_END()
