// A library that uses grove itself, for a program that does not link
// libgrove directly (links_indirect.cpp): grove-run cannot see libgrove in
// that program's own needs. One fiber of this library's makes a plain
// read() on a pipe that another of its fibers fills later: the shim must
// park the reader on this library's hub, or the writer never runs.
#include <grove/grove.hpp>

#include <unistd.h>

#include <chrono>

extern "C" int indirect_answer() {
    int p[2];
    if (::pipe(p) != 0) {
        return -1;
    }
    auto reader = grove::spawn([&] {
        char c = 0;
        return ::read(p[0], &c, 1) == 1 && c == '*' ? 42 : -2;
    });
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(std::chrono::milliseconds(20));
        return static_cast<int>(::write(p[1], "*", 1));
    });
    const int v = reader.join();
    writer.join();
    ::close(p[0]);
    ::close(p[1]);
    return v;
}
