// Reaches libgrove only through a library of its own (indirect_lib.cpp);
// prints the answer of a fiber that slept through the shim, and the
// LD_PRELOAD it ended up with.
#include <cstdio>
#include <cstdlib>

extern "C" int indirect_answer();

int main() {
    const int v = indirect_answer();
    const char* p = std::getenv("LD_PRELOAD");
    std::printf("%d %s\n", v, p != nullptr ? p : "(none)");
    return 0;
}
