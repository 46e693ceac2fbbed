/*
 * virtio-blk-poll: virtio-blk with virtqueues served by polling IOThreads
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * To the guest this is an ordinary virtio-blk device.  On the host each
 * virtqueue belongs to one IOThread (iothread, iothread-vq-mapping, or an
 * IOThread the device creates when none is named).  When the guest kicks,
 * the queue enters its polling phase: guest notifications are disabled
 * and a bottom half in the IOThread's AioContext runs one pass after the
 * other.  A pass takes up to batch-max requests from the avail ring,
 * starts them through virtio-blk's request code, publishes everything
 * that completed with one used index update and signals the guest at most
 * once.  After poll-idle-ns without a new request or completion the queue
 * re-enables notifications, looks at the ring once more to close the race
 * with the guest, and sleeps until the next kick.
 *
 * Because the poller is a bottom half of the IOThread's event loop, timers,
 * other handlers, drain and block layer completions keep running in that
 * thread between passes, and query-iothreads names the thread that polls.
 * The bottom half runs passes back to back for up to a slice (see
 * vbp_poll_bh()) so that the event loop's fd check, a system call, comes
 * once per slice rather than once per pass.
 */

#include "qemu/osdep.h"
#include <linux/falloc.h>
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/cutils.h"
#include "qemu/defer-call.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "hw/qdev-properties.h"
#include "block/block_int-common.h"
#include "block/block_int-io.h"
#include "block/graph-lock.h"
#include "block/raw-aio.h"
#include "hw/virtio/virtio-blk-poll.h"
#include "hw/virtio/virtio-blk-poll-uring.h"
#include "qemu/error-report.h"
#include "qobject/qdict.h"
#include "system/block-backend.h"
#include "system/iothread.h"
#include "trace.h"

/* Why the completions published so far were signalled */
typedef enum VBPSignalReason {
    VBP_SIGNAL_FORCED,          /* not polling, stopping, coalesce=off */
    VBP_SIGNAL_LONE,            /* the guest is not submitting in parallel */
    VBP_SIGNAL_COUNT,           /* coalesce-max completions held */
    VBP_SIGNAL_DEPTH,           /* the guest has all it ever has in flight */
    VBP_SIGNAL_IDLE,            /* no new request for the adaptive window */
    VBP_SIGNAL_TIME,            /* the oldest held one reached coalesce-max-ns */
    VBP_SIGNAL__MAX,
} VBPSignalReason;

/*
 * Per-virtqueue counters.  Written only by the queue's IOThread, read by
 * the main loop (the "stats" property) with relaxed atomics.
 */
typedef struct VirtIOBlockPollStats {
    uint64_t requests;          /* requests taken from the avail ring */
    uint64_t passes;            /* passes over the avail ring */
    uint64_t busy_passes;       /* passes that found at least one request */
    uint64_t max_batch;         /* most requests taken in one pass */
    uint64_t kicks;             /* guest notifications (ioeventfd) taken */
    uint64_t completions;       /* requests published to the used ring */
    uint64_t used_updates;      /* used index updates (batches published) */
    uint64_t notifies;          /* interrupts sent to the guest */
    uint64_t notifies_suppressed; /* batches the guest needed no interrupt for */
    uint64_t wakeups;           /* sleep -> polling transitions */
    uint64_t poll_ns;           /* time spent in finished polling phases */
    uint64_t sleep_ns;          /* time spent in finished sleeping phases */
    uint64_t fast_rw;           /* reads and writes on the io_uring path */
    uint64_t fast_fua;          /* of those, write-through writes (DSYNC) */
    uint64_t fast_flushes;      /* flushes on the io_uring path */
    uint64_t fallback_rw;       /* reads and writes through the block layer */
    uint64_t fallback_flushes;  /* flushes through the block layer */
    uint64_t fast_dwz;          /* discards, write zeroes: io_uring path */
    uint64_t fallback_dwz;      /* discards, write zeroes: block layer */
    /* Completion coalescing */
    uint64_t held;              /* passes that held completions unsignalled */
    uint64_t max_coalesced;     /* most completions covered by one signal */
    uint64_t signal_reason[VBP_SIGNAL__MAX]; /* signals, by reason */
    uint64_t uring_held;        /* passes that held SQEs unsubmitted */
    uint64_t timed_sleeps;      /* poll-hybrid: sleeps until a request is due */
    uint64_t timed_wakeups;     /* poll-hybrid: polling started by the timer */
    uint64_t timed_hits;        /* poll-hybrid: requests those caught */
} VirtIOBlockPollStats;

static const char *const vbp_signal_reason_names[] = {
    [VBP_SIGNAL_FORCED] = "signal-forced",
    [VBP_SIGNAL_LONE] = "signal-lone",
    [VBP_SIGNAL_COUNT] = "signal-count",
    [VBP_SIGNAL_DEPTH] = "signal-depth",
    [VBP_SIGNAL_IDLE] = "signal-idle",
    [VBP_SIGNAL_TIME] = "signal-time",
};

/* Parallelism score: fixed point, 0 (lone requests) to 256 (always) */
#define VBP_PAR_ONE         256
#define VBP_PAR_HOLD        (VBP_PAR_ONE / 2)
/* Signals per epoch of the queue depth estimate */
#define VBP_DEPTH_EPOCH     64
/* Idle window before the first inter-arrival gap is known */
#define VBP_DEFAULT_GAP_NS  (25 * SCALE_US)
/* poll-hybrid: longer gaps are the guest pausing, not its pace */
#define VBP_HYBRID_MAX_GAP_NS   (10 * SCALE_MS)
/* poll-hybrid: polls at most this long before and after the expected time */
#define VBP_HYBRID_MAX_MARGIN_NS (50 * SCALE_US)
/*
 * poll-hybrid: shorter sleeps are not worth a timer and a wakeup (a guest
 * that polls its own completions comes back sooner than this)
 */
#define VBP_HYBRID_MIN_SLEEP_NS (50 * SCALE_US)

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

    bool polling;               /* notifications off, poll_bh rescheduled */
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
    int64_t last_arrival_ns;    /* last pass that took a request */
    int64_t gap_ns;             /* average gap between guest requests */
    unsigned par;               /* parallelism score, VBP_PAR_ONE is 1 */
    unsigned depth;             /* most outstanding in the last epoch */
    unsigned depth_epoch_max;   /* most outstanding in this epoch */
    unsigned depth_epoch_signals;

    /* Adaptive poll window (vbp_adapt_window), -1 until set */
    int64_t window_ns;
    int64_t last_work_ns;       /* last request or completion seen */
    int64_t poll_start_ns;      /* start of the current polling phase */
    int64_t sleep_start_ns;     /* start of the current sleep, 0: none */

    /* poll-hybrid (vbp_hybrid_sleep()) */
    QEMUTimer *hybrid_timer;    /* in @ctx; created by attach */
    AioContext *hybrid_ctx;     /* the context of hybrid_timer */
    int64_t idle_since_ns;      /* nothing in the device since, 0: busy */
    int64_t lone_gap_ns;        /* average empty -> next request, 0: unknown */
    int64_t timed_end_ns;       /* end of the timed polling phase to come */
    int64_t hybrid_end_ns;      /* end of this timed polling phase, 0: none */
    bool hybrid_sleep;          /* this sleep was chosen, not idle */
    bool woke_early;            /* a kick ended a poll-hybrid sleep */
    bool woke_by_kick;          /* a kick ended the last sleep */

    VirtIOBlockPollStats stats;
};

#define STAT_ADD(q, field, n) \
    qatomic_set(&(q)->stats.field, qatomic_read(&(q)->stats.field) + (n))

static bool vbp_fdmon_polls_fds(AioContext *ctx)
{
    /*
     * While the poller runs, the event loop never blocks.  File descriptor
     * monitors that can see ready fds from userspace (io_uring) still
     * notice them; the others only do so if polling is disabled for the
     * context, which a handler without io_poll ensures.
     */
    return ctx->fdmon_ops->need_wait != aio_poll_disabled;
}

/* Publish filled used elements with one used index update */
static void vbp_publish(VirtIOBlockPollQueue *q, int64_t now)
{
    if (!q->pending_used) {
        return;
    }
    trace_virtio_blk_poll_flush(q->dev, q->index, q->pending_used);
    WITH_RCU_READ_LOCK_GUARD() {
        /* The ring's memory region caches may be replaced at any time */
        virtqueue_flush(q->vq, q->pending_used);
    }
    if (!q->unsignalled) {
        q->hold_start_ns = now;
    }
    q->unsignalled += q->pending_used;
    q->published += q->pending_used;
    q->pending_used = 0;
    q->notify_pending = true;
    STAT_ADD(q, used_updates, 1);
}

/*
 * Requests the guest has outstanding: in the device, or completed and
 * published but not signalled.  Requests completed outside the poller
 * (while it was stopped) are not counted as published; attach and each
 * signal resynchronise, and the clamp keeps an error on the safe side
 * (less coalescing).
 */
static unsigned vbp_outstanding(VirtIOBlockPollQueue *q)
{
    return MAX((int64_t)(q->taken - q->published), 0) + q->unsignalled;
}

/* Signal the guest (virtio_notify() honours used_event/NO_INTERRUPT) */
static void vbp_signal(VirtIOBlockPollQueue *q, VBPSignalReason reason)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(q->dev);
    unsigned outstanding = vbp_outstanding(q);

    if (!q->notify_pending) {
        return;
    }
    trace_virtio_blk_poll_signal(q->dev, q->index, q->unsignalled,
                                 vbp_signal_reason_names[reason]);
    if (q->unsignalled > q->stats.max_coalesced) {
        qatomic_set(&q->stats.max_coalesced, q->unsignalled);
    }
    STAT_ADD(q, signal_reason[reason], 1);
    /* The guest's queue depth: the most it had outstanding lately */
    q->depth_epoch_max = MAX(q->depth_epoch_max, outstanding);
    if (++q->depth_epoch_signals == VBP_DEPTH_EPOCH) {
        q->depth = q->depth_epoch_max;
        q->depth_epoch_max = 0;
        q->depth_epoch_signals = 0;
    }
    q->notify_pending = false;
    q->unsignalled = 0;
    if ((int64_t)(q->taken - q->published) < 0) {
        q->published = q->taken;
    }
    if (virtio_notify(vdev, q->vq)) {
        STAT_ADD(q, notifies, 1);
    } else {
        STAT_ADD(q, notifies_suppressed, 1);
    }
}

