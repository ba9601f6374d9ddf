#pragma once
// Group commit: a change is answered only once the COMMIT that makes it
// durable has returned, and changes that arrive together share that COMMIT,
// so one sync of the WAL serves many calls instead of one each.
//
// When to commit: callers wait for their answer before they call again, so
// the callers of the last batch are expected back. A batch is committed as
// soon as it holds as many changes as the last one did and the event loop
// has nothing else to do (an idle-priority source: every call already
// received is in), or kMaxWaitUsec after it opened (a caller that went
// away, or a stream of other calls that never leaves the loop idle), or
// when a change would be its kMaxBatch + 1st. Committing whenever the loop
// is idle alone splits the callers into alternating small batches.
//
// Whoever else ends the batch (a usage flush, a keyslot change: the Store
// commits it before such a write) ends it for these changes too: the
// scheduler is the Store's one batch listener.

#include <systemd/sd-event.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "daemon/event_loop.hpp"
#include "daemon/result.hpp"

namespace apikeyd {

class Store;

class CommitScheduler {
  public:
    static constexpr size_t kMaxBatch = 64;
    static constexpr uint64_t kMaxWaitUsec = 2'000;
    using Done = std::function<void(const Result<void>& outcome)>;

    explicit CommitScheduler(Store& store);
    ~CommitScheduler();
    CommitScheduler(const CommitScheduler&) = delete;
    CommitScheduler& operator=(const CommitScheduler&) = delete;

    // Commits from this loop from now on. Without a loop (seeding, unit
    // tests) a change is its own transaction unless open() began a batch.
    Result<void> attach(sd_event* event);

    // Before a change is written: joins the open batch, or opens one when
    // a loop will commit it.
    Result<void> begin_change();
    // Runs `done` once the change just made is durable (or is not, if the
    // COMMIT fails); at once when no batch is open, the change being
    // durable already.
    void after_durable(Done done);

    // A batch that only commit_now() ends, for bulk writers.
    Result<void> open();
    // Commits the open batch now (a usage flush, shutdown); ok without one.
    Result<void> commit_now();
    bool in_batch() const;

  private:
    void batch_ended(const Result<void>& outcome);
    static int on_commit_due(sd_event_source* source, void* userdata);
    static int on_deadline(sd_event_source* source, uint64_t usec, void* userdata);

    Store& store_;
    std::vector<Done> waiting_;
    // Changes in the open batch, and in the last one: how many callers to
    // wait for.
    size_t changes_ = 0;
    size_t expected_ = 1;
    EventSourcePtr idle_;
    EventSourcePtr deadline_;
};

}  // namespace apikeyd
