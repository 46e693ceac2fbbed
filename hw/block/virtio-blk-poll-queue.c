/*
 * virtio-blk-poll: the per-queue mechanism (passes, polling, sleeping and
 * dozing, the ioeventfd lifecycle); completions: virtio-blk-poll-signal.c
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
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
#include "hw/virtio/virtio-bus.h"
#include "block/block_int-common.h"
#include "block/block_int-io.h"
#include "block/graph-lock.h"
#include "block/raw-aio.h"
#include "hw/virtio/virtio-blk-poll.h"
#include "hw/virtio/virtio-blk-poll-uring.h"
#include "virtio-blk-poll-internal.h"
#include "qemu/error-report.h"
#include "qobject/qdict.h"
#include "system/block-backend.h"
#include "system/iothread.h"
#include "trace.h"

/*
 * The queue's host notifier handler has no io_poll: the queue polls by
 * itself (vbp_poll_bh()) for as long as its own policy says, and the
 * IOThread's adaptive polling (poll-max-ns, 32 us by default) must not
 * add its own window after the queue chose to sleep.  On fdmon-poll and
 * fdmon-epoll a handler without io_poll disables the context's polling,
 * which the bottom half's loop needs (see vbp_poll_bh()); fdmon-io_uring
 * would otherwise poll the handler before each of its waits, doubling
 * the CPU a lone request costs and teaching the queue's poll window that
 * polling pays when it was the IOThread that caught the request.
 * x-iothread-poll=on offers it anyway, to measure that.
 */
static bool vbp_offer_io_poll(VirtIOBlockPollQueue *q, AioContext *ctx)
{
    return q->dev->iothread_poll &&
           ctx->fdmon_ops->need_wait != aio_poll_disabled;
}