/*
 * Whether to signal the completions published so far now, and why; -1 to
 * hold them.  Interrupts are the guest's most expensive exit, so while
 * the guest keeps submitting, completions are held and signalled
 * together, as NIC interrupt moderation and NVMe interrupt aggregation
 * do, within hard bounds:
 *
 * - only while the queue polls: a queue that stops polling (idle,
 *   detached, stopped) signals everything first, and the polling passes
 *   check the bounds below, so nothing waits for a later request;
 * - a lone request is never held: holding pays only when the guest
 *   submits while it has other requests outstanding, which the
 *   parallelism score measures at each arrival (a QD1 guest never does,
 *   since it waits for each completion);
 * - at most coalesce-max completions, and none longer than
 *   coalesce-max-ns;
 * - when the guest has as many requests outstanding as it had at most
 *   in the last epoch, it is waiting for completions: signal;
 * - when no new request came for about twice the average gap between
 *   the guest's requests (or coalesce-idle-ns), it has stopped
 *   submitting: signal.
 */
static int vbp_signal_decide(VirtIOBlockPollQueue *q, int64_t now,
                             bool polling)
{
    VirtIOBlockPoll *d = q->dev;
    unsigned outstanding = vbp_outstanding(q);
    int64_t window;

    if (!polling || !d->coalesce || d->coalesce_max <= 1) {
        return VBP_SIGNAL_FORCED;
    }
    if (q->par < VBP_PAR_HOLD) {
        return VBP_SIGNAL_LONE;
    }
    if (q->unsignalled >= d->coalesce_max) {
        return VBP_SIGNAL_COUNT;
    }
    if (q->depth > 1 && outstanding >= q->depth) {
        return VBP_SIGNAL_DEPTH;
    }
    if (now - q->hold_start_ns >= d->coalesce_max_ns) {
        return VBP_SIGNAL_TIME;
    }
    window = d->coalesce_idle_ns ? d->coalesce_idle_ns :
             2 * (q->gap_ns ? q->gap_ns : VBP_DEFAULT_GAP_NS);
    window = MIN(window, (int64_t)d->coalesce_max_ns);
    if (now - q->last_arrival_ns >= window) {
        return VBP_SIGNAL_IDLE;
    }
    return -1;
}

/*
 * @n requests were taken from the avail ring: learn the guest's
 * parallelism and the gap between its requests.
 */
static void vbp_note_arrivals(VirtIOBlockPollQueue *q, unsigned n,
                              int64_t now)
{
    VirtIOBlockPoll *d = q->dev;
    /* Outstanding before these: in the device, or not yet signalled */
    bool parallel = n > 1 || vbp_outstanding(q) > 0;

    /*
     * Quick to believe, slow to forget: while completions are signalled
     * at once, a guest that would submit more while it waits shows it
     * only now and then (a pass that finds several requests), and a
     * QD1 guest never does.
     */
    if (parallel) {
        q->par += (VBP_PAR_ONE - q->par) / 2;
    } else {
        q->par -= q->par / 32;
    }
    if (q->polling && q->last_arrival_ns &&
        now - q->last_arrival_ns < (int64_t)d->coalesce_max_ns) {
        int64_t gap = (now - q->last_arrival_ns) / n;

        q->gap_ns += (gap - q->gap_ns) / 8;
    }
    q->last_arrival_ns = now;
    /*
     * The gap of a guest that waits for each request before the next.
     * Only a request seen by polling shows when it came; one that kicked
     * a queue asleep on the poll-hybrid timer came earlier than expected
     * by an unknown time (the wakeup's latency is in @now), so the gap
     * expected shrinks by an eighth.
     */
    if (q->woke_early) {
        q->lone_gap_ns -= q->lone_gap_ns / 8;
    } else if (!parallel && q->idle_since_ns && !q->woke_by_kick) {
        int64_t gap = now - q->idle_since_ns;

        if (gap <= VBP_HYBRID_MAX_GAP_NS) {
            q->lone_gap_ns = q->lone_gap_ns ?
                q->lone_gap_ns + (gap - q->lone_gap_ns) / 8 : gap;
        }
    }
    q->woke_early = false;
    q->woke_by_kick = false;
    q->idle_since_ns = 0;
    if (q->hybrid_end_ns) {
        STAT_ADD(q, timed_hits, 1);
        q->hybrid_end_ns = 0;
    }
    q->taken += n;
}

static bool vbp_may_serve(VirtIOBlockPollQueue *q)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(q->dev);

    return qatomic_read(&q->attached) && !vdev->broken &&
           virtio_queue_ready(q->vq);
}

/*
 * Whether a pass submits the SQEs queued on its ring now, or holds them
 * for the next passes so that one io_uring_enter() starts many: the
 * guest writes its requests one by one, and a polling queue sees each
 * alone.  As coalescing does for completions, and with the same signs
 * of a guest that is still submitting: held only while the queue polls
 * and serves, never a lone request (the parallelism score), at most
 * uring-batch SQEs and none longer than uring-batch-ns, and not once the
 * guest has as many requests outstanding as it had at most lately, or
 * has submitted none for about twice its average gap.  A queue that
 * stops polling submits everything first (vbp_stop_polling()).
 */
static bool vbp_submit_decide(VirtIOBlockPollQueue *q, int64_t now)
{
    VirtIOBlockPoll *d = q->dev;
    unsigned queued = vbp_uring_queued(q->uring);
    int64_t window;

    if (!queued) {
        q->sq_hold_start_ns = 0;
        return false;
    }
    if (!q->polling || !vbp_may_serve(q) || d->uring_batch <= 1 ||
        !d->uring_batch_ns ||
        q->par < VBP_PAR_HOLD || queued >= d->uring_batch ||
        (q->depth > 1 && vbp_outstanding(q) >= q->depth)) {
        return true;
    }
    if (!q->sq_hold_start_ns) {
        q->sq_hold_start_ns = now;
    } else if (now - q->sq_hold_start_ns >= (int64_t)d->uring_batch_ns) {
        return true;
    }
    window = MIN(2 * (q->gap_ns ? q->gap_ns : VBP_DEFAULT_GAP_NS),
                 (int64_t)d->uring_batch_ns);
    if (now - q->last_arrival_ns >= window) {
        return true;
    }
    STAT_ADD(q, uring_held, 1);
    return false;
}

/* Hand every queued SQE to the kernel; true if there were some */
static bool vbp_submit(VirtIOBlockPollQueue *q)
{
    q->sq_hold_start_ns = 0;
    return q->uring && vbp_uring_submit(q->uring);
}

/* Publish, and signal now or hold (polling: the queue keeps polling) */
static void vbp_flush(VirtIOBlockPollQueue *q, int64_t now, bool polling)
{
    int reason;

    vbp_publish(q, now);
    if (!q->notify_pending) {
        return;
    }
    reason = vbp_signal_decide(q, now, polling);
    if (reason < 0) {
        STAT_ADD(q, held, 1);
        return;
    }
    vbp_signal(q, reason);
}

/* Take up to batch-max requests from the avail ring and start them. */
static unsigned vbp_process_ring(VirtIOBlockPollQueue *q)
{
    VirtIOBlock *s = VIRTIO_BLK(q->dev);
    MultiReqBuffer mrb = {};
    VirtIOBlockReq *req;
    unsigned n = 0;

    while (n < q->dev->batch_max &&
           (req = virtio_blk_get_request(s, q->vq))) {
        n++;
        if (virtio_blk_handle_request(req, &mrb)) {
            /* virtio_error() was called, the device needs a reset */
            virtqueue_detach_element(req->vq, &req->elem, 0);
            g_free(req);
            break;
        }
    }
    if (mrb.num_reqs) {
        virtio_blk_submit_multireq(s, &mrb);
    }
    return n;
}

static void vbp_end_sleep(VirtIOBlockPollQueue *q, int64_t now)
{
    int64_t start = qatomic_read(&q->sleep_start_ns);

    if (start) {
        STAT_ADD(q, sleep_ns, now - start);
        qatomic_set(&q->sleep_start_ns, 0);
    }
}

static void vbp_start_polling(VirtIOBlockPollQueue *q, int64_t now)
{
    if (q->hybrid_sleep) {
        qatomic_set(&q->hybrid_sleep, false);
        timer_del(q->hybrid_timer);
    }
    qatomic_set(&q->polling, true);
    q->last_work_ns = now;
    qatomic_set(&q->poll_start_ns, now);
    vbp_end_sleep(q, now);
    virtio_queue_set_notification(q->vq, 0);
    STAT_ADD(q, wakeups, 1);
    trace_virtio_blk_poll_start(q->dev, q->index);
}

static void vbp_stop_polling(VirtIOBlockPollQueue *q, int64_t now)
{
    /* Nothing waits for a later pass (vbp_submit_decide()) */
    vbp_submit(q);
    qatomic_set(&q->polling, false);
    virtio_queue_set_notification(q->vq, 1);
    STAT_ADD(q, poll_ns, now - q->poll_start_ns);
    qatomic_set(&q->sleep_start_ns, now);
    trace_virtio_blk_poll_sleep(q->dev, q->index, now - q->poll_start_ns);
}

static void vbp_pass_next(VirtIOBlockPollQueue *q, unsigned n, int64_t now);
static void vbp_again(VirtIOBlockPollQueue *q);

/*
 * The queue was attached again (after a drained section, or a start):
 * nothing is in flight any more, and completions made while it was not
 * served went through virtio-blk's own path (see vbp_outstanding()).
 * Done by the queue's thread, which owns these fields, rather than by
 * attach, which runs with the BQL while a pass may still run here.
 */
