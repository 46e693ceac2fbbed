/*
 * virtio-blk-poll: what the device's files share
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * virtio-blk-poll.c         QOM: properties, realize, the stats property
 * virtio-blk-poll-queue.c   the per-queue mechanism: passes, polling and
 *                           sleeping, publishing and signalling, the
 *                           ioeventfd lifecycle (attach, detach, stop)
 * virtio-blk-poll-fast.c    the raw fast path through the queue's io_uring
 * virtio-blk-poll-uring.c   the io_uring engine of the fast path
 * virtio-blk-poll-policy.c  the adaptive policies, pure functions
 */

#ifndef HW_BLOCK_VIRTIO_BLK_POLL_INTERNAL_H
#define HW_BLOCK_VIRTIO_BLK_POLL_INTERNAL_H

#include "hw/virtio/virtio-blk-poll.h"
#include "hw/virtio/virtio-blk-poll-uring.h"
#include "qemu/timer.h"
#include "system/iothread.h"
#include "virtio-blk-poll-policy.h"

/* Why the completions published so far were signalled */
typedef enum VBPSignalReason {
    VBP_SIGNAL_FORCED,          /* not polling, stopping, coalesce=off */
    VBP_SIGNAL_LONE,            /* the guest is not submitting in parallel */
    VBP_SIGNAL_COUNT,           /* coalesce-max completions held */
    VBP_SIGNAL_DEPTH,           /* the guest has all it ever has in flight */
    VBP_SIGNAL_IDLE,            /* no new request for the adaptive window */
    VBP_SIGNAL_TIME,            /* the oldest held reached coalesce-max-ns */
    VBP_SIGNAL__MAX,
} VBPSignalReason;

extern const char *const vbp_signal_reason_names[VBP_SIGNAL__MAX];

/*
 * Per-virtqueue counters, each named once here: its field and its name
 * in the "stats" property.  Written only by the queue's IOThread, read
 * by the main loop with relaxed atomics (64-bit hosts only, see Kconfig).
 */
#define VBP_QUEUE_STATS(X) \
    X(requests, "requests")             /* taken from the avail ring */ \
    X(passes, "passes")                 /* passes over the avail ring */ \
    X(busy_passes, "busy-passes")       /* passes that found a request */ \
    X(max_batch, "max-batch")           /* most requests in one pass */ \
    X(kicks, "kicks")                   /* guest notifications taken */ \
    X(completions, "completions")       /* published to the used ring */ \
    X(used_updates, "used-updates")     /* used index updates */ \
    X(notifies, "notifies")             /* interrupts sent to the guest */ \
    X(notifies_suppressed, "notifies-suppressed") /* none needed */ \
    X(wakeups, "wakeups")               /* sleep -> polling */ \
    X(poll_ns, "poll-ns")               /* in finished polling phases */ \
    X(sleep_ns, "sleep-ns")             /* in finished sleeping phases */ \
    X(fast_rw, "fast-rw")               /* reads, writes: io_uring path */ \
    X(fast_fua, "fast-fua")             /* of those, write-through */ \
    X(fast_flushes, "fast-flushes")     /* flushes: io_uring path */ \
    X(fallback_rw, "fallback-rw")       /* reads, writes: block layer */ \
    X(fallback_flushes, "fallback-flushes") /* flushes: block layer */ \
    X(fast_dwz, "fast-dwz")             /* discard, write zeroes: io_uring */ \
    X(fallback_dwz, "fallback-dwz")     /* discard, write zeroes: block */ \
    X(uring_held, "uring-held")         /* passes that held SQEs */ \
    X(timed_sleeps, "timed-sleeps")     /* poll-hybrid: timer sleeps */ \
    X(timed_wakeups, "timed-wakeups")   /* poll-hybrid: timer wakeups */ \
    X(timed_hits, "timed-hits")         /* poll-hybrid: requests caught */ \
    X(timed_skips, "timed-skips")       /* poll-hybrid: slept to the kick */ \
    X(held, "held")                     /* passes that held completions */ \
    X(dozes, "dozes")                   /* guest polls: timer looks */ \
    X(max_coalesced, "max-coalesced")   /* most completions per signal */

typedef struct VirtIOBlockPollStats {
#define VBP_STAT_FIELD(field, name) uint64_t field;
    VBP_QUEUE_STATS(VBP_STAT_FIELD)
#undef VBP_STAT_FIELD
    uint64_t signal_reason[VBP_SIGNAL__MAX]; /* signals, by reason */
} VirtIOBlockPollStats;

#define STAT_ADD(q, field, n) \
    qatomic_set(&(q)->stats.field, qatomic_read(&(q)->stats.field) + (n))

/*
 * The phase of a queue that is served (attached).  Whether it is served at
 * all (stopped, drained) is the lifecycle's: attached and active below.
 */
typedef enum VBPQueueState {
    VBP_QUEUE_SLEEPING,         /* notifications on, waiting for a kick */
    VBP_QUEUE_TIMED_SLEEP,      /* poll-hybrid: asleep until its timer */
    VBP_QUEUE_POLLING,          /* notifications off, passes rescheduled */
    VBP_QUEUE_DOZING,           /* guest polls: no notifications, timer */
} VBPQueueState;

