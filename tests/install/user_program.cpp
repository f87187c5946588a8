// A program that knows grove only through its installed headers and
// pkg-config: no set-up call, the first use creates the hub.
#include <grove/grove.hpp>

#include <cstdio>

int main() {
    using namespace std::chrono_literals;
    grove::Channel<int> ch;
    auto producer = grove::spawn([&ch] {
        grove::this_fiber::sleep_for(1ms);
        ch.send(21);
    });
    auto doubler = grove::spawn([&ch] { return *ch.recv() * 2; });
    producer.join();
    std::printf("%d ok\n", doubler.join());
    return 0;
}