static void vbp_resync(VirtIOBlockPollQueue *q)
{
    unsigned gen = qatomic_load_acquire(&q->attach_gen);

    if (gen == q->seen_gen) {
        return;
    }
    q->seen_gen = gen;
    q->idle_since_ns = 0;
    q->hybrid_end_ns = 0;
    q->published = q->taken;
    q->unsignalled = 0;
    if (!q->polling && !qatomic_read(&q->sleep_start_ns)) {
        qatomic_set(&q->sleep_start_ns,
                    qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
    }
}

/*
 * One pass: take what the guest queued, publish what completed, decide
 * whether to keep polling, then signal once or hold the signal.
 */
static void vbp_pass(VirtIOBlockPollQueue *q)
{
    VirtIOBlockPoll *d = q->dev;
    unsigned n = 0;
    int64_t now;

    defer_call_begin();
    vbp_resync(q);
    q->in_pass = true;
    if (vbp_may_serve(q)) {
        n = vbp_process_ring(q);
    }
    now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    q->last_pass_ns = now;
    if (n) {
        vbp_note_arrivals(q, n, now);
    }
    if (q->uring) {
        /*
         * One submission for the pass or for several (batched), then
         * take what is already done
         */
        bool submitted = vbp_submit_decide(q, now) && vbp_submit(q);

        if (vbp_uring_reap(q->uring, submitted)) {
            q->progress = true;
        }
    }
    q->in_pass = false;
    vbp_publish(q, now);

    STAT_ADD(q, passes, 1);
    if (n) {
        STAT_ADD(q, busy_passes, 1);
        STAT_ADD(q, requests, n);
        if (n > q->stats.max_batch) {
            qatomic_set(&q->stats.max_batch, n);
        }
    }
    trace_virtio_blk_poll_pass(d, q->index, n);

    if (n || q->progress) {
        q->last_work_ns = now;
        q->progress = false;
    }
    if ((int64_t)(q->taken - q->published) > 0) {
        q->idle_since_ns = 0;
    } else if (!q->idle_since_ns) {
        q->idle_since_ns = now;
    }
    vbp_pass_next(q, n, now);
    /* Signal, or hold while the queue keeps polling */
    vbp_flush(q, now, q->polling);
    defer_call_end();
}

/*
 * How long a polling queue keeps polling without work: poll-idle-ns, or
 * with poll-adaptive the window learnt by vbp_adapt_window().
 */
static int64_t vbp_poll_window(VirtIOBlockPollQueue *q)
{
    VirtIOBlockPoll *d = q->dev;
    int64_t w = qatomic_read(&q->window_ns);

    return d->poll_adaptive && w >= 0 ? w : d->poll_idle_ns;
}

/*
 * The guest woke a sleeping queue after @slept_ns.  Polling pays only if
 * the guest's next request comes before the window ends, so adapt the
 * window as QEMU's event loop adapts its own polling time
 * (adjust_polling_time() in util/aio-posix.c): a kick that a window up
 * to poll-idle-ns would have caught doubles the window (from 4 us); one
 * that came later than poll-idle-ns halves it, down to none at all (the
 * queue then serves each kick with one pass and sleeps, as upstream
 * does, until the guest's pace makes polling pay again).
 */
#define VBP_WINDOW_START_NS     (4 * SCALE_US)

static void vbp_adapt_window(VirtIOBlockPollQueue *q, int64_t slept_ns)
{
    VirtIOBlockPoll *d = q->dev;
    int64_t max = d->poll_idle_ns;
    int64_t w = vbp_poll_window(q);

    if (slept_ns > max) {
        w = w / 2 >= VBP_WINDOW_START_NS ? w / 2 : 0;
    } else if (slept_ns > w) {
        w = MIN(w ? w * 2 : VBP_WINDOW_START_NS, max);
    }
    /* Read by the stats too */
    qatomic_set(&q->window_ns, w);
}

/*
 * poll-hybrid: a guest that waits for each request before it submits the
 * next one (a lone request, the parallelism score) leaves the queue empty
 * for about the same time after each completion.  Polling through all
 * of it costs a host CPU for one request's latency; sleeping through all
 * of it costs a kick and a wakeup.  So the queue sleeps on a timer until
 * a quarter of the usual gap (at most 50 us) is left and polls from then
 * until as long past it, as Linux's hybrid block polling does: most of
 * the CPU saved, the wakeup latency too.  A request that comes earlier
 * kicks as in any sleep.  Part of adaptive polling: poll-adaptive=off
 * polls for poll-idle-ns as it says.  Returns true if the queue went to
 * sleep.
 */
static bool vbp_hybrid_sleep(VirtIOBlockPollQueue *q, int64_t now)
{
    VirtIOBlockPoll *d = q->dev;
    int64_t gap = q->lone_gap_ns;
    int64_t margin = MIN(gap / 4, VBP_HYBRID_MAX_MARGIN_NS);
    int64_t wake;

    if (!d->poll_hybrid || !d->poll_adaptive || d->busy_poll || !gap ||
        q->par >= VBP_PAR_HOLD ||
        !q->idle_since_ns || q->hybrid_end_ns || !q->hybrid_timer) {
        return false;
    }
    wake = q->idle_since_ns + gap - margin;
    if (wake - now < VBP_HYBRID_MIN_SLEEP_NS) {
        return false;
    }
    vbp_stop_polling(q, now);
    if (!virtio_queue_empty(q->vq)) {
        /* A request came meanwhile: it will not kick */
        vbp_start_polling(q, now);
        vbp_again(q);
        return true;
    }
    qatomic_set(&q->hybrid_sleep, true);
    q->timed_end_ns = wake + 2 * margin;
    timer_mod_ns(q->hybrid_timer, wake);
    STAT_ADD(q, timed_sleeps, 1);
    return true;
}

/* poll-hybrid: the guest's next request is due */
static void vbp_hybrid_timer(void *opaque)
{
    VirtIOBlockPollQueue *q = opaque;
    int64_t now;

    if (q->polling || !vbp_may_serve(q)) {
        return;
    }
    now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    vbp_start_polling(q, now);
    q->hybrid_end_ns = MAX(q->timed_end_ns, now + 1);
    STAT_ADD(q, timed_wakeups, 1);
    vbp_pass(q);
}

/* After a pass: go on polling, or sleep */
static void vbp_pass_next(VirtIOBlockPollQueue *q, unsigned n, int64_t now)
{
    VirtIOBlockPoll *d = q->dev;

    if (!vbp_may_serve(q)) {
        if (q->polling) {
            vbp_stop_polling(q, now);
        }
        return;
    }

    if (!q->polling) {
        /* Interrupt mode, or a pass run to publish completions */
        if (n && (d->busy_poll || d->poll_idle_ns)) {
            vbp_start_polling(q, now);
            vbp_again(q);
        } else if (n == d->batch_max) {
            vbp_again(q);
        } else if (n) {
            /*
             * Interrupt mode (poll-idle-ns=0): the pops stored avail_event
             * (EVENT_IDX) without a full barrier before their last look
             * at the avail index.  As virtio-blk's handler does: enable
             * notifications (which ends with smp_mb()), then look again,
             * or the guest may skip the kick for a request we missed.
             */
            virtio_queue_set_notification(q->vq, 1);
            if (!virtio_queue_empty(q->vq)) {
                vbp_again(q);
            }
        }
        return;
    }

    if (!n && q->hybrid_end_ns && now >= q->hybrid_end_ns) {
        /*
         * The request the timer woke the queue for did not come: it is
         * later than expected, or the guest paused.  Sleep until it kicks,
         * and expect the next one an eighth later.
         */
        q->hybrid_end_ns = 0;
        q->lone_gap_ns += q->lone_gap_ns / 8;
    } else if (!n && vbp_hybrid_sleep(q, now)) {
        return;
    } else if (d->busy_poll || now - q->last_work_ns < vbp_poll_window(q)) {
        vbp_again(q);
        return;
    }

    /* Idle: sleep, but not before the guest can see that it must kick */
    vbp_stop_polling(q, now);
    if (!virtio_queue_empty(q->vq)) {
        vbp_start_polling(q, now);
        vbp_again(q);
    }
}

/*
 * Another pass is wanted.  Inside vbp_poll_bh() its loop runs it; from
 * anywhere else the bottom half is scheduled.
 */
static void vbp_again(VirtIOBlockPollQueue *q)
{
    if (q->in_bh) {
        q->again = true;
    } else {
        qemu_bh_schedule(q->poll_bh);
    }
}

/*
 * Requests of this queue in flight in the block layer (not on the ring
 * of the fast path): their completions may come through file
 * descriptors, which the event loop only looks at between two runs of
 * the bottom half.  An estimate, on the safe side (see vbp_outstanding()).
 */
static bool vbp_block_layer_busy(VirtIOBlockPollQueue *q)
{
    int64_t busy = (int64_t)(q->taken - q->published) - q->pending_used;

    if (q->uring) {
        busy -= vbp_uring_inflight(q->uring);
    }
    return busy > 0;
}

/*
 * Passes run back to back in user space for up to VBP_SLICE_NS, without
 * the system call with which the event loop looks at its file
 * descriptors before each bottom half (fdmon-poll and fdmon-epoll cannot
 * see ready descriptors otherwise; polling is disabled for the context,
 * see vbp_fdmon_polls_fds()).  The loop returns to the event loop at once
 * when something notifies the context (a bottom half scheduled, a
 * coroutine woken, from any thread: ctx->notified) and after every pass
 * while requests of the queue are in the block layer, so that only file
 * descriptors of other users of the IOThread wait, for at most one slice.
 */
#define VBP_SLICE_NS    (100 * SCALE_US)

static void vbp_poll_bh(void *opaque)
{
    VirtIOBlockPollQueue *q = opaque;
    int64_t start = 0;

    q->in_bh = true;
    for (;;) {
        q->again = false;
        vbp_pass(q);
        if (!q->again || qatomic_read(&q->ctx->notified) ||
            vbp_block_layer_busy(q)) {
            break;
        }
        if (!start) {
            start = q->last_pass_ns;
        } else if (q->last_pass_ns - start >= VBP_SLICE_NS) {
            break;
        }
    }
    q->in_bh = false;
    if (q->again) {
        qemu_bh_schedule(q->poll_bh);
    }
}

/* The guest kicked, or the event loop's own polling saw requests. */
static void vbp_wake(VirtIOBlockPollQueue *q)
{
    VirtIOBlockPoll *d = q->dev;

    if (!vbp_may_serve(q)) {
        return;
    }
    if (!q->polling && (d->busy_poll || d->poll_idle_ns)) {
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        int64_t slept = qatomic_read(&q->sleep_start_ns);

        /* A sleep that poll-hybrid chose says nothing of the window */
        if (slept && !q->hybrid_sleep) {
            vbp_adapt_window(q, now - slept);
        }
        q->woke_early = q->hybrid_sleep;
        q->woke_by_kick = true;
        vbp_start_polling(q, now);
    } else if (!q->polling) {
        /*
         * Interrupt mode: keep notifications on.  This also repairs the
         * flags a migration source may have left in guest memory.
         */
        virtio_queue_set_notification(q->vq, 1);
    }
    vbp_pass(q);
}

static void vbp_kick_read(void *opaque)
{
    VirtIOBlockPollQueue *q = opaque;

    if (event_notifier_test_and_clear(virtio_queue_get_host_notifier(q->vq))) {
        STAT_ADD(q, kicks, 1);
        trace_virtio_blk_poll_kick(q->dev, q->index);
        vbp_wake(q);
    }
}

static bool vbp_io_poll(void *opaque)
{
    VirtIOBlockPollQueue *q = opaque;

    return !q->polling && !virtio_queue_empty(q->vq);
}

static void vbp_io_poll_ready(void *opaque)
{
    vbp_wake(opaque);
}

static void vbp_set_handlers(VirtIOBlockPollQueue *q, AioContext *ctx,
                             bool enable)
{
    int fd = event_notifier_get_fd(virtio_queue_get_host_notifier(q->vq));
    bool with_poll = enable && vbp_fdmon_polls_fds(ctx);

    aio_set_fd_handler(ctx, fd, enable ? vbp_kick_read : NULL, NULL,
                       with_poll ? vbp_io_poll : NULL,
                       with_poll ? vbp_io_poll_ready : NULL,
                       enable ? q : NULL);
}

/*
 * Why requests cannot take the io_uring path now, or NULL if they can.
 * Only a raw image without offset/size over a file or host_device node,
 * or such a node alone, that nothing else uses qualifies: a block job,
 * an export, a filter, a throttle group or detect-zeroes each must see
 * the writes, so with any of them the block layer serves.  Dirty bitmaps
 * are kept up to date by the fast path itself.
 *
 * Context: BQL held; the graph changes only in drained sections, and the
 * queues are attached again after each.
 */
static const char vbp_reason_inactive[] = "image inactive (migration)";
static const char vbp_reason_shared[] =
    "image shared with another user (block job, export, ...)";

static const char *vbp_fast_path_check(VirtIOBlockPoll *d)
{
    VirtIOBlock *s = VIRTIO_BLK(d);
    BlockDriverState *bs = blk_bs(s->blk), *file;
    BdrvChild *c;
    int n = 0, fd;

    GRAPH_RDLOCK_GUARD_MAINLOOP();

    if (!d->fast_path) {
        return "disabled with fast-path=off";
    }
    if (d->uring_error) {
        return d->uring_error;
    }
    if (!bs || !bs->drv) {
        return "no medium";
    }
    fd = raw_posix_get_fd(bs);
    if (fd >= 0) {
        /* No format node at all, as libvirt >= 10 attaches raw images */
        file = bs;
    } else if (bs->drv->protocol_name) {
        /* rbd, nbd, iscsi, ...: no descriptor io_uring could use */
        return "protocol node without a file descriptor (rbd, nbd, ...)";
    } else {
        if (strcmp(bs->drv->format_name, "raw")) {
            return "not a raw image";
        }
        if (qdict_haskey(bs->options, "offset") ||
            qdict_haskey(bs->options, "size")) {
            return "raw image with an offset or size";
        }
        file = bs->file ? bs->file->bs : NULL;
        fd = file ? raw_posix_get_fd(file) : -1;
        if (fd < 0) {
            return "raw image not over a file or host_device node";
        }
    }
    if (blk_get_public(s->blk)->throttle_group_member.throttle_state) {
        return "I/O throttling";
    }
    if ((bs->open_flags | file->open_flags) & BDRV_O_INACTIVE) {
        return vbp_reason_inactive;
    }
    if (bs->bl.zoned != BLK_Z_NONE || file->bl.zoned != BLK_Z_NONE) {
        /* Write pointers, zone append: the block layer keeps them */
        return "zoned device";
    }
    if (bs->detect_zeroes != BLOCKDEV_DETECT_ZEROES_OPTIONS_OFF ||
        file->detect_zeroes != BLOCKDEV_DETECT_ZEROES_OPTIONS_OFF) {
        return "detect-zeroes";
    }
    /* Our BlockBackend above the top node, the raw node above the file */
    QLIST_FOREACH(c, &bs->parents, next_parent) {
        n++;
    }
    if (file != bs) {
        QLIST_FOREACH(c, &file->parents, next_parent) {
            n++;
        }
    }
    if (n != (file == bs ? 1 : 2)) {
        return vbp_reason_shared;
    }

    d->fast_write = !bdrv_is_read_only(bs) && !bdrv_is_read_only(file);
    d->fast_direct = file->open_flags & BDRV_O_NOCACHE;
    d->fast_align = MAX(bs->bl.request_alignment,
                        file->bl.request_alignment);
    d->fast_mem_align = bdrv_min_mem_align(file);
    d->fast_regular = !strcmp(file->drv->format_name, "file");
    d->fast_unmap = (bs->open_flags & BDRV_O_UNMAP) &&
                    (file->open_flags & BDRV_O_UNMAP);
    d->fast_discard_align = MAX(MAX(bs->bl.pdiscard_alignment,
                                    bs->bl.request_alignment),
                                MAX(file->bl.pdiscard_alignment,
                                    file->bl.request_alignment));
    /* cache.no-flush=on: FUA is dropped, and a flush reaching it too */
    d->fast_no_flush = (bs->open_flags | file->open_flags) & BDRV_O_NO_FLUSH;
    d->fast_flush_noop = file->open_flags & BDRV_O_NO_FLUSH;
    d->fast_bs = bs;
    d->fast_file = file;
    qatomic_store_release(&d->fast_fd, fd);
    return NULL;
}

/* Context: BQL held */
static void vbp_fast_path_update(VirtIOBlockPoll *d)
{
    const char *old = d->fast_reason;
    const char *reason;

    qatomic_set(&d->fast_fd, -1);
    reason = vbp_fast_path_check(d);
    /* Read by the IOThreads (vbp_fast_path_maybe_recheck) */
    qatomic_set(&d->fast_reason, reason);
    if (reason != old) {
        trace_virtio_blk_poll_fast_path(d, reason ? reason : "io_uring");
    }
}

/*
 * The fd for a fast path request on @q, or -1 if it must take the block
 * layer.  On success the BlockBackend counts the request as in flight, so
 * that drained sections wait for it.
 *
 * Context: the thread that handles the request
 */
static int vbp_fast_path_begin(VirtIOBlockPollQueue *q, bool is_write)
{
    VirtIOBlockPoll *d = q->dev;
    VirtIOBlock *s = VIRTIO_BLK(d);
    int fd;

    if (!q->uring || !qatomic_read(&q->active) ||
        qemu_get_current_aio_context() != q->ctx) {
        return -1;
    }
    /* Throttling can be switched on at any time, without a drain */
    if (qatomic_read(d->throttle_state)) {
        return -1;
    }
    blk_inc_in_flight(s->blk);
    /*
     * A drained section that begins now either sees this request in flight
     * and waits for it, or has detached the queue, which we see here.
     * Pairs with the barrier between detach and the drain's poll.  Only
     * then are the fast_* fields stable: they change only while the
     * queues are detached and nothing is in flight.
     */
    smp_mb();
    if (!qatomic_read(&q->attached)) {
        goto fallback;
    }
    fd = qatomic_load_acquire(&d->fast_fd);
    if (fd < 0 || (is_write && !d->fast_write)) {
        goto fallback;
    }
    if (is_write && (qatomic_read(&d->fast_bs->write_threshold_offset) ||
                     qatomic_read(&d->fast_file->write_threshold_offset))) {
        /*
         * block-set-write-threshold needs no drain either: the block
         * layer checks each write against it and sends the event.
         */
        goto fallback;
    }
    return fd;

fallback:
    blk_dec_in_flight(s->blk);
    return -1;
}

/*
 * Whether a write must be durable when it completes, as the block layer
 * decides it: the write cache is off (cache=writethrough/directsync,
 * write-cache=off, or the guest wrote 0 to the config's wce), so it puts
 * BDRV_REQ_FUA on every write, unless cache.no-flush=on on either node
 * drops it.  The guest may flip wce at any time: asked per request.
 *
 * Context: after a successful vbp_fast_path_begin()
 */
static bool vbp_fast_path_fua(VirtIOBlockPoll *d)
{
    return !blk_enable_write_cache(VIRTIO_BLK(d)->blk) && !d->fast_no_flush;
}

static bool vbp_fast_path_aligned(VirtIOBlockPoll *d, int64_t offset,
                                  QEMUIOVector *qiov)
{
    if (!d->fast_direct) {
        return true;
    }
    if (!QEMU_IS_ALIGNED(offset, d->fast_align) ||
        !QEMU_IS_ALIGNED(qiov->size, d->fast_align)) {
        return false;
    }
    for (int i = 0; i < qiov->niov; i++) {
        if (!QEMU_PTR_IS_ALIGNED(qiov->iov[i].iov_base, d->fast_mem_align) ||
            !QEMU_IS_ALIGNED(qiov->iov[i].iov_len, d->fast_align)) {
            return false;
        }
    }
    return true;
}

/*
 * Whether the image is inactive (after an outgoing migration, or
 * blockdev-set-active): the block layer must not be asked to write to it.
 * The flag changes only in drained sections.
 */
static bool vbp_image_inactive(VirtIOBlockPoll *d)
{
    BlockDriverState *bs = blk_bs(VIRTIO_BLK(d)->blk);

    return bs && (bs->open_flags & BDRV_O_INACTIVE);
}

/*
 * Context: main loop BH.  The IOThreads read the other fast_* fields
 * only after they have seen fast_fd >= 0 (load-acquire, after the
 * request counts as in flight), and fast_fd goes from >= 0 to -1 only
 * in vbp_attach_vq(), in a drained section.  So while fast_fd is -1 no
 * IOThread reads them and no fast path request is in flight: deciding
 * again is safe without a drain, and publishing fast_fd last (release)
 * hands the fields over.  If an attach has decided in the meantime
 * (fast_fd >= 0), there is nothing to do here, and rewriting the
 * fields under the IOThreads' feet would not be safe.
 */
static void vbp_fast_path_recheck_bh(void *opaque)
{
    VirtIOBlockPoll *d = opaque;

    qatomic_set(&d->recheck_pending, false);
    if (d->queues && qatomic_read(&d->fast_fd) < 0) {
        vbp_fast_path_update(d);
    }
    object_unref(OBJECT(d));
}

/*
 * Activating an image again (cont after a failed migration,
 * blockdev-set-active) needs no drained section, so the queues are not
 * attached again: notice it here and decide again in the main loop.
 * Nor do other users of the image always leave in a drained section:
 * block_resize drops its BlockBackend after its drain has ended.  While
 * the image looks shared, look again in the main loop now and then.
 *
 * Context: the queue's IOThread, for a request that took the block layer
 */
#define VBP_RECHECK_SHARED_NS (100 * SCALE_MS)

static void vbp_fast_path_maybe_recheck(VirtIOBlockPoll *d)
{
    const char *reason = qatomic_read(&d->fast_reason);
    bool again = false;

    if (reason == vbp_reason_inactive) {
        again = !vbp_image_inactive(d);
    } else if (reason == vbp_reason_shared) {
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        int64_t last = qatomic_read(&d->recheck_ns);

        if (now - last >= VBP_RECHECK_SHARED_NS &&
            qatomic_cmpxchg(&d->recheck_ns, last, now) == last) {
            again = true;
        }
    }
    if (again && !qatomic_xchg(&d->recheck_pending, true)) {
        object_ref(OBJECT(d));
        aio_bh_schedule_oneshot(qemu_get_aio_context(),
                                vbp_fast_path_recheck_bh, d);
    }
}

/*
 * Finish vbp_fast_path_begin() once the request was queued on the ring
 * (@queued), or not: submit it now unless the pass that took it from the
 * avail ring submits its whole batch anyway.  Returns @queued.
 */
static bool vbp_fast_path_end(VirtIOBlockPollQueue *q, bool queued)
{
    if (!queued) {
        blk_dec_in_flight(VIRTIO_BLK(q->dev)->blk);
    } else if (!q->in_pass) {
        vbp_uring_submit(q->uring);
    }
    return queued;
}

/* Context: the queue's IOThread */
static bool vbp_submit_rw(VirtIOBlockReq *req, bool is_write, int64_t offset,
                          QEMUIOVector *qiov, BlockCompletionFunc *cb)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(req->dev);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(req->vq)];
    bool fua;
    int fd;

    if (is_write && vbp_image_inactive(d)) {
        /* An error for the guest, under the werror policy, not an abort */
        STAT_ADD(q, fallback_rw, 1);
        cb(req, -EPERM);
        return true;
    }

    fd = vbp_fast_path_begin(q, is_write);
    if (fd >= 0 && !vbp_fast_path_aligned(d, offset, qiov)) {
        vbp_fast_path_end(q, false);
        fd = -1;
    }
    fua = is_write && fd >= 0 && vbp_fast_path_fua(d);
    if (fd >= 0 &&
        vbp_fast_path_end(q, vbp_uring_queue_rw(q->uring, fd, is_write, fua,
                                                offset, qiov, cb, req))) {
        STAT_ADD(q, fast_rw, 1);
        if (fua) {
            STAT_ADD(q, fast_fua, 1);
        }
        return true;
    }
    STAT_ADD(q, fallback_rw, 1);
    vbp_fast_path_maybe_recheck(d);
    return false;
}