/*
 * One per virtqueue.  Unless noted, fields belong to the thread of @ctx.
 */
struct VirtIOBlockPollQueue {
    VirtIOBlockPoll *dev;       /* constant */
    VirtQueue *vq;              /* constant */
    AioContext *ctx;            /* constant while ioeventfd runs */
    IOThread *iothread;         /* constant; NULL if unknown */
    unsigned index;             /* constant */
    QEMUBH *poll_bh;            /* one pass; constant */
    VBPUring *uring;            /* raw fast path; NULL without io_uring */

    /*
     * Handlers installed, ring may be served.  Set with the BQL by
     * attach/detach, read by the IOThread.
     */
    bool attached;
    /*
     * Completions are batched by push_request.  Set true with the BQL
     * before the handlers are installed, false in @ctx by stop.
     */
    bool active;
    /*
     * Bumped with the BQL by each attach; the first pass after it (in
     * @ctx: a pass scheduled before the drain may still be running
     * while attach runs) resynchronises the fields below that assume
     * nothing in flight, see vbp_resync().
     */
    unsigned attach_gen;
    unsigned seen_gen;          /* attach_gen the passes resynced to */

    /* What the queue does, changed by vbp_set_state() only */
    VBPQueueState state;
    bool in_pass;               /* inside vbp_pass() */
    bool in_bh;                 /* inside vbp_poll_bh() */
    bool again;                 /* vbp_poll_bh(): run another pass */
    int64_t last_pass_ns;       /* when the last pass looked at the clock */
    int64_t sq_hold_start_ns;   /* oldest SQE held unsubmitted, 0: none */
    bool progress;              /* a completion since the last pass */
    unsigned pending_used;      /* filled but not yet flushed used elements */
    bool notify_pending;        /* used index moved since the last notify */

    /*
     * Completion coalescing (vbp_signal_decide).  unsignalled counts
     * completions published since the last signal, the oldest at
     * hold_start_ns; taken and published count requests taken from the
     * avail ring and completions published, so that the guest's
     * outstanding requests are taken - published + unsignalled.
     */
    unsigned unsignalled;
    int64_t hold_start_ns;
    uint64_t taken;
    uint64_t published;
    /* The guest's pace, learnt by the policies (virtio-blk-poll-policy.h) */
    VBPPace pace;

    /* Adaptive poll window (vbp_adapt_window), -1 until set */
    int64_t window_ns;
    int64_t last_work_ns;       /* last request or completion seen */
    int64_t poll_start_ns;      /* start of the current polling phase */
    int64_t sleep_start_ns;     /* start of the current sleep, 0: none */

    /* poll-hybrid (vbp_hybrid_sleep()) */
    QEMUTimer *hybrid_timer;    /* in @ctx; created by attach */
    AioContext *hybrid_ctx;     /* the context of hybrid_timer */
    int64_t timed_end_ns;       /* end of the timed polling phase to come */
    int64_t hybrid_end_ns;      /* end of this timed polling phase, 0: none */
    bool woke_early;            /* a kick ended a poll-hybrid sleep */
    bool woke_by_kick;          /* a kick ended the last sleep */
    /* Signals in a row that the guest did not want (vbp_doze_plan()) */
    unsigned suppressed;
    /*
     * The queue has no interrupt at all (vbp_queue_has_no_irq()): set by
     * attach with the BQL, read by the queue's thread
     */
    bool no_irq;

    VirtIOBlockPollStats stats;
};

/* Polling now; any thread (the stats read it) */
static inline bool vbp_polling(VirtIOBlockPollQueue *q)
{
    return qatomic_read(&q->state) == VBP_QUEUE_POLLING;
}

/* virtio-blk-poll-signal.c */
void vbp_publish(VirtIOBlockPollQueue *q, int64_t now);
unsigned vbp_outstanding(VirtIOBlockPollQueue *q);
void vbp_flush(VirtIOBlockPollQueue *q, int64_t now, bool polling);

/* virtio-blk-poll-queue.c */
void vbp_poll_bh(void *opaque);
int64_t vbp_poll_window(VirtIOBlockPollQueue *q);
const char *vbp_queue_state(VirtIOBlockPollQueue *q);
void vbp_attach_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx);
void vbp_detach_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx);
void vbp_stop_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx);
void vbp_push_request(VirtIOBlockReq *req);

/* virtio-blk-poll-fast.c */
extern const VBPUringOps vbp_uring_ops;
void vbp_fast_path_update(VirtIOBlockPoll *d);
const char *vbp_fast_reason_name(VirtIOBlockPoll *d, VBPFastReason reason);
bool vbp_submit_rw(VirtIOBlockReq *req, bool is_write, int64_t offset,
                   QEMUIOVector *qiov, BlockCompletionFunc *cb);
bool vbp_submit_flush(VirtIOBlockReq *req, BlockCompletionFunc *cb);
bool vbp_submit_dwz(VirtIOBlockReq *req, bool write_zeroes, int64_t offset,
                    int64_t bytes, int flags, BlockCompletionFunc *cb);

#endif
