// The hub's thread-local images (Hub::TlsImages, what the shim's green
// threads use): a fiber with an image sees its own values of the copied
// variables across switches, fibers without one and main share the
// thread's own, the hub's switches copy only when the image changes, and
// forget_tls of a finishing fiber's image brings the thread's own back
// without saving the dying one.
#define BOOST_TEST_MODULE tls_images
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <vector>

#include <grove/fiber.hpp>

#include "hub/hub.hpp"

namespace grove::detail {
// The test's way in: a running fiber takes an image (the shim gives one
// before the fiber first runs; here the fiber adopts it at its start).
struct HubAccess {
    static void adopt(void* image) {
        Hub& hub = Hub::current();
        hub.load_tls(image);
        hub.running()->tls = image;
    }
    static void* loaded() { return Hub::current().tls_loaded_; }
};
}  // namespace grove::detail

namespace {

using grove::detail::Hub;
using grove::detail::HubAccess;

thread_local int tl_value = 0;  // the "program's" thread-local variable
int saves = 0;
int loads = 0;

void save_value(void* image) noexcept {
    ++saves;
    std::memcpy(image, &tl_value, sizeof tl_value);
}
void load_value(const void* image) noexcept {
    ++loads;
    std::memcpy(&tl_value, image, sizeof tl_value);
}
const Hub::TlsImages images{save_value, load_value, sizeof(int)};

BOOST_AUTO_TEST_CASE(each_fiber_with_an_image_keeps_its_own_values) {
    Hub::current().set_tls_images(&images);
    tl_value = 7;  // main's
    int images_of[3] = {100, 101, 102};
    std::vector<int> seen_at_start(3, -1);
    std::vector<int> seen_after(3, -1);
    int plain_saw = -1;
    std::vector<grove::Fiber<void>> fibers;
    for (int i = 0; i < 3; ++i) {
        fibers.push_back(grove::spawn([&, i] {
            HubAccess::adopt(&images_of[i]);
            seen_at_start[i] = tl_value;
            tl_value = 200 + i;
            for (int k = 0; k < 5; ++k) {
                grove::this_fiber::yield();
                BOOST_TEST(tl_value == 200 + i);
            }
            seen_after[i] = tl_value;
            Hub::current().forget_tls(&images_of[i]);
            // The thread's own again: the dying fiber's values are gone.
            BOOST_TEST(HubAccess::loaded() == nullptr);
            BOOST_TEST(tl_value == 7);
        }));
    }
    // A fiber without an image shares main's values.
    fibers.push_back(grove::spawn([&] {
        grove::this_fiber::yield();
        plain_saw = tl_value;
        grove::this_fiber::yield();
    }));
    grove::this_fiber::yield();
    BOOST_TEST(tl_value == 7);
    for (auto& f : fibers) {
        f.join();
    }
    BOOST_TEST(tl_value == 7);
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(seen_at_start[i] == 100 + i);
        BOOST_TEST(seen_after[i] == 200 + i);
    }
    BOOST_TEST(plain_saw == 7);
    BOOST_TEST(HubAccess::loaded() == nullptr);
}

BOOST_AUTO_TEST_CASE(switches_between_fibers_of_one_image_copy_nothing) {
    Hub::current().set_tls_images(&images);
    tl_value = 1;
    int image = 50;
    int copies_while_alone = -1;
    auto f = grove::spawn([&] {
        HubAccess::adopt(&image);
        const int before = saves + loads;
        // Switches through the hub and back to this fiber alone: the image
        // stays loaded.
        for (int k = 0; k < 10; ++k) {
            grove::this_fiber::yield();
        }
        copies_while_alone = saves + loads - before;
        BOOST_TEST(tl_value == 50);
        Hub::current().forget_tls(&image);
    });
    f.join();
    BOOST_TEST(copies_while_alone == 0);
    BOOST_TEST(tl_value == 1);
}

}  // namespace