/* Context: the queue's IOThread */
static bool vbp_submit_flush(VirtIOBlockReq *req, BlockCompletionFunc *cb)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(req->dev);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(req->vq)];
    int fd = vbp_fast_path_begin(q, true);

    if (fd >= 0 && d->fast_flush_noop) {
        /* cache.no-flush=on: the block layer knows what is left to do */
        vbp_fast_path_end(q, false);
        fd = -1;
    }
    if (fd >= 0 &&
        vbp_fast_path_end(q, vbp_uring_queue_flush(q->uring, fd, cb, req))) {
        STAT_ADD(q, fast_flushes, 1);
        return true;
    }
    STAT_ADD(q, fallback_flushes, 1);
    return false;
}

/*
 * Discard and write zeroes on a regular file, as file-posix does them:
 * fallocate(PUNCH_HOLE) for a discard (only with discard=unmap, without
 * the unaligned head and tail; a no-op otherwise), fallocate(ZERO_RANGE)
 * for write zeroes, or PUNCH_HOLE when the guest allows unmapping and the
 * image has discard=unmap.  Where the file system refuses, the request
 * is handed to the block layer, which knows the other ways.
 *
 * Context: the queue's IOThread
 */
static bool vbp_submit_dwz(VirtIOBlockReq *req, bool write_zeroes,
                           int64_t offset, int64_t bytes, int flags,
                           BlockCompletionFunc *cb)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(req->dev);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(req->vq)];
    VBPUringKind kind = VBP_URING_WRITE_ZEROES;
    int mode = FALLOC_FL_ZERO_RANGE;
    int fd;

    if (vbp_image_inactive(d)) {
        STAT_ADD(q, fallback_dwz, 1);
        cb(req, -EPERM);
        return true;
    }
    fd = vbp_fast_path_begin(q, true);
    if (fd < 0) {
        goto fallback;
    }
    /* From here on the fast_* fields are stable */
    if (!d->fast_regular || (write_zeroes && vbp_fast_path_fua(d))) {
        /*
         * A block device, or write-through write zeroes, which the block
         * layer follows with a flush.
         */
        goto fallback_end;
    }
    if (!write_zeroes) {
        int64_t end = QEMU_ALIGN_DOWN(offset + bytes, d->fast_discard_align);

        offset = QEMU_ALIGN_UP(offset, d->fast_discard_align);
        if (!d->fast_unmap || end <= offset) {
            /* what the block layer does: nothing, successfully */
            vbp_fast_path_end(q, false);
            STAT_ADD(q, fast_dwz, 1);
            cb(req, 0);
            return true;
        }
        bytes = end - offset;
        kind = VBP_URING_DISCARD;
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    } else if ((flags & BDRV_REQ_MAY_UNMAP) && d->fast_unmap) {
        kind = VBP_URING_WRITE_ZEROES_UNMAP;
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    }
    if (vbp_fast_path_end(q, vbp_uring_queue_fallocate(q->uring, fd, kind,
                                                       mode, offset, bytes,
                                                       cb, req))) {
        STAT_ADD(q, fast_dwz, 1);
        return true;
    }
    goto fallback;

