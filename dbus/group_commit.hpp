#pragma once
// Group commit on the bus: a call that changes a key is answered only after
// the COMMIT that made its change durable, and the changes that arrive
// together share that COMMIT, so one sync of the WAL serves many calls
// instead of one each.
//
// When to commit: callers wait for their reply before they call again, so
// the callers of the last batch are expected back. A batch is committed as
// soon as it holds as many changes as the last one did and the loop has
// nothing else to do (an idle-priority event source: every call already
// received is in), or kMaxWaitUsec after it opened (a caller that went
// away, or a stream of other calls that never leaves the loop idle), or at
// once with kMaxBatch changes. Committing whenever the loop is idle alone
// splits the callers into alternating small batches: the replies of one
// batch come back one by one, and the first would be committed alone.
//
// Whoever else ends the batch (a usage flush, a keyslot change) ends it
// for these calls too: they hear of it through KeyService::on_batch_end,
// set when the batch begins.

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/key_service.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::bus {

class GroupCommit {
  public:
    static constexpr size_t kMaxBatch = 64;
    static constexpr uint64_t kMaxWaitUsec = 2'000;

    static Result<std::unique_ptr<GroupCommit>> create(sd_bus* bus, KeyService& service);
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    // Before a change: opens the batch it is to join.
    Result<void> begin();
    // After a change that worked: once the batch commits, emits `signal`
    // with `id` and sends `reply`; if the commit fails, `call` gets an
    // Internal error instead.
    void answer_after_commit(sd_bus_message* call, sdbus::MessagePtr reply, const char* signal,
                             std::string id);

  private:
    using EventSourcePtr = std::unique_ptr<sd_event_source, sdbus::Unreffer<sd_event_source_unref>>;
    struct Waiting {
        sdbus::MessagePtr call;
        sdbus::MessagePtr reply;
        const char* signal;
        std::string id;
    };

    GroupCommit(sd_bus* bus, KeyService& service) : bus_(bus), service_(service) {}
    void batch_ended(const Result<void>& outcome);
    static int on_idle(sd_event_source* source, void* userdata);
    static int on_deadline(sd_event_source* source, uint64_t usec, void* userdata);

    sd_bus* bus_;
    KeyService& service_;
    std::vector<Waiting> waiting_;
    // Changes in the last batch: how many callers to wait for.
    size_t expected_ = 1;
    EventSourcePtr idle_;
    EventSourcePtr deadline_;
};

}  // namespace apikeyd::bus
