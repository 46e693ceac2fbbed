/*
 * virtio-blk-poll: the adaptive policies, apart from the mechanism
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * See virtio-blk-poll-policy.h.  Interrupts are the guest's most
 * expensive exit, and a system call per request the host's: while the
 * guest keeps submitting, completions and submissions are held and
 * released together, as NIC interrupt moderation and NVMe interrupt
 * aggregation do, within hard bounds; a lone request never waits.
 */

#include "qemu/osdep.h"
#include "virtio-blk-poll-policy.h"

/*
 * poll-hybrid: one timed sleep's outcome; after VBP_HYBRID_EPOCH of them,
 * the verdict
 */
static void vbp_hybrid_outcome(VBPPace *p, bool hit)
{
    p->hybrid_hits += hit;
    if (++p->hybrid_tries < VBP_HYBRID_EPOCH) {
        return;
    }
    if (p->hybrid_hits < VBP_HYBRID_MIN_HITS) {
        p->hybrid_off = VBP_HYBRID_BACKOFF;
    }
    p->hybrid_tries = 0;
    p->hybrid_hits = 0;
}

void vbp_pace_arrival(VBPPace *p, unsigned n, unsigned outstanding,
                      bool polling, VBPArrival how, int64_t gap_limit_ns,
                      int64_t now)
{
    bool parallel = n > 1 || outstanding > 0;

    /*
     * Quick to believe, slow to forget: while completions are signalled
     * at once, a guest that would submit more while it waits shows it
     * only now and then (a pass that finds several requests), and a QD1
     * guest never does.
     */
    if (parallel) {
        p->par += (VBP_PAR_ONE - p->par) / 2;
    } else {
        p->par -= p->par / 32;
    }
    if (polling && p->last_arrival_ns && now >= p->last_arrival_ns &&
        now - p->last_arrival_ns < gap_limit_ns) {
        int64_t gap = (now - p->last_arrival_ns) / n;

        p->gap_ns += (gap - p->gap_ns) / 8;
    }
    p->last_arrival_ns = now;
    /*
     * The gap of a guest that waits for each request before the next.
     * Only a request seen by polling shows when it came; one that kicked
     * a queue asleep on the poll-hybrid timer came earlier than expected
     * by an unknown time (the wakeup's latency is in @now), so the gap
     * expected shrinks by an eighth.
     */
    if (how == VBP_ARRIVAL_KICK_EARLY) {
        p->lone_gap_ns -= p->lone_gap_ns / 8;
        vbp_hybrid_outcome(p, false);
    } else if (how == VBP_ARRIVAL_TIMED) {
        vbp_hybrid_outcome(p, true);
    }
    if ((how == VBP_ARRIVAL_POLLED || how == VBP_ARRIVAL_TIMED) &&
        !parallel && p->idle_since_ns) {
        int64_t gap = now - p->idle_since_ns;

        if (gap >= 0 && gap <= VBP_HYBRID_MAX_GAP_NS) {
            p->lone_gap_ns = p->lone_gap_ns ?
                p->lone_gap_ns + (gap - p->lone_gap_ns) / 8 : gap;
        }
    }
    p->idle_since_ns = 0;
}

void vbp_pace_busy(VBPPace *p, bool busy, int64_t now)
{
    if (busy) {
        p->idle_since_ns = 0;
    } else if (!p->idle_since_ns) {
        p->idle_since_ns = now;
    }
}

void vbp_pace_signalled(VBPPace *p, unsigned outstanding)
{
    p->depth_epoch_max = MAX(p->depth_epoch_max, outstanding);
    if (++p->depth_epoch_signals == VBP_DEPTH_EPOCH) {
        p->depth = p->depth_epoch_max;
        p->depth_epoch_max = 0;
        p->depth_epoch_signals = 0;
    }
}

VBPHold vbp_hold_decide(const VBPPace *p, const VBPHoldLimits *lim,
                        unsigned count, unsigned outstanding,
                        int64_t held_since_ns, int64_t now)
{
    int64_t window;

    if (p->par < VBP_PAR_HOLD) {
        return VBP_RELEASE_LONE;
    }
    if (count >= lim->max_count) {
        return VBP_RELEASE_COUNT;
    }
    /* As many outstanding as it had at most lately: it waits for them */
    if (p->depth > 1 && outstanding >= p->depth) {
        return VBP_RELEASE_DEPTH;
    }
    if (now - held_since_ns >= lim->max_ns) {
        return VBP_RELEASE_TIME;
    }
    /* No new request for about twice its usual gap: it stopped */
    window = lim->idle_ns ? lim->idle_ns :
             2 * (p->gap_ns ? p->gap_ns : VBP_DEFAULT_GAP_NS);
    window = MIN(window, lim->max_ns);
    if (now - p->last_arrival_ns >= window) {
        return VBP_RELEASE_IDLE;
    }
    return VBP_HOLD;
}

int64_t vbp_window_after_sleep(int64_t window_ns, int64_t slept_ns,
                               int64_t max_ns)
{
    if (slept_ns > max_ns) {
        return window_ns / 2 >= VBP_WINDOW_START_NS ? window_ns / 2 : 0;
    }
    if (slept_ns > window_ns) {
        return MIN(window_ns ? window_ns * 2 : VBP_WINDOW_START_NS, max_ns);
    }
    return window_ns;
}

VBPIdlePlan vbp_hybrid_plan(VBPPace *p, int64_t now, int64_t *wake_ns,
                            int64_t *end_ns)
{
    int64_t gap = p->lone_gap_ns;
    int64_t margin = MIN(gap / 4, VBP_HYBRID_MAX_MARGIN_NS);
    int64_t wake;

    if (!gap || p->par >= VBP_PAR_HOLD || !p->idle_since_ns) {
        return VBP_IDLE_WINDOW;
    }
    wake = p->idle_since_ns + gap - margin;
    if (wake - now < VBP_HYBRID_MIN_SLEEP_NS) {
        return VBP_IDLE_WINDOW;
    }
    /*
     * A guest whose pace is too irregular for the polling phase to catch
     * its requests (under TCG, say) gains nothing from the polling, and
     * the kick costs it no more than it would after the timed sleep
     */
    if (p->hybrid_off) {
        p->hybrid_off--;
        return VBP_IDLE_SLEEP;
    }
    *wake_ns = wake;
    *end_ns = wake + 2 * margin;
    return VBP_IDLE_TIMED;
}

void vbp_hybrid_missed(VBPPace *p)
{
    /* Longer gaps are pauses, and misses must not grow it for ever */
    p->lone_gap_ns = MIN(p->lone_gap_ns + p->lone_gap_ns / 8,
                         VBP_HYBRID_MAX_GAP_NS);
    vbp_hybrid_outcome(p, false);
}

bool vbp_doze_plan(unsigned suppressed, int64_t last_work_ns, int64_t now,
                   int64_t max_ns, int64_t *wake_ns)
{
    /* A clock that went back: as if the work was now */
    int64_t idle = MAX(now - last_work_ns, 0);

    if (!vbp_guest_polls(suppressed) || idle >= max_ns) {
        return false;
    }
    *wake_ns = now + VBP_DOZE_NS;
    return true;
}
