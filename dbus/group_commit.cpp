#include "dbus/group_commit.hpp"

#include <algorithm>
#include <cstring>

#include "daemon/log.hpp"
#include "dbus/bus_errors.hpp"
#include "dbus/manager_object.hpp"

namespace apikeyd::bus {

Result<std::unique_ptr<GroupCommit>> GroupCommit::create(sd_bus* bus, KeyService& service) {
    std::unique_ptr<GroupCommit> commits(new GroupCommit(bus, service));
    sd_event* event = sd_bus_get_event(bus);
    if (!event) {
        return make_error(ErrorCode::Internal, "The bus is not attached to an event loop");
    }
    sd_event_source* raw = nullptr;
    int r = sd_event_add_defer(event, &raw, &GroupCommit::on_idle, commits.get());
    commits->idle_.reset(raw);
    if (r >= 0) {
        // Below the bus: runs only once every call already received has
        // been handled, so that they all share the COMMIT.
        r = sd_event_source_set_priority(raw, SD_EVENT_PRIORITY_IDLE);
    }
    if (r >= 0) {
        r = sd_event_source_set_enabled(raw, SD_EVENT_OFF);
    }
    if (r >= 0) {
        // Accuracy 1 µs: sd-event's default (250 ms) would let a batch wait
        // that long.
        r = sd_event_add_time_relative(event, &raw, CLOCK_MONOTONIC, kMaxWaitUsec, 1,
                                       &GroupCommit::on_deadline, commits.get());
        commits->deadline_.reset(raw);
    }
    if (r >= 0) {
        r = sd_event_source_set_enabled(raw, SD_EVENT_OFF);
    }
    if (r < 0) {
        return make_error(ErrorCode::Internal,
                          std::string("Cannot set up group commit: ") + std::strerror(-r));
    }
    return commits;
}

GroupCommit::~GroupCommit() {
    service_.on_batch_end(nullptr);
}

Result<void> GroupCommit::begin() {
    if (service_.in_batch()) {
        return {};
    }
    // Listening from the batch's start rather than from construction binds
    // the listener to the service that runs this batch, even one replaced
    // under this object (the fuzz harness makes a fresh KeyService for each
    // input in the same place).
    service_.on_batch_end([this](const Result<void>& outcome) { batch_ended(outcome); });
    if (auto ok = service_.begin_batch(); !ok) {
        return ok;
    }
    int r = sd_event_source_set_time_relative(deadline_.get(), kMaxWaitUsec);
    if (r >= 0) {
        r = sd_event_source_set_enabled(deadline_.get(), SD_EVENT_ONESHOT);
    }
    if (r < 0) {
        // No batch may stay open with nothing to commit it: close it, and
        // refuse this change rather than leave its caller waiting.
        (void)service_.commit_batch();
        return make_error(ErrorCode::Internal,
                          std::string("Cannot schedule a commit: ") + std::strerror(-r));
    }
    return {};
}

void GroupCommit::answer_after_commit(sd_bus_message* call, sdbus::MessagePtr reply,
                                      const char* signal, std::string id) {
    waiting_.push_back(
        {sdbus::MessagePtr(sd_bus_message_ref(call)), std::move(reply), signal, std::move(id)});
    if (waiting_.size() >= kMaxBatch) {
        (void)service_.commit_batch();
    } else if (waiting_.size() >= expected_) {
        if (const int r = sd_event_source_set_enabled(idle_.get(), SD_EVENT_ONESHOT); r < 0) {
            // The deadline still commits the batch, a little later.
            log::warning(std::string("Cannot schedule a commit: ") + std::strerror(-r));
        }
    }
}

void GroupCommit::batch_ended(const Result<void>& outcome) {
    (void)sd_event_source_set_enabled(idle_.get(), SD_EVENT_OFF);
    (void)sd_event_source_set_enabled(deadline_.get(), SD_EVENT_OFF);
    expected_ = std::max<size_t>(1, waiting_.size());
    for (auto& w : waiting_) {
        int r = 0;
        if (outcome) {
            r = sd_bus_emit_signal(bus_, kObjectPath, kInterface, w.signal, "s", w.id.c_str());
            if (r < 0) {
                log::warning(std::string("Cannot emit ") + w.signal + " for " + w.id + ": " +
                             std::strerror(-r));
            }
            r = sd_bus_send(bus_, w.reply.get(), nullptr);
        } else {
            sdbus::Error error;
            reply_error(error.get(), outcome.error(), sd_bus_message_get_member(w.call.get()));
            r = sd_bus_reply_method_error(w.call.get(), error.get());
        }
        if (r < 0) {
            log::warning(std::string("Cannot answer ") + sd_bus_message_get_member(w.call.get()) +
                         ": " + std::strerror(-r));
        }
    }
    waiting_.clear();
}

int GroupCommit::on_idle(sd_event_source*, void* userdata) {
    (void)static_cast<GroupCommit*>(userdata)->service_.commit_batch();
    return 0;
}

int GroupCommit::on_deadline(sd_event_source*, uint64_t, void* userdata) {
    (void)static_cast<GroupCommit*>(userdata)->service_.commit_batch();
    return 0;
}

}  // namespace apikeyd::bus
