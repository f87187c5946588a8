// Min-heap of waiters by deadline. Each waiter keeps its own index
// (Waiter::timer_index), so cancel is O(log n) with no search.
#pragma once

#include <grove/detail/wait.hpp>

#include <algorithm>
#include <vector>

namespace grove::detail {

class TimerHeap {
public:
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    Waiter* top() const noexcept { return heap_.front(); }
    Nanos next_deadline() const noexcept { return heap_.empty() ? kNoDeadline : heap_.front()->deadline; }

    // Each fiber has at most one timer armed (its wait's deadline, or its
    // delayed start), so the hub reserves room for one per fiber as it
    // spawns them (reserve) and push never allocates: it runs in park, in
    // whatever the parking fiber was doing (inside malloc, say).
    void reserve(std::size_t n) {
        if (heap_.capacity() < n) {
            heap_.reserve(std::max(n, 2 * heap_.capacity()));
        }
    }
    void push(Waiter& w) noexcept {
        w.timer_index = heap_.size();
        heap_.push_back(&w);
        sift_up(w.timer_index);
    }

    void remove(Waiter& w) noexcept {
        const std::size_t i = w.timer_index;
        const std::size_t last = heap_.size() - 1;
        w.timer_index = Waiter::kNoTimer;
        if (i != last) {
            heap_[i] = heap_[last];
            heap_[i]->timer_index = i;
            heap_.pop_back();
            if (!sift_up(i)) {
                sift_down(i);
            }
        } else {
            heap_.pop_back();
        }
    }

    void abandon() noexcept { heap_.clear(); }

private:
    bool less(std::size_t a, std::size_t b) const noexcept { return heap_[a]->deadline < heap_[b]->deadline; }
    void swap(std::size_t a, std::size_t b) noexcept {
        std::swap(heap_[a], heap_[b]);
        heap_[a]->timer_index = a;
        heap_[b]->timer_index = b;
    }
    bool sift_up(std::size_t i) noexcept {
        bool moved = false;
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!less(i, parent)) {
                break;
            }
            swap(i, parent);
            i = parent;
            moved = true;
        }
        return moved;
    }
    void sift_down(std::size_t i) noexcept {
        const std::size_t n = heap_.size();
        for (;;) {
            std::size_t best = i;
            const std::size_t l = 2 * i + 1;
            const std::size_t r = l + 1;
            if (l < n && less(l, best)) {
                best = l;
            }
            if (r < n && less(r, best)) {
                best = r;
            }
            if (best == i) {
                return;
            }
            swap(i, best);
            i = best;
        }
    }

    std::vector<Waiter*> heap_;
};

}  // namespace grove::detail
