// chess: a simultaneous exhibition, the classic picture of concurrency.
//
// A chess master plays 24 opponents at once. She takes 5 time units per
// move, each opponent 55. Played one board after another, a game of N move
// pairs takes N * (5 + 55) units and 24 games take 24 times that. Going
// round the boards instead, she moves and walks on while that opponent
// thinks; by the time she is back (23 boards * 5 = 115 units later) the
// reply is long made, so she never waits: the exhibition lasts about her
// own thinking time, 24 * N * 5 units.
//
// In fibers: the master is one fiber, each opponent another. The master's
// thinking is CPU work (a busy loop: while she thinks, nothing else runs on
// this thread); an opponent's thinking is waiting (sleep_for, like waiting
// for I/O: it costs no CPU, and 24 of them overlap). Scheduling is
// cooperative, so after each move she yields: that is when the opponent
// picks the move up and starts thinking. Without the yield nobody else
// would run until she first had to wait for a reply, and the opponents
// would all start thinking late.
//
// Usage: chess [MOVE_PAIRS=30] [UNIT_MICROSECONDS=500]
#include <grove/grove.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBoards = 24;
constexpr int kMasterUnits = 5;
constexpr int kOpponentUnits = 55;

std::chrono::microseconds g_unit{500};

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double units_to_seconds(long units) {
    return std::chrono::duration<double>(g_unit * units).count();
}

// The master thinks: CPU work that does not yield.
void master_thinks() {
    const auto until = Clock::now() + g_unit * kMasterUnits;
    while (Clock::now() < until) {
    }
}

// An opponent thinks: a wait, during which other fibers run.
void opponent_thinks() { grove::this_fiber::sleep_for(g_unit * kOpponentUnits); }

struct Board {
    grove::Channel<int> to_opponent{1};  // the master's moves
    grove::Channel<int> to_master{1};    // the replies
};

// One board played start to finish before the next: the sequential way.
void play_one_game_alone(int move_pairs) {
    for (int i = 0; i < move_pairs; ++i) {
        master_thinks();
        opponent_thinks();
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int move_pairs = argc > 1 ? std::atoi(argv[1]) : 30;
    if (argc > 2) {
        g_unit = std::chrono::microseconds(std::atol(argv[2]));
    }
    if (move_pairs <= 0 || g_unit.count() <= 0) {
        std::fprintf(stderr, "usage: %s [MOVE_PAIRS=30] [UNIT_MICROSECONDS=500]\n", argv[0]);
        return 2;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);

    std::printf("Simultaneous exhibition: 1 master against %d boards, %d move pairs a game.\n", kBoards,
                move_pairs);
    std::printf("Master: %d units a move (CPU work); opponents: %d units a move (waiting). 1 unit = %.1f ms.\n\n",
                kMasterUnits, kOpponentUnits, g_unit.count() / 1000.0);

    // Sequential: really play one game, then scale by the number of boards.
    auto t0 = Clock::now();
    play_one_game_alone(move_pairs);
    const double one_game = seconds_since(t0);

    // Concurrent: the master goes round the boards; each opponent thinks in
    // its own fiber while she moves on.
    std::vector<std::unique_ptr<Board>> boards;
    for (int b = 0; b < kBoards; ++b) {
        boards.push_back(std::make_unique<Board>());
    }
    Clock::duration master_idle{};
    t0 = Clock::now();
    grove::Group players;
    for (auto& board : boards) {
        players.spawn([&b = *board] {
            // Until the master closes the board: read her move, think, reply.
            for (int move : b.to_opponent) {
                opponent_thinks();
                b.to_master.send(move);
            }
        });
    }
    players.spawn([&] {
        for (int pair = 0; pair < move_pairs; ++pair) {
            for (auto& b : boards) {
                if (pair > 0 && !b->to_master.try_recv()) {
                    // No reply yet: still thinking, or the hub has not yet
                    // run the timer that ends the thought.
                    const auto idle_from = Clock::now();
                    b->to_master.recv();
                    master_idle += Clock::now() - idle_from;
                }
                master_thinks();
                b->to_opponent.send(pair);
                grove::this_fiber::yield();  // let the opponent take the move
            }
        }
        // The last replies, then the games are over.
        for (auto& b : boards) {
            b->to_master.recv();
            b->to_opponent.close();
        }
    });
    players.join(true);
    const double together = seconds_since(t0);

    const long master_units = static_cast<long>(kBoards) * move_pairs * kMasterUnits;
    std::printf("  one board at a time:  1 game took %.2f s, so %d games take ~%.2f s\n", one_game, kBoards,
                one_game * kBoards);
    std::printf("  all boards at once:   %d games took %.2f s (%d fibers; the master waited %.0f ms for replies)\n",
                kBoards, together, kBoards + 1, std::chrono::duration<double, std::milli>(master_idle).count());
    std::printf("\n%.1fx faster. The floor is the master's own thinking, %d x %d x %d units = %.2f s:\n"
                "the opponents' %.2f s of thinking per game all happened while she was busy elsewhere.\n",
                one_game * kBoards / together, kBoards, move_pairs, kMasterUnits, units_to_seconds(master_units),
                units_to_seconds(static_cast<long>(move_pairs) * kOpponentUnits));
    return 0;
}
