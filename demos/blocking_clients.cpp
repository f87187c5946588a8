// blocking_clients: ordinary blocking POSIX socket code, run in fibers.
//
// fetch() below is plain C-style client code: socket, connect, write, read,
// close. It knows nothing of grove. Linked with grove's shim, the same
// function runs in many fibers at once on one OS thread: each blocking call
// parks its fiber instead of the thread.
//
// The demo starts N local servers that each answer after a delay (a slow
// backend), then fetches from all of them twice: one after another, and
// one fiber per server.
//
//   blocking_clients [SERVERS=50] [DELAY_MS=100]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <grove/grove.hpp>

namespace {

// --- plain blocking client code ------------------------------------------------

// Connects to 127.0.0.1:port, sends a request line, reads the reply until
// the server closes. Returns the reply, or an error text.
std::string fetch(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return std::string("socket: ") + std::strerror(errno);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::string err = std::string("connect: ") + std::strerror(errno);
        close(fd);
        return err;
    }
    const char request[] = "GET /quote\n";
    if (write(fd, request, sizeof request - 1) < 0) {
        std::string err = std::string("write: ") + std::strerror(errno);
        close(fd);
        return err;
    }
    std::string reply;
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        reply.append(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    return reply;
}

// --- plain blocking server code (one fiber per server) --------------------------

int listen_on_any_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0) {
        std::perror("listen");
        std::exit(1);
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return fd;
}

int port_of(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

void serve(int listener, int id, int delay_ms) {
    for (;;) {
        int c = accept(listener, nullptr, nullptr);
        if (c < 0) {
            return;  // listener closed: demo over
        }
        grove::spawn([c, id, delay_ms] {
            char buf[64];
            if (read(c, buf, sizeof buf) > 0) {
                usleep(static_cast<useconds_t>(delay_ms) * 1000);  // a slow backend
                std::string reply = "quote #" + std::to_string(id) + "\n";
                write(c, reply.data(), reply.size());
            }
            close(c);
        }).detach();
    }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    const int servers = argc > 1 ? std::atoi(argv[1]) : 50;
    const int delay_ms = argc > 2 ? std::atoi(argv[2]) : 100;
    if (servers <= 0 || delay_ms < 0) {
        std::fprintf(stderr, "usage: blocking_clients [SERVERS>0] [DELAY_MS>=0]\n");
        return 2;
    }

    std::vector<int> listeners;
    std::vector<int> ports;
    grove::Group server_fibers;
    for (int i = 0; i < servers; ++i) {
        listeners.push_back(listen_on_any_port());
        ports.push_back(port_of(listeners.back()));
        server_fibers.spawn(serve, listeners.back(), i, delay_ms);
    }
    std::printf("%d local servers, each answering after %d ms\n", servers, delay_ms);

    // One after another: the classic blocking client.
    auto t0 = std::chrono::steady_clock::now();
    int ok_seq = 0;
    for (int i = 0; i < servers; ++i) {
        ok_seq += fetch(ports[i]) == "quote #" + std::to_string(i) + "\n" ? 1 : 0;
    }
    const double sequential = seconds_since(t0);

    // The same function, one fiber per server.
    t0 = std::chrono::steady_clock::now();
    std::vector<grove::Fiber<std::string>> fibers;
    for (int i = 0; i < servers; ++i) {
        fibers.push_back(grove::spawn(fetch, ports[i]));
    }
    int ok_conc = 0;
    for (int i = 0; i < servers; ++i) {
        ok_conc += fibers[i].join() == "quote #" + std::to_string(i) + "\n" ? 1 : 0;
    }
    const double concurrent = seconds_since(t0);

    std::printf("sequential: %6.3f s  (%d/%d replies correct)\n", sequential, ok_seq, servers);
    std::printf("concurrent: %6.3f s  (%d/%d replies correct), one OS thread\n", concurrent, ok_conc, servers);
    std::printf("speed-up:   %.1fx\n", concurrent > 0 ? sequential / concurrent : 0.0);

    for (int fd : listeners) {
        close(fd);  // wakes each server fiber's accept with EBADF
    }
    server_fibers.join();
    return ok_seq == servers && ok_conc == servers ? 0 : 1;
}