fallback_end:
    vbp_fast_path_end(q, false);
fallback:
    STAT_ADD(q, fallback_dwz, 1);
    return false;
}

/*
 * A fast path request is done.  For writes, discards and write zeroes let
 * dirty bitmaps, flush bookkeeping and statistics of both nodes know, as
 * bdrv_co_write_req_finish() would.  A discard the file system cannot do
 * succeeds, as in the block layer; a write zeroes it cannot do goes to
 * the block layer.
 *
 * Context: the queue's IOThread
 */
static bool vbp_uring_before_complete(void *opaque, VBPUringKind kind,
                                      int64_t offset, uint64_t bytes, int ret,
                                      BlockCompletionFunc *cb,
                                      void *cb_opaque)
{
    VirtIOBlockPoll *d = opaque;
    BlockDriverState *nodes[] = { d->fast_bs, d->fast_file };
    bool refused = ret == -EOPNOTSUPP || ret == -ENOTSUP ||
                   ret == -EINVAL || ret == -EBUSY;

    switch (kind) {
    case VBP_URING_READ:
    case VBP_URING_FLUSH:
        return false;
    case VBP_URING_DISCARD:
        break;
    case VBP_URING_WRITE_ZEROES:
    case VBP_URING_WRITE_ZEROES_UNMAP:
        if (refused) {
            blk_aio_pwrite_zeroes(VIRTIO_BLK(d)->blk, offset, bytes,
                                  kind == VBP_URING_WRITE_ZEROES_UNMAP ?
                                  BDRV_REQ_MAY_UNMAP : 0, cb, cb_opaque);
            return true;
        }
        break;
    case VBP_URING_WRITE:
        break;
    }
    /*
     * Whatever @ret is, as bdrv_co_write_req_finish() does: a write that
     * failed may have changed some of the bytes (a short write followed
     * by an error), so dirty bitmaps must cover it.
     */
    for (int i = 0; i < (nodes[0] == nodes[1] ? 1 : 2); i++) {
        if (kind != VBP_URING_DISCARD) {
            stat64_max(&nodes[i]->wr_highest_offset, offset + bytes);
        }
        qatomic_inc(&nodes[i]->write_gen);
        bdrv_set_dirty(nodes[i], offset, bytes);
    }
    if (kind == VBP_URING_DISCARD && refused) {
        /* A discard is a hint: the block layer succeeds too */
        cb(cb_opaque, 0);
        return true;
    }
    return false;
}

static void vbp_uring_after_complete(void *opaque)
{
    VirtIOBlockPoll *d = opaque;

    blk_dec_in_flight(VIRTIO_BLK(d)->blk);
}

static const VBPUringOps vbp_uring_ops = {
    .before_complete = vbp_uring_before_complete,
    .after_complete = vbp_uring_after_complete,
};

/* Context: BQL held */
static void vbp_attach_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(s);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(vq)];

    /*
     * A drained section that ends while ioeventfd stops (a block job
     * finishing in the main loop that vbp_stop_vq() polls) must not
     * serve a queue again: its host notifier is about to be closed.
     * virtio-blk does not call us then; stay safe if it ever does.
     */
    if (s->ioeventfd_stopping) {
        return;
    }
    trace_virtio_blk_poll_attach(d, q->index);
    if (q->index == 0) {
        vbp_fast_path_update(d);
    }
    if (!virtio_queue_rings_in_ram(vq)) {
        /*
         * Rings in MMIO would be accessed through the BQL from the
         * IOThread, which deadlocks with a main loop that waits for it:
         * the queue is not served at all.
         */
        virtio_error(VIRTIO_DEVICE(d), "virtio-blk-poll: the rings of "
                     "queue %u are not in guest RAM", q->index);
        return;
    }
    if (q->ctx != ctx) {
        /* Stopped queues only: a running pass reads it (vbp_poll_bh()) */
        q->ctx = ctx;
    }
    if (q->uring) {
        vbp_uring_attach(q->uring, ctx);
    }
    if (q->hybrid_ctx != ctx) {
        /* Stopped queues have no timer pending (vbp_stop_vq_bh()) */
        if (q->hybrid_timer) {
            timer_free(q->hybrid_timer);
        }
        q->hybrid_timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS,
                                        vbp_hybrid_timer, q);
        q->hybrid_ctx = ctx;
    }
    /* The next pass resynchronises (release: before attached is seen) */
    qatomic_store_release(&q->attach_gen, q->attach_gen + 1);
    qatomic_set(&q->active, true);
    qatomic_set(&q->attached, true);
    vbp_set_handlers(q, ctx, true);
    /* Look at requests queued while no handler was installed */
    qemu_bh_schedule(q->poll_bh);
}

