/*
 * virtio-blk-poll: completions of a queue (publishing them to the used
 * ring, holding and signalling them: completion coalescing)
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/rcu.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-blk-poll.h"
#include "virtio-blk-poll-internal.h"
#include "trace.h"

/* Publish filled used elements with one used index update */
void vbp_publish(VirtIOBlockPollQueue *q, int64_t now)
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
unsigned vbp_outstanding(VirtIOBlockPollQueue *q)
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
    vbp_pace_signalled(&q->pace, outstanding);
    q->notify_pending = false;
    q->unsignalled = 0;
    if ((int64_t)(q->taken - q->published) < 0) {
        q->published = q->taken;
    }
    /* A queue without an interrupt signals nothing (vbp_resync()) */
    if (virtio_notify(vdev, q->vq) && !qatomic_read(&q->no_irq)) {
        STAT_ADD(q, notifies, 1);
        q->suppressed = 0;
    } else {
        STAT_ADD(q, notifies_suppressed, 1);
        q->suppressed = MIN(q->suppressed + 1, VBP_POLLED_AFTER);
    }
}

/* What the shared hold rule says, as a reason to signal */
static const VBPSignalReason vbp_signal_reasons[] = {
    [VBP_RELEASE_LONE] = VBP_SIGNAL_LONE,
    [VBP_RELEASE_COUNT] = VBP_SIGNAL_COUNT,
    [VBP_RELEASE_DEPTH] = VBP_SIGNAL_DEPTH,
    [VBP_RELEASE_TIME] = VBP_SIGNAL_TIME,
    [VBP_RELEASE_IDLE] = VBP_SIGNAL_IDLE,
};

/*
 * Whether to signal the completions published so far now, and why; -1 to
 * hold them (vbp_hold_decide(): while the guest keeps submitting in
 * parallel, within coalesce-max and coalesce-max-ns, until the guest
 * waits for them or stops submitting).  Only while the queue polls: a
 * queue that stops polling (idle, detached, stopped) signals everything
 * first, and the polling passes check the bounds, so nothing waits for a
 * later request.
 */
static int vbp_signal_decide(VirtIOBlockPollQueue *q, int64_t now,
                             bool polling)
{
    VirtIOBlockPoll *d = q->dev;
    VBPHoldLimits lim = {
        .max_count = d->coalesce_max,
        .max_ns = d->coalesce_max_ns,
        .idle_ns = d->coalesce_idle_ns,
    };
    VBPHold hold;

    if (!polling || !d->coalesce || d->coalesce_max <= 1) {
        return VBP_SIGNAL_FORCED;
    }
    hold = vbp_hold_decide(&q->pace, &lim, q->unsignalled,
                           vbp_outstanding(q), q->hold_start_ns, now);
    return hold == VBP_HOLD ? -1 : vbp_signal_reasons[hold];
}

/* Publish, and signal now or hold (polling: the queue keeps polling) */
void vbp_flush(VirtIOBlockPollQueue *q, int64_t now, bool polling)
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

/* Context: the thread that completes the request */
void vbp_push_request(VirtIOBlockReq *req)
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
