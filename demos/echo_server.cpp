// echo_server [PORT]: a grove StreamServer on 127.0.0.1:PORT (default 9000)
// echoing every byte back, one fiber per connection, written as plain
// blocking code. The benchmark peer of the hand-written epoll echo server
// (epoll_echo.c among the shared benchmark peers).
//
// Runs until SIGINT/SIGTERM, whose default action ends the process: the
// kernel closes the sockets, nothing else needs cleaning up. Both are reset
// to that default first, since a shell starts background jobs with SIGINT
// ignored.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <grove/net.hpp>

namespace {

// Per message: read (data), write, read (EAGAIN) and park; the
// hub registered the socket once, at its first wait.
void echo(grove::net::TcpStream& s) {
    s.set_nodelay();
    char buf[16384];
    while (std::size_t n = s.read_some(buf, sizeof buf)) {
        s.write_all(buf, n);
    }
}

}  // namespace

int main(int argc, char** argv) {
    unsigned long port = 9000;
    if (argc > 2) {
        std::fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        char* end = nullptr;
        port = std::strtoul(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || port > 65535) {
            std::fprintf(stderr, "%s: bad port '%s'\n", argv[0], argv[1]);
            return 2;
        }
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    try {
        grove::net::StreamServer server(grove::net::Address::loopback_v4(static_cast<std::uint16_t>(port)), echo);
        server.start();
        std::printf("listening on %s\n", server.address().to_string().c_str());
        std::fflush(stdout);
        server.serve_forever();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
    return 0;
}