/* @n requests were taken from the avail ring: learn the guest's pace */
static void vbp_note_arrivals(VirtIOBlockPollQueue *q, unsigned n,
                              int64_t now)
{
    VBPArrival how = q->woke_early ? VBP_ARRIVAL_KICK_EARLY :
                     q->woke_by_kick ? VBP_ARRIVAL_KICK :
                     q->hybrid_end_ns ? VBP_ARRIVAL_TIMED : VBP_ARRIVAL_POLLED;

    vbp_pace_arrival(&q->pace, n, vbp_outstanding(q), vbp_polling(q), how,
                     q->dev->coalesce_max_ns, now);
    q->woke_early = false;
    q->woke_by_kick = false;
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
 * alone.  The hold rule of coalescing (vbp_hold_decide()), within
 * uring-batch and uring-batch-ns, only while the queue polls and
 * serves.  A queue that stops polling submits everything first
 * (vbp_stop_polling()).
 */
static bool vbp_submit_decide(VirtIOBlockPollQueue *q, int64_t now)
{
    VirtIOBlockPoll *d = q->dev;
    unsigned queued = vbp_uring_queued(q->uring);
    VBPHoldLimits lim = {
        .max_count = d->uring_batch,
        .max_ns = d->uring_batch_ns,
    };

    if (!queued) {
        q->sq_hold_start_ns = 0;
        return false;
    }
    if (!vbp_polling(q) || !vbp_may_serve(q) || d->uring_batch <= 1 ||
        !d->uring_batch_ns) {
        return true;
    }
    if (!q->sq_hold_start_ns) {
        q->sq_hold_start_ns = now;
    }
    if (vbp_hold_decide(&q->pace, &lim, queued, vbp_outstanding(q),
                        q->sq_hold_start_ns, now) != VBP_HOLD) {
        return true;
    }
    trace_virtio_blk_poll_sq_hold(q->dev, q->index, queued);
    STAT_ADD(q, uring_held, 1);
    return false;
}

/* Hand every queued SQE to the kernel; true if there were some */
static bool vbp_submit(VirtIOBlockPollQueue *q)
{
    q->sq_hold_start_ns = 0;
    return q->uring && vbp_uring_submit(q->uring);
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

/*
 * The one place a queue's phase changes.  Polling: guest notifications
 * off, passes rescheduled by the caller.  Leaving it: what is queued on
 * the ring is submitted (nothing waits for a later pass,
 * vbp_submit_decide()) and notifications are on again, except in a doze,
 * where the queue's timer looks at the ring instead of a kick.  A timed
 * sleep (poll-hybrid) or a doze is a sleep whose timer the caller arms;
 * leaving it disarms the timer.
 */
static void vbp_set_state(VirtIOBlockPollQueue *q, VBPQueueState state,
                          int64_t now)
{
    VBPQueueState old = q->state;

    if (state == old) {
        return;
    }
    if (old == VBP_QUEUE_TIMED_SLEEP || old == VBP_QUEUE_DOZING) {
        timer_del(q->hybrid_timer);
    }
    if (state == VBP_QUEUE_POLLING) {
        qatomic_set(&q->state, state);
        q->last_work_ns = now;
        qatomic_set(&q->poll_start_ns, now);
        vbp_end_sleep(q, now);
        virtio_queue_set_notification(q->vq, 0);
        STAT_ADD(q, wakeups, 1);
        trace_virtio_blk_poll_start(q->dev, q->index);
        return;
    }
    if (old == VBP_QUEUE_POLLING) {
        vbp_submit(q);
        qatomic_set(&q->state, state);
        if (state != VBP_QUEUE_DOZING) {
            virtio_queue_set_notification(q->vq, 1);
        }
        STAT_ADD(q, poll_ns, now - q->poll_start_ns);
        qatomic_set(&q->sleep_start_ns, now);
        trace_virtio_blk_poll_sleep(q->dev, q->index, now - q->poll_start_ns);
        return;
    }
    qatomic_set(&q->state, state);
    if (old == VBP_QUEUE_DOZING) {
        /* From a doze to a sleep: the guest must kick from now on */
        virtio_queue_set_notification(q->vq, 1);
    }
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
    q->pace.idle_since_ns = 0;
    q->hybrid_end_ns = 0;
    q->published = q->taken;
    q->unsignalled = 0;
    /* A queue without an interrupt is polled from its first request */
    q->suppressed = qatomic_read(&q->no_irq) ? VBP_POLLED_AFTER : 0;
    if (!vbp_polling(q) && !qatomic_read(&q->sleep_start_ns)) {
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
    vbp_pace_busy(&q->pace, (int64_t)(q->taken - q->published) > 0, now);
    vbp_pass_next(q, n, now);
    /* Signal, or hold while the queue keeps polling */
    vbp_flush(q, now, vbp_polling(q));
    defer_call_end();
}

/*
 * How long a polling queue keeps polling without work: poll-idle-ns, or
 * with poll-adaptive the window learnt by vbp_adapt_window().
 */
int64_t vbp_poll_window(VirtIOBlockPollQueue *q)
{
    VirtIOBlockPoll *d = q->dev;
    int64_t w = qatomic_read(&q->window_ns);

    return d->poll_adaptive && w >= 0 ? w : d->poll_idle_ns;
}

/*
 * The guest woke a sleeping queue after @slept_ns: polling pays only if
 * the guest's next request comes before the window ends
 * (vbp_window_after_sleep(): the window doubles up to poll-idle-ns, or
 * halves down to none, where the queue serves each kick with one pass
 * and sleeps, as upstream does, until the guest's pace makes polling pay
 * again).
 */
static void vbp_adapt_window(VirtIOBlockPollQueue *q, int64_t slept_ns)
{
    int64_t old = vbp_poll_window(q);
    int64_t w = vbp_window_after_sleep(old, slept_ns, q->dev->poll_idle_ns);

    if (w != old) {
        trace_virtio_blk_poll_window(q->dev, q->index, old, w, slept_ns);
    }
    /* Read by the stats too */
    qatomic_set(&q->window_ns, w);
}

/*
 * Sleep, but not before the guest can see that it must kick: a request
 * that came meanwhile will not kick, so the queue polls on for it.
 * Returns true if the queue sleeps.
 */
static bool vbp_sleep(VirtIOBlockPollQueue *q, int64_t now)
{
    vbp_set_state(q, VBP_QUEUE_SLEEPING, now);
    if (!virtio_queue_empty(q->vq)) {
        vbp_set_state(q, VBP_QUEUE_POLLING, now);
        vbp_again(q);
        return false;
    }
    return true;
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
 * kicks as in any sleep.  If those polling phases catch too few requests
 * (a guest too irregular for them), the queue sleeps until the kick for a
 * while (vbp_hybrid_plan()).  Part of adaptive polling: poll-adaptive=off
 * polls for poll-idle-ns as it says.  Returns true if the queue went to
 * sleep.
 */
static bool vbp_hybrid_sleep(VirtIOBlockPollQueue *q, int64_t now)
{
    VirtIOBlockPoll *d = q->dev;
    int64_t wake, end;
    VBPIdlePlan plan;

    if (!d->poll_hybrid || !d->poll_adaptive || d->busy_poll ||
        q->hybrid_end_ns || !q->hybrid_timer ||
        vbp_guest_polls(q->suppressed)) {
        return false;
    }
    plan = vbp_hybrid_plan(&q->pace, now, &wake, &end);
    if (plan == VBP_IDLE_WINDOW) {
        return false;
    }
    if (plan == VBP_IDLE_SLEEP) {
        trace_virtio_blk_poll_hybrid_skip(q->dev, q->index);
        STAT_ADD(q, timed_skips, 1);
        vbp_sleep(q, now);
        return true;
    }
    if (!vbp_sleep(q, now)) {
        return true;
    }
    vbp_set_state(q, VBP_QUEUE_TIMED_SLEEP, now);
    q->timed_end_ns = end;
    timer_mod_ns(q->hybrid_timer, wake);
    trace_virtio_blk_poll_hybrid_sleep(q->dev, q->index, wake - now);
    STAT_ADD(q, timed_sleeps, 1);
    return true;
}

/*
 * A queue whose guest polls it (vbp_doze_plan()), idle after its poll
 * window: look at the ring again on a timer, notifications still off, so
 * that the guest, spinning on its completions, never needs to kick.
 * Returns true if the queue dozes.
 */
static bool vbp_doze(VirtIOBlockPollQueue *q, int64_t now)
{
    int64_t wake;

    if (!q->dev->poll_adaptive || !q->hybrid_timer ||
        !vbp_doze_plan(q->suppressed, q->last_work_ns, now,
                       q->dev->poll_doze_ns, &wake)) {
        return false;
    }
    vbp_set_state(q, VBP_QUEUE_DOZING, now);
    timer_mod_ns(q->hybrid_timer, wake);
    trace_virtio_blk_poll_doze(q->dev, q->index, wake - now);
    return true;
}

/* poll-hybrid: the guest's next request is due; or a doze ends */
static void vbp_hybrid_timer(void *opaque)
{
    VirtIOBlockPollQueue *q = opaque;
    int64_t now, last_work;
    bool doze;

    if (vbp_polling(q)) {
        return;
    }
    now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    doze = q->state == VBP_QUEUE_DOZING;
    if (!vbp_may_serve(q)) {
        /* Not served now: whoever serves it next needs the kicks */
        if (doze) {
            vbp_set_state(q, VBP_QUEUE_SLEEPING, now);
        }
        return;
    }
    last_work = q->last_work_ns;
    vbp_set_state(q, VBP_QUEUE_POLLING, now);
    if (doze) {
        /* One look: the doze ends poll-doze-ns after the last work */
        q->last_work_ns = last_work;
        STAT_ADD(q, dozes, 1);
    } else {
        q->hybrid_end_ns = MAX(q->timed_end_ns, now + 1);
        trace_virtio_blk_poll_hybrid_wake(q->dev, q->index, "timer");
        STAT_ADD(q, timed_wakeups, 1);
    }
    vbp_pass(q);
}

/* After a pass: go on polling, or sleep */
static void vbp_pass_next(VirtIOBlockPollQueue *q, unsigned n, int64_t now)
{
    VirtIOBlockPoll *d = q->dev;

    if (!vbp_may_serve(q)) {
        if (vbp_polling(q)) {
            vbp_set_state(q, VBP_QUEUE_SLEEPING, now);
        }
        return;
    }

    if (!vbp_polling(q)) {
        /* Interrupt mode, or a pass run to publish completions */
        if (n && (d->busy_poll || d->poll_idle_ns)) {
            vbp_set_state(q, VBP_QUEUE_POLLING, now);
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
        trace_virtio_blk_poll_hybrid_wake(q->dev, q->index, "missed");
        vbp_hybrid_missed(&q->pace);
    } else if (!n && vbp_hybrid_sleep(q, now)) {
        return;
    } else if (d->busy_poll || now - q->last_work_ns < vbp_poll_window(q)) {
        vbp_again(q);
        return;
    }

    /* Idle: doze if the guest polls the queue, else sleep */
    if (!vbp_doze(q, now)) {
        vbp_sleep(q, now);
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
 * see vbp_offer_io_poll()).  The loop returns to the event loop at once
 * when something notifies the context (a bottom half scheduled, a
 * coroutine woken, from any thread: ctx->notified) and after every pass
 * while requests of the queue are in the block layer, so that only file
 * descriptors of other users of the IOThread wait, for at most one slice.
 */
#define VBP_SLICE_NS    (100 * SCALE_US)

void vbp_poll_bh(void *opaque)
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
    if (!vbp_polling(q) && (d->busy_poll || d->poll_idle_ns)) {
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        int64_t slept = qatomic_read(&q->sleep_start_ns);
        bool timed = q->state == VBP_QUEUE_TIMED_SLEEP;

        /*
         * A sleep that poll-hybrid chose says nothing of the window, nor
         * does a doze (a kick the guest armed before it polled)
         */
        if (timed) {
            trace_virtio_blk_poll_hybrid_wake(q->dev, q->index, "kick");
        } else if (slept && q->state != VBP_QUEUE_DOZING) {
            vbp_adapt_window(q, now - slept);
        }
        q->woke_early = timed;
        q->woke_by_kick = true;
        vbp_set_state(q, VBP_QUEUE_POLLING, now);
    } else if (!vbp_polling(q)) {
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

    return !vbp_polling(q) && !virtio_queue_empty(q->vq);
}

static void vbp_io_poll_ready(void *opaque)
{
    vbp_wake(opaque);
}

static void vbp_set_handlers(VirtIOBlockPollQueue *q, AioContext *ctx,
                             bool enable)
{
    int fd = event_notifier_get_fd(virtio_queue_get_host_notifier(q->vq));
    bool with_poll = enable && vbp_offer_io_poll(q, ctx);

    aio_set_fd_handler(ctx, fd, enable ? vbp_kick_read : NULL, NULL,
                       with_poll ? vbp_io_poll : NULL,
                       with_poll ? vbp_io_poll_ready : NULL,
                       enable ? q : NULL);
}

/*
 * Whether the guest gave this queue no interrupt at all: with MSI-X (or
 * the transport's equivalent) enabled and no vector for the queue, as
 * vhost_virtqueue_start() decides that a queue needs no call fd.  Linux
 * gives its virtio_blk poll queues no vector; with EVENT_IDX it leaves
 * their used_event behind, so virtio_notify() still "signals" each time
 * the used index passes it (once per 65536 completions), though nothing
 * reaches the guest.  Such a queue is polled, whatever those signals say.
 * Context: BQL held (the vector and MSI-X state change under it).
 */
static bool vbp_queue_has_no_irq(VirtIOBlockPollQueue *q)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(q->dev);
    BusState *qbus = qdev_get_parent_bus(DEVICE(vdev));
    VirtioBusClass *k = VIRTIO_BUS_GET_CLASS(qbus);

    return k->query_guest_notifiers &&
           k->query_guest_notifiers(qbus->parent) &&
           virtio_queue_vector(vdev, q->index) == VIRTIO_NO_VECTOR;
}

/* Context: BQL held */
void vbp_attach_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx)
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
    /*
     * Rings outside guest RAM never reach here: realize marked the queue
     * as served without the BQL, so virtio refuses them when they are set
     * (virtio_queue_set_served_without_bql()).
     */
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
    /*
     * The next pass resynchronises, no_irq included (release: before
     * attached is seen; vbp_resync())
     */
    qatomic_set(&q->no_irq, vbp_queue_has_no_irq(q));
    qatomic_store_release(&q->attach_gen, q->attach_gen + 1);
    qatomic_set(&q->active, true);
    qatomic_set(&q->attached, true);
    vbp_set_handlers(q, ctx, true);
    /* Look at requests queued while no handler was installed */
    qemu_bh_schedule(q->poll_bh);
}

/* Context: BQL held, drained section begins */
void vbp_detach_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx)
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
    /* Disarms the poll-hybrid timer too */
    vbp_set_state(q, VBP_QUEUE_SLEEPING,
                  qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
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
void vbp_stop_vq(VirtIOBlock *s, VirtQueue *vq, AioContext *ctx)
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

/* What a queue does now, for the stats */
const char *vbp_queue_state(VirtIOBlockPollQueue *q)
{
    if (!qatomic_read(&q->attached)) {
        return qatomic_read(&q->active) ? "drained" : "stopped";
    }
    if (vbp_polling(q)) {
        return "polling";
    }
    switch (qatomic_read(&q->state)) {
    case VBP_QUEUE_TIMED_SLEEP:
        return "timed-sleep";
    case VBP_QUEUE_DOZING:
        return "dozing";
    default:
        return "sleeping";
    }
}
