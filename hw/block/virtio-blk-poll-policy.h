/*
 * virtio-blk-poll: the adaptive policies, apart from the mechanism
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Pure functions: no QOM, no locks, no clock read inside.  The time is
 * an argument (nanoseconds of QEMU_CLOCK_REALTIME in the device, any
 * monotonic count in tests/unit/test-virtio-blk-poll-policy.c), and the
 * state each one learns from lives in a VBPPace that its caller owns
 * (the queue's IOThread, in the device).  The device decides what to do
 * with the answers: hold or signal, sleep or poll.
 */

#ifndef HW_BLOCK_VIRTIO_BLK_POLL_POLICY_H
#define HW_BLOCK_VIRTIO_BLK_POLL_POLICY_H

#include "qemu/timer.h"

/* Parallelism score: fixed point, 0 (lone requests) to VBP_PAR_ONE */
#define VBP_PAR_ONE             256
/* Held (completions, submissions) only from this score up */
#define VBP_PAR_HOLD            (VBP_PAR_ONE / 2)
/* Signals per epoch of the queue depth estimate */
#define VBP_DEPTH_EPOCH         64
/* ns: idle window before the first gap between requests is known */
#define VBP_DEFAULT_GAP_NS      (25 * SCALE_US)
/* ns: poll-adaptive: the first window, and the smallest but none */
#define VBP_WINDOW_START_NS     (4 * SCALE_US)
/* ns: poll-hybrid: longer gaps are the guest pausing, not its pace */
#define VBP_HYBRID_MAX_GAP_NS   (10 * SCALE_MS)
/* ns: poll-hybrid: polls at most this long before and after the due time */
#define VBP_HYBRID_MAX_MARGIN_NS (50 * SCALE_US)
/*
 * ns: poll-hybrid: shorter sleeps are not worth a timer and a wakeup (a
 * guest that polls its own completions comes back sooner than this)
 */
#define VBP_HYBRID_MIN_SLEEP_NS (50 * SCALE_US)
/*
 * poll-hybrid pays only if its polling phases catch the guest's requests:
 * a verdict after each VBP_HYBRID_EPOCH timed sleeps; with fewer than
 * VBP_HYBRID_MIN_HITS requests caught among them, the queue sleeps until
 * the guest kicks, without a timer, for the next VBP_HYBRID_BACKOFF lone
 * requests, then tries again.  Half: a phase polls about half the gap
 * between two requests and a request it catches saves one wakeup, so
 * phases that miss more often than they catch cost the IOThread more
 * CPU than they save the guest latency.
 */
#define VBP_HYBRID_EPOCH        16
#define VBP_HYBRID_MIN_HITS     8
#define VBP_HYBRID_BACKOFF      256

/* What the policies learn of the guest's pace, per queue */
typedef struct VBPPace {
    unsigned par;               /* parallelism score, 0..VBP_PAR_ONE */
    int64_t gap_ns;             /* average gap between requests, 0: none */
    int64_t last_arrival_ns;    /* the last arrival, 0: none yet */
    unsigned depth;             /* most outstanding in the last epoch */
    unsigned depth_epoch_max;   /* most outstanding in this epoch */
    unsigned depth_epoch_signals;
    int64_t lone_gap_ns;        /* empty queue -> next request, 0: unknown */
    int64_t idle_since_ns;      /* nothing in the device since, 0: busy */
    unsigned hybrid_tries;      /* timed sleeps in this epoch */
    unsigned hybrid_hits;       /* of those, requests their polling caught */
    unsigned hybrid_off;        /* lone requests left to sleep through */
} VBPPace;

/* How the requests of an arrival were noticed */
typedef enum VBPArrival {
    VBP_ARRIVAL_POLLED,         /* by polling (or a pass a doze started) */
    VBP_ARRIVAL_TIMED,          /* by a poll-hybrid polling phase: a hit */
    VBP_ARRIVAL_KICK,           /* a kick woke the sleeping queue */
    VBP_ARRIVAL_KICK_EARLY,     /* a kick ended a poll-hybrid sleep */
} VBPArrival;

/*
 * @n requests arrived at @now (one pass), with @outstanding requests of
 * the guest in the device or unsignalled before them.  Learns the
 * parallelism score (quick to believe, slow to forget), the average gap
 * between requests while @polling (only gaps shorter than @gap_limit_ns
 * count, per request of the arrival) and, for a lone request seen by
 * polling, the gap of a guest that waits for each request (at most
 * VBP_HYBRID_MAX_GAP_NS; a kick that ended a poll-hybrid sleep makes it
 * an eighth shorter).  A clock that went back teaches nothing.  The
 * outcome of a poll-hybrid sleep (a hit, or a kick that came early)
 * counts towards vbp_hybrid_plan()'s verdict.  The queue is no longer
 * idle.
 */
void vbp_pace_arrival(VBPPace *p, unsigned n, unsigned outstanding,
                      bool polling, VBPArrival how, int64_t gap_limit_ns,
                      int64_t now);

/* After a pass: whether the guest has requests in the device */
void vbp_pace_busy(VBPPace *p, bool busy, int64_t now);