/* Context: BQL held, drained section begins */
static void vbp_detach_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(s);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(vq)];

    trace_virtio_blk_poll_detach(d, q->index);
    vbp_set_handlers(q, ctx, false);
    /* The next pass sees this, publishes what completed and sleeps */
    qatomic_set(&q->attached, false);
}

/* Context: BH in the queue's IOThread, called from vbp_stop_vq() */
static void vbp_stop_vq_bh(void *opaque)
{
    VirtIOBlockPollQueue *q = opaque;

    vbp_set_handlers(q, q->ctx, false);
    qatomic_set(&q->attached, false);
    /*
     * The ring's fd handler stays: the drain that follows waits for the
     * fast path requests still in flight, which it reaps.
     */
    qemu_bh_cancel(q->poll_bh);
    if (q->hybrid_timer) {
        timer_del(q->hybrid_timer);
    }
    qatomic_set(&q->hybrid_sleep, false);
    if (q->polling) {
        vbp_stop_polling(q, qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
    }
    /*
     * Whatever is still queued on the ring goes now, polling or not: the
     * drain that follows waits for it, and nothing else would submit it.
     */
    vbp_submit(q);
    vbp_end_sleep(q, qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
    defer_call_begin();
    /* Everything held is signalled */
    vbp_flush(q, qemu_clock_get_ns(QEMU_CLOCK_REALTIME), false);
    defer_call_end();
    /* From now on completions go through virtio-blk's own path */
    qatomic_set(&q->active, false);
}

/* Requests taken from the avail ring between two last_avail_idx values */
static unsigned vbp_avail_taken(VirtIOBlockPollQueue *q, unsigned before,
                                unsigned after)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(q->dev);

    if (virtio_vdev_has_feature(vdev, VIRTIO_F_RING_PACKED)) {
        /* An index below the queue size, and the wrap counter in bit 15 */
        unsigned num = virtio_queue_get_num(vdev, q->index);

        return num ? ((after & 0x7fff) + num - (before & 0x7fff)) % num : 0;
    }
    return (uint16_t)(after - before);
}

/* Context: BH in the queue's IOThread */
static void vbp_stop_vq_read_bh(void *opaque)
{
    VirtIOBlockPollQueue *q = opaque;
    VirtIODevice *vdev = VIRTIO_DEVICE(q->dev);
    unsigned before = virtio_queue_get_last_avail_idx(vdev, q->index);

    /* A kick that arrived just before the handler went away */
    virtio_queue_host_notifier_read(virtio_queue_get_host_notifier(q->vq));
    /* virtio-blk's own handler took these; they count all the same */
    STAT_ADD(q, requests, vbp_avail_taken(q, before,
             virtio_queue_get_last_avail_idx(vdev, q->index)));
}

/*
 * Testing (x-drain-during-stop): what a block job that finishes in the
 * main loop does (job_exit(), bdrv_graph_wrlock_drained()), run by the
 * nested event loop of vbp_stop_vq()
 */
static void vbp_drain_all_bh(void *opaque)
{
    bdrv_drain_all_begin();
    bdrv_drain_all_end();
}

/* Context: BQL held, ioeventfd stops */
static void vbp_stop_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(s);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(vq)];

    trace_virtio_blk_poll_stop(d, q->index);
    if (d->drain_during_stop && q->index == 0) {
        aio_bh_schedule_oneshot(qemu_get_aio_context(), vbp_drain_all_bh,
                                NULL);
    }
    aio_wait_bh_oneshot(ctx, vbp_stop_vq_bh, q);
    if (!blk_in_drain(s->conf.conf.blk)) {
        aio_wait_bh_oneshot(ctx, vbp_stop_vq_read_bh, q);
    }
}

/* Context: the thread that completes the request */
static void vbp_push_request(VirtIOBlockReq *req)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(req->dev);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(req->vq)];
    VirtIODevice *vdev = VIRTIO_DEVICE(d);

    if (!qatomic_read(&q->active) || qemu_get_current_aio_context() != q->ctx) {
        /* Not served by the poller: publish and notify as virtio-blk does */
        virtqueue_push(req->vq, &req->elem, req->in_len);
        STAT_ADD(q, completions, 1);
        virtio_notify(vdev, req->vq);
        return;
    }

    WITH_RCU_READ_LOCK_GUARD() {
        virtqueue_fill(req->vq, &req->elem, req->in_len, q->pending_used++);
    }
    STAT_ADD(q, completions, 1);
    if (!q->in_pass) {
        /* Completions of one event loop iteration are published together */
        q->progress = true;
        qemu_bh_schedule(q->poll_bh);
    }
}

/*
 * Testing: x-fail-next-submit=ERRNO makes the next io_uring submission of
 * every queue fail with -ERRNO, as if the kernel had refused it.
 */
static void vbp_set_fail_next_submit(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(obj);
    VirtIOBlock *s = VIRTIO_BLK(obj);
    uint32_t err;

    if (!visit_type_uint32(v, name, &err, errp)) {
        return;
    }
    if (!err || err > 4095) {
        error_setg(errp, "invalid %s value (%" PRIu32 "), must be an errno "
                   "between 1 and 4095", name, err);
        return;
    }
    if (!d->queues) {
        error_setg(errp, "%s: the device is not realized", name);
        return;
    }
    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        if (d->queues[i].uring) {
            vbp_uring_fail_next_submit(d->queues[i].uring, -(int)err);
        }
    }
}

/*
 * Testing: x-short-next-submit=N makes the kernel consume at most N SQEs
 * of the next io_uring submission of every queue, as a short submission.
 */
static void vbp_set_short_next_submit(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(obj);
    VirtIOBlock *s = VIRTIO_BLK(obj);
    uint32_t max;

    if (!visit_type_uint32(v, name, &max, errp)) {
        return;
    }
    if (!d->queues) {
        error_setg(errp, "%s: the device is not realized", name);
        return;
    }
    if (d->uring_sqpoll) {
        error_setg(errp, "%s: not with uring-sqpoll=on", name);
        return;
    }
    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        if (d->queues[i].uring) {
            vbp_uring_short_next_submit(d->queues[i].uring, max);
        }
    }
}

/* What a queue does now, for the stats */
static const char *vbp_queue_state(VirtIOBlockPollQueue *q)
{
    if (!qatomic_read(&q->attached)) {
        return qatomic_read(&q->active) ? "drained" : "stopped";
    }
    if (qatomic_read(&q->polling)) {
        return "polling";
    }
    return qatomic_read(&q->hybrid_sleep) ? "timed-sleep" : "sleeping";
}

static void vbp_get_stats(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(obj);
    VirtIOBlock *s = VIRTIO_BLK(obj);
    unsigned nvqs = d->queues ? s->conf.num_queues : 0;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    if (!visit_start_list(v, name, NULL, 0, errp)) {
        return;
    }
    for (unsigned i = 0; i < nvqs; i++) {
        VirtIOBlockPollQueue *q = &d->queues[i];
        VirtIOBlockPollStats st;
        uint64_t index = i;
        int64_t tid = q->iothread ? q->iothread->thread_id : -1;
        g_autofree char *iothread = g_strdup(q->iothread ?
            object_get_canonical_path_component(OBJECT(q->iothread)) : "");
        bool polling = qatomic_read(&q->polling);
        g_autofree char *state = g_strdup(vbp_queue_state(q));
        int64_t window = d->busy_poll ? -1 : vbp_poll_window(q);
        g_autofree char *path = g_strdup(
            d->throttle_state && qatomic_read(d->throttle_state) ?
            "I/O throttling" : qatomic_read(&d->fast_fd) >= 0 ? "io_uring" :
            d->fast_reason ? d->fast_reason : "not started");
        VBPUringStats us = { };
        bool ok;

        if (q->uring) {
            vbp_uring_get_stats(q->uring, &us);
        }

#define READ_STAT(f) st.f = qatomic_read(&q->stats.f)
        READ_STAT(requests);
        READ_STAT(passes);
        READ_STAT(busy_passes);
        READ_STAT(max_batch);
        READ_STAT(kicks);
        READ_STAT(completions);
        READ_STAT(used_updates);
        READ_STAT(notifies);
        READ_STAT(notifies_suppressed);
        READ_STAT(wakeups);
        READ_STAT(poll_ns);
        READ_STAT(sleep_ns);
        READ_STAT(fast_rw);
        READ_STAT(fast_fua);
        READ_STAT(fast_flushes);
        READ_STAT(fallback_rw);
        READ_STAT(fallback_flushes);
        READ_STAT(fast_dwz);
        READ_STAT(fallback_dwz);
        READ_STAT(held);
        READ_STAT(max_coalesced);
        READ_STAT(uring_held);
        READ_STAT(timed_sleeps);
        READ_STAT(timed_wakeups);
        READ_STAT(timed_hits);
        for (int r = 0; r < ARRAY_SIZE(st.signal_reason); r++) {
            READ_STAT(signal_reason[r]);
        }
#undef READ_STAT
        if (polling) {
            st.poll_ns += now - qatomic_read(&q->poll_start_ns);
        } else if (qatomic_read(&q->sleep_start_ns)) {
            st.sleep_ns += now - qatomic_read(&q->sleep_start_ns);
        }

        if (!visit_start_struct(v, NULL, NULL, 0, errp)) {
            break;
        }
        ok = visit_type_uint64(v, "queue", &index, errp) &&
             visit_type_str(v, "iothread", &iothread, errp) &&
             visit_type_int(v, "thread-id", &tid, errp) &&
             visit_type_bool(v, "polling", &polling, errp) &&
             visit_type_str(v, "state", &state, errp) &&
             visit_type_int(v, "poll-window-ns", &window, errp) &&
             visit_type_uint64(v, "requests", &st.requests, errp) &&
             visit_type_uint64(v, "passes", &st.passes, errp) &&
             visit_type_uint64(v, "busy-passes", &st.busy_passes, errp) &&
             visit_type_uint64(v, "max-batch", &st.max_batch, errp) &&
             visit_type_uint64(v, "kicks", &st.kicks, errp) &&
             visit_type_uint64(v, "completions", &st.completions, errp) &&
             visit_type_uint64(v, "used-updates", &st.used_updates, errp) &&
             visit_type_uint64(v, "notifies", &st.notifies, errp) &&
             visit_type_uint64(v, "notifies-suppressed",
                               &st.notifies_suppressed, errp) &&
             visit_type_uint64(v, "wakeups", &st.wakeups, errp) &&
             visit_type_uint64(v, "poll-ns", &st.poll_ns, errp) &&
             visit_type_uint64(v, "sleep-ns", &st.sleep_ns, errp) &&
             visit_type_str(v, "path", &path, errp) &&
             visit_type_uint64(v, "fast-rw", &st.fast_rw, errp) &&
             visit_type_uint64(v, "fast-fua", &st.fast_fua, errp) &&
             visit_type_uint64(v, "fast-flushes", &st.fast_flushes, errp) &&
             visit_type_uint64(v, "fallback-rw", &st.fallback_rw, errp) &&
             visit_type_uint64(v, "fallback-flushes", &st.fallback_flushes,
                               errp) &&
             visit_type_uint64(v, "fast-dwz", &st.fast_dwz, errp) &&
             visit_type_uint64(v, "fallback-dwz", &st.fallback_dwz, errp) &&
             visit_type_uint64(v, "uring-sqes", &us.sqes, errp) &&
             visit_type_uint64(v, "uring-submit-calls", &us.submit_calls,
                               errp) &&
             visit_type_uint64(v, "early-completions", &us.early_completions,
                               errp) &&
             visit_type_uint64(v, "uring-resubmits", &us.resubmits, errp) &&
             visit_type_uint64(v, "uring-held", &st.uring_held, errp) &&
             visit_type_uint64(v, "timed-sleeps", &st.timed_sleeps, errp) &&
             visit_type_uint64(v, "timed-wakeups", &st.timed_wakeups,
                               errp) &&
             visit_type_uint64(v, "timed-hits", &st.timed_hits, errp) &&
             visit_type_uint64(v, "held", &st.held, errp) &&
             visit_type_uint64(v, "max-coalesced", &st.max_coalesced, errp);
        for (int r = 0; ok && r < ARRAY_SIZE(st.signal_reason); r++) {
            ok = visit_type_uint64(v, vbp_signal_reason_names[r],
                                   &st.signal_reason[r], errp);
        }
        if (ok) {
            ok = visit_check_struct(v, errp);
        }
        visit_end_struct(v, NULL);
        if (!ok) {
            break;
        }
    }
    visit_end_list(v, NULL);
}

