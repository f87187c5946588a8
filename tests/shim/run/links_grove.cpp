// A program linked with libgrove (the linked way): prints the LD_PRELOAD it
// was started with, after a fiber has run, so grove-run's choice of shim
// for it can be checked.
#include <grove/grove.hpp>

#include <cstdio>
#include <cstdlib>

int main() {
    int v = grove::spawn([] { return 21 * 2; }).join();
    const char* p = std::getenv("LD_PRELOAD");
    std::printf("%d %s\n", v, p != nullptr ? p : "(none)");
    return 0;
}
