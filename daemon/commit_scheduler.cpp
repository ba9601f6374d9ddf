#include "daemon/commit_scheduler.hpp"

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>

#include "daemon/log.hpp"
#include "daemon/store.hpp"

namespace apikeyd {
namespace {

Error cannot_schedule(int r) {
    return make_error(ErrorCode::Internal,
                      std::string("Cannot schedule a commit: ") + std::strerror(-r));
}

}  // namespace

CommitScheduler::CommitScheduler(Store& store) : store_(store) {
    store_.on_batch_end([this](const Result<void>& outcome) { batch_ended(outcome); });
}

CommitScheduler::~CommitScheduler() {
    store_.on_batch_end(nullptr);
}

Result<void> CommitScheduler::attach(sd_event* event) {
    sd_event_source* raw = nullptr;
    int r = sd_event_add_defer(event, &raw, &CommitScheduler::on_commit_due, this);
    idle_.reset(raw);
    if (r >= 0) {
        // Below the bus: runs only once every call already received has
        // been handled, so that they all share the COMMIT.
        r = sd_event_source_set_priority(idle_.get(), SD_EVENT_PRIORITY_IDLE);
    }
    if (r >= 0) {
        r = sd_event_source_set_enabled(idle_.get(), SD_EVENT_OFF);
    }
    if (r >= 0) {
        // Accuracy 1 µs: sd-event's default (250 ms) would let a batch wait
        // that long.
        raw = nullptr;
        r = sd_event_add_time_relative(event, &raw, CLOCK_MONOTONIC, kMaxWaitUsec, 1,
                                       &CommitScheduler::on_deadline, this);
        deadline_.reset(raw);
    }
    if (r >= 0) {
        r = sd_event_source_set_enabled(deadline_.get(), SD_EVENT_OFF);
    }
    if (r < 0) {
        idle_.reset();
        deadline_.reset();
        return make_error(ErrorCode::Internal,
                          std::string("Cannot set up group commit: ") + std::strerror(-r));
    }
    return {};
}

Result<void> CommitScheduler::begin_change() {
    if (store_.in_batch() && changes_ >= kMaxBatch) {
        (void)commit_now();
    }
    if (!store_.in_batch()) {
        if (!deadline_) {
            return {};
        }
        if (auto ok = store_.begin_batch(); !ok) {
            return ok;
        }
        int r = sd_event_source_set_time_relative(deadline_.get(), kMaxWaitUsec);
        if (r >= 0) {
            r = sd_event_source_set_enabled(deadline_.get(), SD_EVENT_ONESHOT);
        }
        if (r < 0) {
            // No batch may stay open with nothing to commit it: close it,
            // and refuse this change rather than leave its caller waiting.
            (void)store_.commit_batch();
            return cannot_schedule(r);
        }
    }
    if (++changes_ >= expected_ && idle_) {
        if (const int r = sd_event_source_set_enabled(idle_.get(), SD_EVENT_ONESHOT); r < 0) {
            // The deadline still commits the batch, a little later.
            log::warning(cannot_schedule(r).message);
        }
    }
    return {};
}

void CommitScheduler::after_durable(Done done) {
    if (!store_.in_batch()) {
        done(Result<void>());
        return;
    }
    waiting_.push_back(std::move(done));
}

Result<void> CommitScheduler::open() {
    return store_.begin_batch();
}

Result<void> CommitScheduler::commit_now() {
    return store_.commit_batch();
}

bool CommitScheduler::in_batch() const {
    return store_.in_batch();
}

void CommitScheduler::batch_ended(const Result<void>& outcome) {
    if (idle_) {
        (void)sd_event_source_set_enabled(idle_.get(), SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(deadline_.get(), SD_EVENT_OFF);
    }
    if (!outcome) {
        log::error(
            "A batch of " + std::to_string(changes_) +
            " changes was not committed and none of them was made: " + outcome.error().message);
    }
    expected_ = std::max<size_t>(1, changes_);
    changes_ = 0;
    // Taken first: a waiter may make a change that opens the next batch.
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& done : waiting) {
        // One waiter that throws must not leave the others unanswered.
        try {
            done(outcome);
        } catch (const std::exception& e) {
            log::error(std::string("After a commit: ") + e.what());
        }
    }
}

// sd-event's C frames must never see an exception: a commit that throws is
// logged, and the deadline or the next change tries again.
int CommitScheduler::on_commit_due(sd_event_source*, void* userdata) {
    try {
        (void)static_cast<CommitScheduler*>(userdata)->commit_now();
    } catch (const std::exception& e) {
        log::error(std::string("Group commit failed: ") + e.what());
    }
    return 0;
}

int CommitScheduler::on_deadline(sd_event_source* source, uint64_t, void* userdata) {
    return on_commit_due(source, userdata);
}

}  // namespace apikeyd