/* The IOThread whose AioContext is @ctx, for the stats; NULL if unknown */
static IOThread *vbp_queue_iothread(VirtIOBlock *s, AioContext *ctx)
{
    IOThreadVirtQueueMappingList *node;

    if (s->conf.iothread) {
        return s->conf.iothread;
    }
    for (node = s->conf.iothread_vq_mapping_list; node; node = node->next) {
        IOThread *iothread = iothread_by_id(node->value->iothread);

        if (iothread && iothread_get_aio_context(iothread) == ctx) {
            return iothread;
        }
    }
    return NULL;
}

static void vbp_unrealize(DeviceState *dev);

/* Parse a CPU list such as "0-2,5" into @set */
static bool vbp_parse_cpu_list(const char *list, const char *whole,
                               cpu_set_t *set, Error **errp)
{
    long ncpus = sysconf(_SC_NPROCESSORS_CONF);
    g_auto(GStrv) items = g_strsplit(list, ",", -1);

    CPU_ZERO(set);
    for (char **item = items; *item; item++) {
        const char *end;
        unsigned long first, last;

        if (qemu_strtoul(*item, &end, 10, &first) < 0) {
            goto bad;
        }
        last = first;
        if (*end == '-' && qemu_strtoul(end + 1, &end, 10, &last) < 0) {
            goto bad;
        }
        if (*end || last < first) {
            goto bad;
        }
        if (last >= ncpus || last >= CPU_SETSIZE) {
            error_setg(errp, "invalid poll-cpus property '%s': CPU %lu does "
                       "not exist (the host has %ld)", whole, last, ncpus);
            return false;
        }
        for (unsigned long cpu = first; cpu <= last; cpu++) {
            CPU_SET(cpu, set);
        }
    }
    return true;

bad:
    error_setg(errp, "invalid poll-cpus property '%s': expected CPU lists "
               "such as 0-2,5, one per IOThread separated by ':'", whole);
    return false;
}

/*
 * Pin the serving IOThreads as poll-cpus asks: one CPU list for all, or
 * one per distinct IOThread in queue order.  libvirt, which pins the
 * threads query-iothreads reports after QEMU has started, overrides it.
 */
static bool vbp_apply_poll_cpus(VirtIOBlockPoll *d, Error **errp)
{
    VirtIOBlock *s = VIRTIO_BLK(d);
    g_auto(GStrv) lists = g_strsplit(d->poll_cpus, ":", -1);
    guint nlists = g_strv_length(lists);
    g_autoptr(GPtrArray) threads = g_ptr_array_new();

    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        IOThread *iothread = d->queues[i].iothread;

        if (iothread && !g_ptr_array_find(threads, iothread, NULL)) {
            g_ptr_array_add(threads, iothread);
        }
    }
    if (nlists != 1 && nlists != threads->len) {
        error_setg(errp, "invalid poll-cpus property '%s': %u CPU lists for "
                   "%u IOThreads", d->poll_cpus, nlists, threads->len);
        return false;
    }
    for (guint i = 0; i < threads->len; i++) {
        IOThread *iothread = g_ptr_array_index(threads, i);
        cpu_set_t set;

        if (!vbp_parse_cpu_list(lists[nlists == 1 ? 0 : i], d->poll_cpus,
                                &set, errp)) {
            return false;
        }
        if (sched_setaffinity(iothread->thread_id, sizeof(set), &set) < 0) {
            error_setg_errno(errp, errno, "cannot pin IOThread '%s' to "
                             "poll-cpus '%s'",
                             object_get_canonical_path_component(
                                 OBJECT(iothread)), d->poll_cpus);
            return false;
        }
    }
    return true;
}

/* A count property: 1 to VIRTQUEUE_MAX_SIZE */
static bool vbp_check_count(const char *name, uint32_t value, Error **errp)
{
    if (value < 1 || value > VIRTQUEUE_MAX_SIZE) {
        error_setg(errp, "invalid %s property (%" PRIu32 "), must be "
                   "between 1 and %d", name, value, VIRTQUEUE_MAX_SIZE);
        return false;
    }
    return true;
}

static void vbp_realize(DeviceState *dev, Error **errp)
{
    ERRP_GUARD();
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(dev);
    VirtIOBlockPollClass *vbpc = VIRTIO_BLK_POLL_GET_CLASS(dev);
    VirtIOBlock *s = VIRTIO_BLK(dev);
    static unsigned iothread_count;

    if (s->conf.num_queues > VIRTIO_QUEUE_MAX &&
        s->conf.num_queues != VIRTIO_BLK_AUTO_NUM_QUEUES) {
        error_setg(errp, "invalid num-queues property (%" PRIu16 "), must be "
                   "between 1 and %d", s->conf.num_queues, VIRTIO_QUEUE_MAX);
        return;
    }
    if (!vbp_check_count("batch-max", d->batch_max, errp)) {
        return;
    }
    if (d->poll_idle_ns > VIRTIO_BLK_POLL_MAX_IDLE_NS) {
        error_setg(errp, "invalid poll-idle-ns property (%" PRIu64 "), must "
                   "be at most %" PRIu64 " (use busy-poll=on to never sleep)",
                   d->poll_idle_ns, (uint64_t)VIRTIO_BLK_POLL_MAX_IDLE_NS);
        return;
    }

    if (!vbp_check_count("uring-batch", d->uring_batch, errp)) {
        return;
    }
    if (d->uring_batch_ns > VIRTIO_BLK_POLL_MAX_URING_BATCH_NS) {
        error_setg(errp, "invalid uring-batch-ns property (%" PRIu64 "), "
                   "must be at most %" PRIu64, d->uring_batch_ns,
                   (uint64_t)VIRTIO_BLK_POLL_MAX_URING_BATCH_NS);
        return;
    }
    if (!vbp_check_count("coalesce-max", d->coalesce_max, errp)) {
        return;
    }
    if (d->coalesce_idle_ns > VIRTIO_BLK_POLL_MAX_COALESCE_NS) {
        error_setg(errp, "invalid coalesce-idle-ns property (%" PRIu64 "), "
                   "must be at most %" PRIu64 " (0: adaptive)",
                   d->coalesce_idle_ns,
                   (uint64_t)VIRTIO_BLK_POLL_MAX_COALESCE_NS);
        return;
    }
    if (d->coalesce_max_ns < VIRTIO_BLK_POLL_MIN_COALESCE_NS ||
        d->coalesce_max_ns > VIRTIO_BLK_POLL_MAX_COALESCE_NS) {
        error_setg(errp, "invalid coalesce-max-ns property (%" PRIu64 "), "
                   "must be between %" PRIu64 " and %" PRIu64,
                   d->coalesce_max_ns,
                   (uint64_t)VIRTIO_BLK_POLL_MIN_COALESCE_NS,
                   (uint64_t)VIRTIO_BLK_POLL_MAX_COALESCE_NS);
        return;
    }

    if (!virtio_device_ioeventfd_enabled(VIRTIO_DEVICE(dev))) {
        error_setg(errp, "virtio-blk-poll needs ioeventfd, but the transport "
                   "does not provide it (ioeventfd=off?)");
        return;
    }

    if (!s->conf.iothread && !s->conf.iothread_vq_mapping_list) {
        /* Short: the thread is named "IO <id>", at most 15 characters */
        g_autofree char *id = g_strdup_printf("vbp-poll%u",
                                              iothread_count++);

        d->own_iothread = iothread_create(id, errp);
        if (!d->own_iothread) {
            return;
        }
        /*
         * It lives outside /objects, where management tools count their
         * own IOThreads, so it cannot be named through the link property;
         * the reference is the link's, dropped when the device finalizes.
         */
        s->conf.iothread = d->own_iothread;
        object_ref(OBJECT(d->own_iothread));
    }

    vbpc->parent_realize(dev, errp);
    if (*errp) {
        goto fail;
    }

    d->queues = g_new0(VirtIOBlockPollQueue, s->conf.num_queues);
    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        VirtIOBlockPollQueue *q = &d->queues[i];

        q->dev = d;
        q->index = i;
        q->window_ns = -1;
        q->vq = virtio_get_queue(VIRTIO_DEVICE(dev), i);
        q->ctx = s->vq_aio_context[i];
        q->iothread = vbp_queue_iothread(s, q->ctx);
        /*
         * No re-entrancy guard: the one of this device is never checked
         * (the transport proxy owns the MMIO regions), sharing it between
         * IOThreads would race, and a pass cannot reach MMIO dispatch at
         * all: rings and descriptors outside guest RAM are refused in
         * threads without the BQL.
         */
        q->poll_bh = aio_bh_new(q->ctx, vbp_poll_bh, q);
        virtio_queue_set_served_without_bql(q->vq, true);
        if (d->fast_path && !d->uring_error) {
            Error *local_err = NULL;

            q->uring = vbp_uring_new(s->conf.queue_size, d->uring_sqpoll,
                                     &vbp_uring_ops, d, &local_err);
            if (!q->uring) {
                d->uring_error = g_strdup_printf("io_uring unavailable: %s",
                                                 error_get_pretty(local_err));
                warn_report("virtio-blk-poll: %s; requests take the block "
                            "layer", d->uring_error);
                error_free(local_err);
            }
        }
    }
    d->fast_fd = -1;
    d->fast_reason = "not started";
    d->throttle_state =
        &blk_get_public(s->blk)->throttle_group_member.throttle_state;
    if (d->poll_cpus && !vbp_apply_poll_cpus(d, errp)) {
        vbp_unrealize(dev);
        return;
    }
    return;

