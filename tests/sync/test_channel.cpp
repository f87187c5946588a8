#define BOOST_TEST_MODULE channel
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using grove_test::CaseDeadline;
using grove_test::Reaper;

BOOST_FIXTURE_TEST_SUITE(channel, CaseDeadline)

BOOST_AUTO_TEST_CASE(rendezvous_send_blocks_until_a_receiver_takes_the_value) {
    grove::Channel<int> ch;
    BOOST_CHECK_EQUAL(ch.capacity(), 0u);
    std::vector<std::string> seq;
    auto sender = grove::spawn([&] {
        seq.push_back("send");
        ch.send(7);
        seq.push_back("sent");
    });
    Reaper reaper;
    reaper.add(sender);
    grove::this_fiber::yield();  // the sender parks in send
    BOOST_CHECK(!sender.ready());
    BOOST_CHECK_EQUAL(ch.size(), 0u);
    seq.push_back("recv");
    const std::optional<int> v = ch.recv(5s);
    seq.push_back("received " + std::to_string(v.value_or(-1)));
    sender.join(5s);
    const std::vector<std::string> expected{"send", "recv", "received 7", "sent"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(rendezvous_recv_blocks_until_a_sender_arrives) {
    grove::Channel<int> ch;
    std::vector<std::string> seq;
    auto receiver = grove::spawn([&] {
        seq.push_back("recv");
        const auto v = ch.recv();
        seq.push_back("received " + std::to_string(v.value_or(-1)));
    });
    Reaper reaper;
    reaper.add(receiver);
    grove::this_fiber::yield();
    seq.push_back("send");
    ch.send(3);  // a receiver waits: hands over without blocking
    seq.push_back("sent");
    receiver.join(5s);
    const std::vector<std::string> expected{"recv", "send", "sent", "received 3"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(bounded_channel_takes_n_sends_without_blocking_and_blocks_the_next) {
    grove::Channel<int> ch(3);
    int sent = 0;
    auto sender = grove::spawn([&] {
        for (int i = 0; i < 4; ++i) {
            ch.send(i);
            ++sent;
        }
    });
    Reaper reaper;
    reaper.add(sender);
    grove::this_fiber::yield();
    BOOST_CHECK_EQUAL(sent, 3);
    BOOST_CHECK_EQUAL(ch.size(), 3u);
    BOOST_CHECK(!sender.ready());
    std::vector<int> got;
    got.push_back(ch.recv(5s).value_or(-1));  // makes room for the fourth
    sender.join(5s);
    BOOST_CHECK_EQUAL(sent, 4);
    BOOST_CHECK_EQUAL(ch.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        got.push_back(ch.recv(5s).value_or(-1));
    }
    const std::vector<int> expected{0, 1, 2, 3};
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(unbounded_channel_never_blocks_senders) {
    grove::Channel<int> ch(grove::unbounded);
    const auto t0 = Clock::now();
    for (int i = 0; i < 10000; ++i) {
        ch.send(i);
    }
    BOOST_CHECK(Clock::now() - t0 < 5s);
    BOOST_CHECK_EQUAL(ch.size(), 10000u);
    long sum = 0;
    for (int i = 0; i < 10000; ++i) {
        sum += ch.try_recv().value_or(0);
    }
    BOOST_CHECK_EQUAL(sum, 10000L * 9999 / 2);
    BOOST_CHECK_EQUAL(ch.size(), 0u);
}

BOOST_AUTO_TEST_CASE(senders_are_served_in_fifo_order) {
    grove::Channel<int> ch;
    std::vector<grove::Fiber<void>> senders;
    for (int i = 0; i < 4; ++i) {
        senders.push_back(grove::spawn([&ch, i] { ch.send(i); }));
    }
    Reaper reaper;
    reaper.add(senders);
    grove::this_fiber::yield();
    std::vector<int> got;
    for (int i = 0; i < 4; ++i) {
        got.push_back(ch.recv(5s).value_or(-1));
    }
    grove::join_all(senders);
    const std::vector<int> expected{0, 1, 2, 3};
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(blocked_senders_refill_a_bounded_buffer_in_order) {
    grove::Channel<int> ch(2);
    auto sender = grove::spawn([&ch] {
        for (int i = 0; i < 6; ++i) {
            ch.send(i);
        }
    });
    auto sender2 = grove::spawn([&ch] { ch.send(100); });
    Reaper reaper;
    reaper.add(sender);
    reaper.add(sender2);
    grove::this_fiber::yield();
    std::vector<int> got;
    for (int i = 0; i < 7; ++i) {
        got.push_back(ch.recv(5s).value_or(-1));
    }
    sender.join(5s);
    sender2.join(5s);
    // Buffer {0,1}; parked: sender with 2, then sender2 with 100. Each recv
    // from the full buffer pulls in the longest-waiting sender's value.
    const std::vector<int> expected{0, 1, 2, 100, 3, 4, 5};
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(close_lets_receivers_drain_buffered_values_then_returns_empty) {
    grove::Channel<int> ch(5);
    ch.send(1);
    ch.send(2);
    ch.close();
    BOOST_CHECK(ch.closed());
    BOOST_CHECK_EQUAL(ch.recv(1s).value_or(-1), 1);
    BOOST_CHECK_EQUAL(ch.recv().value_or(-1), 2);
    const auto t0 = Clock::now();
    BOOST_CHECK(!ch.recv().has_value());
    BOOST_CHECK(!ch.recv(1s).has_value());
    BOOST_CHECK(!ch.try_recv().has_value());
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(close_is_idempotent) {
    grove::Channel<int> ch(1);
    ch.close();
    ch.close();
    BOOST_CHECK(ch.closed());
}

BOOST_AUTO_TEST_CASE(send_after_close_throws_channel_closed) {
    grove::Channel<int> ch(5);
    ch.close();
    BOOST_CHECK_THROW(ch.send(1), grove::ChannelClosed);
    int v = 2;
    BOOST_CHECK_THROW(ch.try_send(v), grove::ChannelClosed);
    BOOST_CHECK_THROW(ch.send(v, 10ms), grove::ChannelClosed);
    BOOST_CHECK_EQUAL(ch.size(), 0u);
}

BOOST_AUTO_TEST_CASE(sender_blocked_when_close_happens_throws_channel_closed) {
    grove::Channel<int> ch;
    auto sender = grove::spawn([&ch] { ch.send(1); });
    Reaper reaper;
    reaper.add(sender);
    grove::this_fiber::yield();
    ch.close();
    BOOST_CHECK_THROW(sender.join(5s), grove::ChannelClosed);
    BOOST_CHECK(!ch.recv(1s).has_value());  // its value was not delivered
}

BOOST_AUTO_TEST_CASE(sender_blocked_on_a_full_buffer_throws_channel_closed_on_close) {
    grove::Channel<int> ch(1);
    ch.send(1);
    auto sender = grove::spawn([&ch] { ch.send(2); });
    Reaper reaper;
    reaper.add(sender);
    grove::this_fiber::yield();
    ch.close();
    BOOST_CHECK_THROW(sender.join(5s), grove::ChannelClosed);
    BOOST_CHECK_EQUAL(ch.recv(1s).value_or(-1), 1);
    BOOST_CHECK(!ch.recv(1s).has_value());
}

BOOST_AUTO_TEST_CASE(receiver_blocked_when_close_happens_gets_empty) {
    grove::Channel<int> ch;
    auto receiver = grove::spawn([&ch] { return ch.recv(); });
    Reaper reaper;
    reaper.add(receiver);
    grove::this_fiber::yield();
    ch.close();
    BOOST_CHECK(!receiver.join(5s).has_value());
}

BOOST_AUTO_TEST_CASE(close_wakes_every_blocked_receiver_with_empty) {
    grove::Channel<int> ch;
    std::vector<grove::Fiber<std::optional<int>>> receivers;
    for (int i = 0; i < 3; ++i) {
        receivers.push_back(grove::spawn([&ch] { return ch.recv(); }));
    }
    Reaper reaper;
    reaper.add(receivers);
    grove::this_fiber::yield();
    ch.close();
    for (auto& r : receivers) {
        BOOST_CHECK(!r.join(5s).has_value());
    }
}

BOOST_AUTO_TEST_CASE(range_for_iterates_until_closed) {
    grove::Channel<int> ch(2);
    auto producer = grove::spawn([&ch] {
        for (int i = 0; i < 10; ++i) {
            ch.send(i);
            if (i % 3 == 0) {
                grove::this_fiber::yield();
            }
        }
        ch.close();
    });
    Reaper reaper;
    reaper.add(producer);
    std::vector<int> got;
    {
        grove::Timeout limit(5s);
        for (int v : ch) {
            got.push_back(v);
        }
    }
    producer.join(5s);
    const std::vector<int> expected{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(recv_with_timeout_returns_empty_and_the_channel_stays_open) {
    grove::Channel<int> ch(1);
    const auto t0 = Clock::now();
    BOOST_CHECK(!ch.recv(20ms).has_value());
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 20ms);
    BOOST_CHECK(took < 1s);
    BOOST_CHECK(!ch.closed());
    ch.send(4);
    BOOST_CHECK_EQUAL(ch.recv(1s).value_or(-1), 4);
}

BOOST_AUTO_TEST_CASE(recv_with_a_negative_timeout_polls) {
    grove::Channel<int> ch(1);
    const auto t0 = Clock::now();
    BOOST_CHECK(!ch.recv(-1s).has_value());
    ch.send(8);
    BOOST_CHECK_EQUAL(ch.recv(-1s).value_or(-1), 8);
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(send_with_timeout_returns_false_and_keeps_the_value) {
    grove::Channel<std::unique_ptr<int>> ch;
    auto v = std::make_unique<int>(5);
    const auto t0 = Clock::now();
    BOOST_CHECK(!ch.send(v, 20ms));
    BOOST_CHECK(Clock::now() - t0 >= 20ms);
    BOOST_REQUIRE(v != nullptr);
    BOOST_CHECK_EQUAL(*v, 5);
    BOOST_CHECK(!ch.try_recv().has_value());  // the timed-out value is not in the channel
}

BOOST_AUTO_TEST_CASE(send_with_timeout_succeeds_when_a_receiver_comes_in_time) {
    grove::Channel<int> ch;
    auto receiver = grove::spawn([&ch] {
        grove::this_fiber::sleep_for(5ms);
        return ch.recv();
    });
    Reaper reaper;
    reaper.add(receiver);
    int v = 11;
    BOOST_CHECK(ch.send(v, 5s));
    BOOST_CHECK_EQUAL(receiver.join(5s).value_or(-1), 11);
}

BOOST_AUTO_TEST_CASE(try_send_and_try_recv_never_block) {
    grove::Channel<int> ch(1);
    int a = 1;
    int b = 2;
    BOOST_CHECK(!ch.try_recv().has_value());
    BOOST_CHECK(ch.try_send(a));
    BOOST_CHECK(!ch.try_send(b));  // full
    BOOST_CHECK_EQUAL(b, 2);
    BOOST_CHECK_EQUAL(ch.try_recv().value_or(-1), 1);
    BOOST_CHECK(!ch.try_recv().has_value());
}

BOOST_AUTO_TEST_CASE(try_send_on_a_rendezvous_channel_needs_a_waiting_receiver) {
    grove::Channel<int> ch;
    int v = 5;
    BOOST_CHECK(!ch.try_send(v));
    auto receiver = grove::spawn([&ch] { return ch.recv(); });
    Reaper reaper;
    reaper.add(receiver);
    grove::this_fiber::yield();
    BOOST_CHECK(ch.try_send(v));
    BOOST_CHECK_EQUAL(receiver.join(5s).value_or(-1), 5);
}

BOOST_AUTO_TEST_CASE(try_recv_on_a_rendezvous_channel_takes_from_a_waiting_sender) {
    grove::Channel<int> ch;
    BOOST_CHECK(!ch.try_recv().has_value());
    auto sender = grove::spawn([&ch] { ch.send(6); });
    Reaper reaper;
    reaper.add(sender);
    grove::this_fiber::yield();
    BOOST_CHECK_EQUAL(ch.try_recv().value_or(-1), 6);
    sender.join(5s);
}

BOOST_AUTO_TEST_CASE(move_only_values_travel_buffered_and_by_rendezvous) {
    grove::Channel<std::unique_ptr<int>> buffered(2);
    buffered.send(std::make_unique<int>(1));
    auto got = buffered.recv(1s);
    BOOST_REQUIRE(got.has_value() && *got != nullptr);
    BOOST_CHECK_EQUAL(**got, 1);

    grove::Channel<std::unique_ptr<int>> rendezvous;
    auto sender = grove::spawn([&rendezvous] { rendezvous.send(std::make_unique<int>(2)); });
    Reaper reaper;
    reaper.add(sender);
    auto got2 = rendezvous.recv(5s);
    BOOST_REQUIRE(got2.has_value() && *got2 != nullptr);
    BOOST_CHECK_EQUAL(**got2, 2);
    sender.join(5s);
}

BOOST_AUTO_TEST_CASE(killed_sender_value_is_not_delivered) {
    grove::Channel<int> ch;
    auto victim = grove::spawn([&ch] { ch.send(1); });
    auto survivor = grove::spawn([&ch] { ch.send(2); });
    Reaper reaper;
    reaper.add(victim);
    reaper.add(survivor);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    BOOST_CHECK_EQUAL(ch.recv(5s).value_or(-1), 2);
    survivor.join(5s);
    BOOST_CHECK(!ch.try_recv().has_value());
}

BOOST_AUTO_TEST_CASE(killed_sender_on_a_full_buffer_is_not_delivered) {
    grove::Channel<int> ch(1);
    ch.send(1);
    auto victim = grove::spawn([&ch] { ch.send(2); });
    Reaper reaper;
    reaper.add(victim);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    BOOST_CHECK_EQUAL(ch.recv(1s).value_or(-1), 1);
    BOOST_CHECK(!ch.try_recv().has_value());
    BOOST_CHECK_EQUAL(ch.size(), 0u);
}

BOOST_AUTO_TEST_CASE(killed_receiver_does_not_take_a_value) {
    grove::Channel<int> ch;
    auto victim = grove::spawn([&ch] { return ch.recv(); });
    Reaper reaper;
    reaper.add(victim);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    int v = 9;
    BOOST_CHECK(!ch.try_send(v));  // no receiver waits any more
    auto receiver = grove::spawn([&ch] { return ch.recv(); });
    reaper.add(receiver);
    grove::this_fiber::yield();
    ch.send(9);
    BOOST_CHECK_EQUAL(receiver.join(5s).value_or(-1), 9);
}

BOOST_AUTO_TEST_CASE(recv_inside_a_timeout_scope_throws_timeout_error) {
    grove::Channel<int> ch;
    grove::Timeout t(20ms);
    try {
        ch.recv();
        BOOST_ERROR("recv was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
    BOOST_CHECK(!ch.closed());
}

BOOST_AUTO_TEST_CASE(send_inside_a_timeout_scope_throws_and_the_value_is_not_delivered) {
    grove::Channel<int> ch;
    {
        grove::Timeout t(20ms);
        try {
            ch.send(1);
            BOOST_ERROR("send was not interrupted");
        } catch (const grove::TimeoutError& e) {
            BOOST_CHECK(e.source() == &t);
        }
    }
    BOOST_CHECK(!ch.try_recv().has_value());
}

BOOST_AUTO_TEST_CASE(ping_pong_between_two_fibers) {
    grove::Channel<int> ping;
    grove::Channel<int> pong;
    auto player = grove::spawn([&] {
        for (;;) {
            auto v = ping.recv();
            if (!v) {
                return;
            }
            pong.send(*v + 1);
        }
    });
    Reaper reaper;
    reaper.add(player);
    int v = 0;
    for (int i = 0; i < 1000; ++i) {
        ping.send(v);
        v = pong.recv(5s).value_or(-1000000);
    }
    ping.close();
    player.join(5s);
    BOOST_CHECK_EQUAL(v, 1000);
}

BOOST_AUTO_TEST_SUITE_END()
