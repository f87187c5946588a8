// pipeline: `grep` as three fibers joined by channels.
//
//     source --lines--> grep --matches--> printer
//
// Each stage is a fiber that loops over its input channel with range-for
// and sends on to the next. When the source runs out it closes `lines`;
// grep's loop then ends once the buffered lines are drained, and grep
// closes `matches`, which ends the printer's loop: close() travels down the
// chain and every stage finishes by itself.
//
// Usage: pipeline [FILE [PATTERN]]   (no FILE, or "-": a built-in text;
//                                      PATTERN is an ECMAScript regex)
#include <grove/grove.hpp>

#include <cstdio>
#include <fstream>
// GCC 12 warns, wrongly, that std::regex's compiler may copy a
// std::function before it is set (seen where the sanitizers change its
// inlining): not for this header's code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <sstream>
#include <string>

namespace {

constexpr const char* kBuiltinText =
    R"(The Zen of Python, by Tim Peters
Beautiful is better than ugly.
Explicit is better than implicit.
Simple is better than complex.
Complex is better than complicated.
Flat is better than nested.
Sparse is better than dense.
Readability counts.
Special cases aren't special enough to break the rules.
Although practicality beats purity.
Errors should never pass silently.
Unless explicitly silenced.
In the face of ambiguity, refuse the temptation to guess.
There should be one-- and preferably only one --obvious way to do it.
Although that way may not be obvious at first unless you're Dutch.
Now is better than never.
Although never is often better than *right* now.
If the implementation is hard to explain, it's a bad idea.
If the implementation is easy to explain, it may be a good idea.
Namespaces are one honking great idea -- let's do more of those!
)";

constexpr const char* kDefaultPattern = "better|idea";

}  // namespace

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "-";
    const std::string pattern = argc > 2 ? argv[2] : kDefaultPattern;

    std::regex re;
    try {
        re.assign(pattern);
    } catch (const std::regex_error& e) {
        std::fprintf(stderr, "pipeline: bad pattern '%s': %s\n", pattern.c_str(), e.what());
        return 2;
    }
    std::ifstream file;
    std::istringstream builtin(kBuiltinText);
    std::istream* in = &builtin;
    if (path != "-") {
        file.open(path);
        if (!file) {
            std::fprintf(stderr, "pipeline: cannot open %s\n", path.c_str());
            return 1;
        }
        in = &file;
    }
    std::fprintf(stderr, "pipeline: lines of %s matching /%s/\n", path == "-" ? "the built-in text" : path.c_str(),
                 pattern.c_str());

    grove::Channel<std::string> lines(16);  // a little buffering between source and grep
    grove::Channel<std::string> matches;    // capacity 0: grep hands each match to the printer
    long read_count = 0;
    long match_count = 0;

    // A regular file never makes a fiber wait (the kernel reports files as
    // always ready), so the source reads with plain iostreams.
    auto source = grove::spawn([&] {
        std::string line;
        while (std::getline(*in, line)) {
            ++read_count;
            lines.send(std::to_string(read_count) + ":" + line);
        }
        lines.close();
    });
    auto grep = grove::spawn([&] {
        for (std::string& numbered : lines) {
            const std::string text = numbered.substr(numbered.find(':') + 1);
            if (std::regex_search(text, re)) {
                matches.send(std::move(numbered));
            }
        }
        matches.close();
    });
    auto printer = grove::spawn([&] {
        for (const std::string& m : matches) {
            ++match_count;
            std::printf("%s\n", m.c_str());
        }
    });

    source.join();
    grep.join();
    printer.join();
    std::fflush(stdout);
    std::fprintf(stderr, "pipeline: %ld of %ld lines matched; every stage ended when its input closed\n",
                 match_count, read_count);
    return 0;
}