fail:
    if (d->own_iothread) {
        iothread_destroy(d->own_iothread);
        d->own_iothread = NULL;
    }
}

static void vbp_unrealize(DeviceState *dev)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(dev);
    VirtIOBlockPollClass *vbpc = VIRTIO_BLK_POLL_GET_CLASS(dev);
    VirtIOBlock *s = VIRTIO_BLK(dev);

    vbpc->parent_unrealize(dev);
    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        qemu_bh_delete(d->queues[i].poll_bh);
        if (d->queues[i].hybrid_timer) {
            timer_free(d->queues[i].hybrid_timer);
        }
        if (d->queues[i].uring) {
            vbp_uring_detach(d->queues[i].uring);
            vbp_uring_free(d->queues[i].uring);
        }
    }
    g_free(d->queues);
    d->queues = NULL;
    g_free(d->uring_error);
    d->uring_error = NULL;
    if (d->own_iothread) {
        /* The iothread link holds the last reference until finalize */
        iothread_destroy(d->own_iothread);
        d->own_iothread = NULL;
    }
}

static const Property vbp_properties[] = {
    DEFINE_PROP_UINT64("poll-idle-ns", VirtIOBlockPoll, poll_idle_ns,
                       VIRTIO_BLK_POLL_DEFAULT_IDLE_NS),
    DEFINE_PROP_BOOL("busy-poll", VirtIOBlockPoll, busy_poll, false),
    DEFINE_PROP_BOOL("poll-adaptive", VirtIOBlockPoll, poll_adaptive, true),
    DEFINE_PROP_BOOL("poll-hybrid", VirtIOBlockPoll, poll_hybrid, true),
    DEFINE_PROP_UINT32("batch-max", VirtIOBlockPoll, batch_max,
                       VIRTIO_BLK_POLL_DEFAULT_BATCH),
    DEFINE_PROP_STRING("poll-cpus", VirtIOBlockPoll, poll_cpus),
    DEFINE_PROP_BOOL("fast-path", VirtIOBlockPoll, fast_path, true),
    DEFINE_PROP_BOOL("uring-sqpoll", VirtIOBlockPoll, uring_sqpoll, false),
    DEFINE_PROP_UINT32("uring-batch", VirtIOBlockPoll, uring_batch,
                       VIRTIO_BLK_POLL_DEFAULT_URING_BATCH),
    DEFINE_PROP_UINT64("uring-batch-ns", VirtIOBlockPoll, uring_batch_ns,
                       VIRTIO_BLK_POLL_DEFAULT_URING_BATCH_NS),
    DEFINE_PROP_BOOL("coalesce", VirtIOBlockPoll, coalesce, true),
    DEFINE_PROP_UINT32("coalesce-max", VirtIOBlockPoll, coalesce_max,
                       VIRTIO_BLK_POLL_DEFAULT_COALESCE),
    DEFINE_PROP_UINT64("coalesce-max-ns", VirtIOBlockPoll, coalesce_max_ns,
                       VIRTIO_BLK_POLL_DEFAULT_COALESCE_NS),
    DEFINE_PROP_UINT64("coalesce-idle-ns", VirtIOBlockPoll, coalesce_idle_ns,
                       0),
    /* Testing only: a drained section begins and ends while queues stop */
    DEFINE_PROP_BOOL("x-drain-during-stop", VirtIOBlockPoll,
                     drain_during_stop, false),
};

static void vbp_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_CLASS(klass);
    VirtIOBlkClass *vbc = VIRTIO_BLK_CLASS(klass);
    VirtIOBlockPollClass *vbpc = VIRTIO_BLK_POLL_CLASS(klass);

    device_class_set_props(dc, vbp_properties);
    object_class_property_set_description(klass, "poll-idle-ns",
        "Time in ns a virtqueue keeps polling without a new request before "
        "it re-enables guest notifications and sleeps (0: never poll, "
        "serve each kick and sleep)");
    object_class_property_set_description(klass, "poll-adaptive",
        "Poll only as long as the guest's pace between requests makes it "
        "pay (twice its average gap, at most poll-idle-ns; no polling when "
        "that does not fit); off: always poll-idle-ns");
    object_class_property_set_description(klass, "busy-poll",
        "Poll the virtqueues for ever, never sleep: lowest latency, one "
        "host CPU per serving IOThread busy all the time");
    object_class_property_set_description(klass, "batch-max",
        "Most requests taken from a virtqueue per poll pass (1-1024)");
    object_class_property_set_description(klass, "poll-cpus",
        "Host CPUs for the serving IOThreads, a CPU list such as 2-3,6 "
        "for all of them, or one list per IOThread separated by ':' "
        "(in the order of the queues they serve)");
    object_class_property_set_description(klass, "fast-path",
        "Serve reads, writes and flushes of a raw image over a file or "
        "host_device node through a per-queue io_uring (off: always "
        "through the block layer)");
    object_class_property_set_description(klass, "uring-sqpoll",
        "Give each queue's io_uring a kernel thread that polls its "
        "submission queue (no system call to submit; costs a host CPU "
        "while busy and for 10 ms after)");
    object_class_property_set_description(klass, "poll-hybrid",
        "With poll-adaptive, when the guest waits for each request before "
        "the next, sleep until a quarter of its usual gap is left and "
        "poll only from then (off: poll through the whole gap)");
    object_class_property_set_description(klass, "uring-batch",
        "Most requests a polling queue holds to start them with one "
        "io_uring submission while its guest keeps submitting (1-1024; "
        "1: one submission per pass; a lone request is never held)");
    object_class_property_set_description(klass, "uring-batch-ns",
        "Longest time in ns a request waits for its io_uring submission "
        "(0-10000000; 0: none waits)");
    object_class_property_set_description(klass, "coalesce",
        "Hold completion interrupts while a polling queue's guest keeps "
        "submitting in parallel, and signal many completions at once "
        "(a lone request is never held)");
    object_class_property_set_description(klass, "coalesce-max",
        "Most completions one interrupt waits for (1-1024; 1: one "
        "interrupt per pass, as without coalescing)");
    object_class_property_set_description(klass, "coalesce-max-ns",
        "Longest time in ns a completion waits for its interrupt "
        "(1000-1000000000)");
    object_class_property_set_description(klass, "coalesce-idle-ns",
        "Signal held completions once no request came for this long, in "
        "ns (0, the default: twice the guest's average gap between "
        "requests; at most coalesce-max-ns)");
    object_class_property_add(klass, "stats", "VirtIOBlockPollQueueStats",
                              vbp_get_stats, NULL, NULL, NULL);
    object_class_property_set_description(klass, "stats",
        "Per-virtqueue counters (read-only): requests, passes, kicks, "
        "notifies, suppressed notifies, polling time, serving thread");
    object_class_property_add(klass, "x-fail-next-submit", "uint32",
                              NULL, vbp_set_fail_next_submit, NULL, NULL);
    object_class_property_set_description(klass, "x-fail-next-submit",
        "Testing only: the next io_uring submission of each queue fails "
        "with this errno (its requests complete with the error)");
    object_class_property_add(klass, "x-short-next-submit", "uint32",
                              NULL, vbp_set_short_next_submit, NULL, NULL);
    object_class_property_set_description(klass, "x-short-next-submit",
        "Testing only: the kernel consumes at most this many requests of "
        "the next io_uring submission of each queue (a short submission)");

    vbpc->parent_realize = vdc->realize;
    vbpc->parent_unrealize = vdc->unrealize;
    vdc->realize = vbp_realize;
    vdc->unrealize = vbp_unrealize;

    vbc->attach_vq = vbp_attach_vq;
    vbc->detach_vq = vbp_detach_vq;
    vbc->stop_vq = vbp_stop_vq;
    vbc->push_request = vbp_push_request;
    vbc->submit_rw = vbp_submit_rw;
    vbc->submit_flush = vbp_submit_flush;
    vbc->submit_dwz = vbp_submit_dwz;
}

static const TypeInfo vbp_info = {
    .name = TYPE_VIRTIO_BLK_POLL,
    .parent = TYPE_VIRTIO_BLK,
    .instance_size = sizeof(VirtIOBlockPoll),
    .class_init = vbp_class_init,
    .class_size = sizeof(VirtIOBlockPollClass),
};

static void vbp_register_types(void)
{
    type_register_static(&vbp_info);
}

type_init(vbp_register_types)