/*
 * Completions were signalled while the guest had @outstanding requests:
 * the depth estimate is the most it had in the last VBP_DEPTH_EPOCH
 * signals.
 */
void vbp_pace_signalled(VBPPace *p, unsigned outstanding);

/*
 * The one hold rule, for completion interrupts (coalesce-*) and io_uring
 * submissions (uring-batch*): hold while the guest keeps submitting in
 * parallel, within hard bounds.
 */
typedef struct VBPHoldLimits {
    unsigned max_count;         /* release when this many are held */
    int64_t max_ns;             /* release when the oldest waited this long */
    int64_t idle_ns;            /* release after no arrival for this long; */
                                /* 0: twice the average gap (at most max_ns) */
} VBPHoldLimits;

typedef enum VBPHold {
    VBP_HOLD,                   /* keep holding */
    VBP_RELEASE_LONE,           /* the guest is not submitting in parallel */
    VBP_RELEASE_COUNT,          /* max_count held */
    VBP_RELEASE_DEPTH,          /* the guest has all it ever has in flight */
    VBP_RELEASE_TIME,           /* the oldest held waited max_ns */
    VBP_RELEASE_IDLE,           /* no arrival for the idle window */
} VBPHold;

/*
 * Whether to go on holding @count items, the oldest held since
 * @held_since_ns, while the guest has @outstanding requests.  A lone
 * request is never held.  Checked in this order: lone, count, depth,
 * time, idle.
 */
VBPHold vbp_hold_decide(const VBPPace *p, const VBPHoldLimits *lim,
                        unsigned count, unsigned outstanding,
                        int64_t held_since_ns, int64_t now);

/*
 * poll-adaptive: the poll window @window_ns after a sleep of @slept_ns
 * that a kick ended, as QEMU's event loop adapts its own polling
 * (adjust_polling_time()): a kick that a window up to @max_ns would have
 * caught doubles it (from VBP_WINDOW_START_NS, at most @max_ns); one later
 * than @max_ns halves it, down to none at all.
 */
int64_t vbp_window_after_sleep(int64_t window_ns, int64_t slept_ns,
                               int64_t max_ns);

/* What an idle queue does next (poll-hybrid) */
typedef enum VBPIdlePlan {
    VBP_IDLE_WINDOW,            /* no plan: poll for the poll window */
    VBP_IDLE_TIMED,             /* sleep until *wake_ns, poll until *end_ns */
    VBP_IDLE_SLEEP,             /* sleep until the guest kicks */
} VBPIdlePlan;

/*
 * poll-hybrid: a guest that waits for each request before the next leaves
 * the queue empty for about the same time after each completion.  The
 * queue, idle at @now, sleeps on a timer until *@wake_ns and polls from
 * then until *@end_ns (a quarter of the usual gap before and after the
 * due time, at most VBP_HYBRID_MAX_MARGIN_NS each): VBP_IDLE_TIMED.  If
 * such polling phases caught too few requests lately (VBP_HYBRID_EPOCH),
 * it sleeps until the guest kicks instead, VBP_HYBRID_BACKOFF times:
 * VBP_IDLE_SLEEP.  Neither for a guest that submits in parallel, nor for
 * sleeps shorter than VBP_HYBRID_MIN_SLEEP_NS: VBP_IDLE_WINDOW.
 */
VBPIdlePlan vbp_hybrid_plan(VBPPace *p, int64_t now, int64_t *wake_ns,
                            int64_t *end_ns);

/*
 * poll-hybrid: the request the timer woke the queue for did not come in
 * its polling phase: expect the next one an eighth later (at most
 * VBP_HYBRID_MAX_GAP_NS).
 */
void vbp_hybrid_missed(VBPPace *p);

/*
 * A guest that polls a queue for its completions (Linux's
 * virtio_blk.poll_queues with io_uring IOPOLL) wants no interrupt from it:
 * after VBP_POLLED_AFTER signals in a row that used_event or NO_INTERRUPT
 * suppressed, the device takes the queue for a polled one.  Such a guest
 * is waiting, spinning, for what it submitted: a kick to wake the queue
 * only adds to its latency.  So an idle polled queue dozes instead of
 * sleeping: notifications stay off and a timer looks at the ring every
 * VBP_DOZE_NS, for up to poll-doze-ns after the queue's last work;
 * only then does it sleep (one kick wakes it).
 */
#define VBP_POLLED_AFTER        32
#define VBP_DOZE_NS             (50 * SCALE_US)

/* Whether the guest polls the queue, after @suppressed signals in a row */
static inline bool vbp_guest_polls(unsigned suppressed)
{
    return suppressed >= VBP_POLLED_AFTER;
}

/*
 * Whether a queue idle at @now, whose last @suppressed signals in a row
 * were suppressed and whose last work was at @last_work_ns, dozes until
 * *@wake_ns rather than sleeps; it dozes for at most @max_ns (0: never).
 */
bool vbp_doze_plan(unsigned suppressed, int64_t last_work_ns, int64_t now,
                   int64_t max_ns, int64_t *wake_ns);

#endif
