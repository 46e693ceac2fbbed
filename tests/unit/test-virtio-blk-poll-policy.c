/*
 * virtio-blk-poll policies on a fake clock
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every decision of hw/block/virtio-blk-poll-policy.c with the time as
 * an argument: exact outcomes, exact bounds, no sleeping.
 */

#include "qemu/osdep.h"
#include "hw/block/virtio-blk-poll-policy.h"

#define US  SCALE_US
#define MS  SCALE_MS
/* poll-hybrid's plan at @now, its times in the caller's wake and end */
#define PLAN(p, now)  vbp_hybrid_plan(p, now, &wake, &end)
/* Some time after boot: any positive start works */
#define T0  (1000 * MS)
/* The device's gap limit: coalesce-max-ns by default */
#define LIMIT (500 * US)

static const VBPHoldLimits coalesce = {
    .max_count = 16, .max_ns = 500 * US, .idle_ns = 0,
};

/*
 * @n arrivals of one request, @gap_ns apart from @t on, seen by polling,
 * each with @outstanding requests before it; returns the last one's time
 */
static int64_t arrivals(VBPPace *p, int n, unsigned outstanding,
                        int64_t gap_ns, int64_t t)
{
    for (int i = 0; i < n; i++) {
        vbp_pace_arrival(p, 1, outstanding, true, VBP_ARRIVAL_POLLED,
                         LIMIT, t);
        t += gap_ns;
    }
    return t - gap_ns;
}

/* Parallelism: quick to believe, slow to forget */
static void test_par(void)
{
    VBPPace p = { };

    vbp_pace_arrival(&p, 2, 0, true, VBP_ARRIVAL_POLLED, LIMIT, T0);
    g_assert_cmpuint(p.par, ==, VBP_PAR_ONE / 2);
    vbp_pace_arrival(&p, 1, 3, true, VBP_ARRIVAL_POLLED, LIMIT, T0 + US);
    g_assert_cmpuint(p.par, ==, VBP_PAR_ONE * 3 / 4);
    /* Lone arrivals take it down by a 32nd each: 14 to the threshold */
    for (int i = 0; i < 14; i++) {
        vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT,
                         T0 + (2 + i) * US);
    }
    g_assert_cmpuint(p.par, ==, VBP_PAR_HOLD);
    vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT, T0 + 30 * US);
    g_assert_cmpuint(p.par, <, VBP_PAR_HOLD);
    /* One parallel arrival and it holds again */
    vbp_pace_arrival(&p, 1, 1, true, VBP_ARRIVAL_POLLED, LIMIT, T0 + 31 * US);
    g_assert_cmpuint(p.par, >=, VBP_PAR_HOLD);
}

/* The gap between requests: per request, only while polling, bounded */
static void test_gap(void)
{
    VBPPace p = { };

    /* The first arrival has no gap */
    vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT, T0);
    g_assert_cmpint(p.gap_ns, ==, 0);
    g_assert_cmpint(p.last_arrival_ns, ==, T0);
    /* 80 us later, 2 requests: 40 us each, an eighth of the way */
    vbp_pace_arrival(&p, 2, 0, true, VBP_ARRIVAL_POLLED, LIMIT, T0 + 80 * US);
    g_assert_cmpint(p.gap_ns, ==, 40 * US / 8);
    /* Not polling: no gap learnt, but the arrival counts */
    vbp_pace_arrival(&p, 1, 0, false, VBP_ARRIVAL_KICK, LIMIT, T0 + 90 * US);
    g_assert_cmpint(p.gap_ns, ==, 40 * US / 8);
    g_assert_cmpint(p.last_arrival_ns, ==, T0 + 90 * US);
    /* A gap of the limit or more is a pause */
    vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT,
                     T0 + 90 * US + LIMIT);
    g_assert_cmpint(p.gap_ns, ==, 40 * US / 8);
    /* Converges on a steady pace */
    arrivals(&p, 200, 1, 10 * US, T0 + MS);
    g_assert_cmpint(p.gap_ns, >=, 10 * US - 8);
    g_assert_cmpint(p.gap_ns, <=, 10 * US + 8);
}

/* The clock going back teaches nothing */
static void test_clock_back(void)
{
    VBPPace p = { };
    int64_t gap, lone;

    arrivals(&p, 50, 0, 20 * US, T0);
    gap = p.gap_ns;
    lone = p.lone_gap_ns;

    vbp_pace_busy(&p, false, T0 + 2 * MS);
    vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT, T0);
    g_assert_cmpint(p.gap_ns, ==, gap);
    g_assert_cmpint(p.lone_gap_ns, ==, lone);
    g_assert_cmpint(p.gap_ns, >=, 0);
}

/* The lone gap: learnt from polled lone requests only */
static void test_lone_gap(void)
{
    VBPPace p = { };

    vbp_pace_busy(&p, false, T0);
    g_assert_cmpint(p.idle_since_ns, ==, T0);
    /* Still idle: the start stays */
    vbp_pace_busy(&p, false, T0 + US);
    g_assert_cmpint(p.idle_since_ns, ==, T0);
    vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT,
                     T0 + 200 * US);
    g_assert_cmpint(p.lone_gap_ns, ==, 200 * US);
    g_assert_cmpint(p.idle_since_ns, ==, 0);
    /* Then an eighth of the way to each new one */
    vbp_pace_busy(&p, false, T0 + MS);
    vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT,
                     T0 + MS + 280 * US);
    g_assert_cmpint(p.lone_gap_ns, ==, 210 * US);
    /* A kick after a plain sleep says nothing of it */
    vbp_pace_busy(&p, false, T0 + 2 * MS);
    vbp_pace_arrival(&p, 1, 0, false, VBP_ARRIVAL_KICK, LIMIT, T0 + 3 * MS);
    g_assert_cmpint(p.lone_gap_ns, ==, 210 * US);
    /* Nor does a parallel arrival, nor a pause of more than 10 ms */
    vbp_pace_busy(&p, false, T0 + 4 * MS);
    vbp_pace_arrival(&p, 2, 0, true, VBP_ARRIVAL_POLLED, LIMIT,
                     T0 + 4 * MS + 50 * US);
    g_assert_cmpint(p.lone_gap_ns, ==, 210 * US);
    p.par = 0;
    vbp_pace_busy(&p, false, T0 + 5 * MS);
    vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT,
                     T0 + 5 * MS + VBP_HYBRID_MAX_GAP_NS + 1);
    g_assert_cmpint(p.lone_gap_ns, ==, 210 * US);
    /* A kick that ended a poll-hybrid sleep: it came early, an 8th less */
    vbp_pace_busy(&p, false, T0 + 20 * MS);
    vbp_pace_arrival(&p, 1, 0, false, VBP_ARRIVAL_KICK_EARLY, LIMIT,
                     T0 + 20 * MS + 100 * US);
    g_assert_cmpint(p.lone_gap_ns, ==, 210 * US - 210 * US / 8);
}

/* The depth estimate: the most outstanding over an epoch of signals */
static void test_depth(void)
{
    VBPPace p = { };

    for (int i = 0; i < VBP_DEPTH_EPOCH - 1; i++) {
        vbp_pace_signalled(&p, i == 10 ? 32 : 4);
    }
    g_assert_cmpuint(p.depth, ==, 0);
    vbp_pace_signalled(&p, 4);
    g_assert_cmpuint(p.depth, ==, 32);
    /* The next epoch forgets */
    for (int i = 0; i < VBP_DEPTH_EPOCH; i++) {
        vbp_pace_signalled(&p, 8);
    }
    g_assert_cmpuint(p.depth, ==, 8);
}

/* A guest that submits in parallel, last request at @t, gap 10 us */
static VBPPace parallel_guest(int64_t t)
{
    VBPPace p = { .par = VBP_PAR_ONE, .gap_ns = 10 * US,
                  .last_arrival_ns = t, .depth = 32 };

    return p;
}

/* A lone request is never held, whatever else holds */
static void test_hold_lone(void)
{
    VBPPace p = parallel_guest(T0);

    p.par = VBP_PAR_HOLD - 1;
    g_assert_cmpint(vbp_hold_decide(&p, &coalesce, 1, 1, T0, T0), ==,
                    VBP_RELEASE_LONE);
    p.par = VBP_PAR_HOLD;
    g_assert_cmpint(vbp_hold_decide(&p, &coalesce, 1, 1, T0, T0), ==,
                    VBP_HOLD);
}

/* One decision: the pace, the limits, and what is held */
typedef struct HoldCase {
    const char *what;
    unsigned depth;             /* the guest's depth estimate */
    int64_t gap_ns;             /* its average gap */
    int64_t last_ns;            /* its last arrival, after T0 */
    const VBPHoldLimits *lim;
    unsigned count, outstanding;
    int64_t since_ns, now_ns;   /* the oldest held, now: after T0 */
    VBPHold expect;
} HoldCase;

static void check_holds(const HoldCase *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        VBPPace p = {
            .par = VBP_PAR_ONE, .gap_ns = c[i].gap_ns,
            .last_arrival_ns = T0 + c[i].last_ns, .depth = c[i].depth,
        };

        g_test_message("%s", c[i].what);
        g_assert_cmpint(vbp_hold_decide(&p, c[i].lim, c[i].count,
                                        c[i].outstanding, T0 + c[i].since_ns,
                                        T0 + c[i].now_ns), ==, c[i].expect);
    }
}

/* Count, depth and time bounds, hit exactly, and their order */
static void test_hold_bounds(void)
{
    static const HoldCase c[] = {
        { "below every bound", 32, 10 * US, 0, &coalesce, 15, 20, 0, 0,
          VBP_HOLD },
        { "count", 32, 10 * US, 0, &coalesce, 16, 20, 0, 0,
          VBP_RELEASE_COUNT },
        { "below the depth", 32, 10 * US, 0, &coalesce, 4, 31, 0, 0,
          VBP_HOLD },
        { "depth", 32, 10 * US, 0, &coalesce, 4, 32, 0, 0,
          VBP_RELEASE_DEPTH },
        { "no depth known", 1, 10 * US, 0, &coalesce, 4, 32, 0, 0,
          VBP_HOLD },
        { "1 ns before the time bound", 1, 10 * US, 500 * US - 1, &coalesce,
          4, 8, 0, 500 * US - 1, VBP_HOLD },
        { "time", 1, 10 * US, 500 * US - 1, &coalesce, 4, 8, 0, 500 * US,
          VBP_RELEASE_TIME },
        { "count before depth", 8, 10 * US, 500 * US - 1, &coalesce, 16, 8,
          0, 500 * US, VBP_RELEASE_COUNT },
        { "depth before time", 8, 10 * US, 500 * US - 1, &coalesce, 4, 8,
          0, 500 * US, VBP_RELEASE_DEPTH },
    };

    check_holds(c, ARRAY_SIZE(c));
}

/* The idle window: twice the gap, a fixed one, at most max_ns */
static void test_hold_idle(void)
{
    static const VBPHoldLimits fixed = {
        .max_count = 16, .max_ns = 500 * US, .idle_ns = 100 * US,
    };
    static const VBPHoldLimits short_max = {
        .max_count = 16, .max_ns = MS,
    };
    static const HoldCase c[] = {
        { "1 ns before twice the gap", 32, 10 * US, 0, &coalesce, 4, 8, 0,
          20 * US - 1, VBP_HOLD },
        { "twice the gap", 32, 10 * US, 0, &coalesce, 4, 8, 0, 20 * US,
          VBP_RELEASE_IDLE },
        { "no gap known: 1 ns before twice the default", 32, 0, 0,
          &coalesce, 4, 8, 0, 2 * VBP_DEFAULT_GAP_NS - 1, VBP_HOLD },
        { "no gap known: twice the default", 32, 0, 0, &coalesce, 4, 8, 0,
          2 * VBP_DEFAULT_GAP_NS, VBP_RELEASE_IDLE },
        { "fixed window, 1 ns before", 32, 10 * US, 0, &fixed, 4, 8, 0,
          100 * US - 1, VBP_HOLD },
        { "fixed window", 32, 10 * US, 0, &fixed, 4, 8, 0, 100 * US,
          VBP_RELEASE_IDLE },
        { "a slow guest's window cut at max_ns, 1 ns before", 32, 600 * US,
          0, &short_max, 4, 8, MS, MS - 1, VBP_HOLD },
        { "a slow guest's window cut at max_ns", 32, 600 * US, 0,
          &short_max, 4, 8, MS, MS, VBP_RELEASE_IDLE },
    };

    check_holds(c, ARRAY_SIZE(c));
}

/* The same rule holds submissions (uring-batch, uring-batch-ns) */
static void test_hold_submissions(void)
{
    static const VBPHoldLimits batch = { .max_count = 8, .max_ns = 100 * US };
    static const HoldCase c[] = {
        { "7 SQEs", 32, 10 * US, 0, &batch, 7, 8, 0, 0, VBP_HOLD },
        { "8 SQEs", 32, 10 * US, 0, &batch, 8, 8, 0, 0, VBP_RELEASE_COUNT },
        { "held 100 us", 32, 10 * US, 99 * US, &batch, 2, 8, 0, 100 * US,
          VBP_RELEASE_TIME },
    };

    check_holds(c, ARRAY_SIZE(c));
}

/* poll-adaptive: growth, shrink, bounds */
static void test_window(void)
{
    const int64_t max = 200 * US;

    /* A kick the window would have caught: from the start, doubling */
    g_assert_cmpint(vbp_window_after_sleep(0, 10 * US, max), ==,
                    VBP_WINDOW_START_NS);
    g_assert_cmpint(vbp_window_after_sleep(4 * US, 10 * US, max), ==,
                    8 * US);
    g_assert_cmpint(vbp_window_after_sleep(128 * US, 150 * US, max), ==,
                    max);
    /* Within the window: unchanged */
    g_assert_cmpint(vbp_window_after_sleep(64 * US, 30 * US, max), ==,
                    64 * US);
    g_assert_cmpint(vbp_window_after_sleep(64 * US, 64 * US, max), ==,
                    64 * US);
    /* Later than the maximum: halved, down to none */
    g_assert_cmpint(vbp_window_after_sleep(max, max + 1, max), ==,
                    max / 2);
    g_assert_cmpint(vbp_window_after_sleep(8 * US, MS, max), ==,
                    VBP_WINDOW_START_NS);
    g_assert_cmpint(vbp_window_after_sleep(VBP_WINDOW_START_NS, MS, max),
                    ==, 0);
    g_assert_cmpint(vbp_window_after_sleep(0, MS, max), ==, 0);
    /* A kick right at the maximum still counts as caught */
    g_assert_cmpint(vbp_window_after_sleep(64 * US, max, max), ==,
                    128 * US);
}

/* poll-hybrid: the plan, early and late */
static void test_hybrid(void)
{
    VBPPace p = { .lone_gap_ns = 400 * US, .idle_since_ns = T0 };
    int64_t wake = 0, end = 0;

    /* margin: a quarter of the gap, at most 50 us */
    g_assert_cmpint(PLAN(&p, T0), ==, VBP_IDLE_TIMED);
    g_assert_cmpint(wake, ==, T0 + 350 * US);
    g_assert_cmpint(end, ==, T0 + 450 * US);
    p.lone_gap_ns = 120 * US;
    g_assert_cmpint(PLAN(&p, T0), ==, VBP_IDLE_TIMED);
    g_assert_cmpint(wake, ==, T0 + 90 * US);
    g_assert_cmpint(end, ==, T0 + 150 * US);
    /* Not worth a timer: less than 50 us of sleep left */
    g_assert_cmpint(PLAN(&p, T0 + 40 * US), ==, VBP_IDLE_TIMED);
    g_assert_cmpint(PLAN(&p, T0 + 40 * US + 1), ==, VBP_IDLE_WINDOW);
    /* Nothing known, busy, or a parallel guest: no plan */
    p.lone_gap_ns = 0;
    g_assert_cmpint(PLAN(&p, T0), ==, VBP_IDLE_WINDOW);
    p.lone_gap_ns = 400 * US;
    p.idle_since_ns = 0;
    g_assert_cmpint(PLAN(&p, T0), ==, VBP_IDLE_WINDOW);
    p.idle_since_ns = T0;
    p.par = VBP_PAR_HOLD;
    g_assert_cmpint(PLAN(&p, T0), ==, VBP_IDLE_WINDOW);
    p.par = 0;

    /* Woken late (the request did not come): an 8th later next time */
    vbp_hybrid_missed(&p);
    g_assert_cmpint(p.lone_gap_ns, ==, 450 * US);
    /* Woken early (a kick came first): an 8th sooner */
    vbp_pace_arrival(&p, 1, 0, false, VBP_ARRIVAL_KICK_EARLY, LIMIT,
                     T0 + 100 * US);
    g_assert_cmpint(p.lone_gap_ns, ==, 450 * US - 450 * US / 8);
}

/*
 * A polled queue dozes (no kick needed) from its VBP_POLLED_AFTER-th
 * suppressed signal in a row until poll-doze-ns after its last work
 */
static void test_doze(void)
{
    const int64_t max = 10 * MS;
    int64_t wake = 0;

    g_assert_false(vbp_doze_plan(VBP_POLLED_AFTER - 1, T0, T0, max, &wake));
    g_assert_cmpint(wake, ==, 0);
    g_assert_true(vbp_doze_plan(VBP_POLLED_AFTER, T0, T0, max, &wake));
    g_assert_cmpint(wake, ==, T0 + VBP_DOZE_NS);
    g_assert_true(vbp_doze_plan(VBP_POLLED_AFTER, T0, T0 + max - 1, max,
                                &wake));
    g_assert_cmpint(wake, ==, T0 + max - 1 + VBP_DOZE_NS);
    g_assert_false(vbp_doze_plan(VBP_POLLED_AFTER, T0, T0 + max, max,
                                 &wake));
    /* poll-doze-ns=0: never */
    g_assert_false(vbp_doze_plan(VBP_POLLED_AFTER, T0, T0, 0, &wake));
    /* The clock went back: dozing, from now */
    g_assert_true(vbp_doze_plan(UINT_MAX, T0, T0 - 5 * MS, max, &wake));
    g_assert_cmpint(wake, ==, T0 - 5 * MS + VBP_DOZE_NS);
    /* No overflow at the end of time */
    g_assert_false(vbp_doze_plan(VBP_POLLED_AFTER, 0, INT64_MAX, max,
                                 &wake));
}

/* Misses cannot grow the lone gap past a pause, nor overflow it */
static void test_hybrid_overflow(void)
{
    VBPPace p = { .lone_gap_ns = 400 * US, .idle_since_ns = T0 };
    int64_t wake, end;

    for (int i = 0; i < 1000; i++) {
        vbp_hybrid_missed(&p);
    }
    g_assert_cmpint(p.lone_gap_ns, ==, VBP_HYBRID_MAX_GAP_NS);
    /* (They stopped the timed sleeps too: hybrid/pays) */
    g_assert_cmpint(p.hybrid_off, ==, VBP_HYBRID_BACKOFF);
    p.hybrid_off = 0;
    g_assert_cmpint(PLAN(&p, T0), ==, VBP_IDLE_TIMED);
    g_assert_cmpint(wake, ==, T0 + VBP_HYBRID_MAX_GAP_NS -
                    VBP_HYBRID_MAX_MARGIN_NS);
    /* Far in the clock's future, the arithmetic holds */
    p.idle_since_ns = INT64_MAX / 2;
    g_assert_cmpint(PLAN(&p, INT64_MAX / 2), ==, VBP_IDLE_TIMED);
    g_assert_cmpint(end - wake, ==, 2 * VBP_HYBRID_MAX_MARGIN_NS);
}

/*
 * One request of a QD1 guest, idle from *@t: the plan, then the request,
 * caught by the timed polling phase if @hit, else alternately (@i) after
 * the phase found nothing or by a kick before it; after a plain sleep,
 * by a kick.  Served in 5 us.
 */
static VBPIdlePlan lone_request(VBPPace *p, int64_t *t, bool hit, int i)
{
    int64_t wake, end;
    VBPIdlePlan plan;

    vbp_pace_busy(p, false, *t);
    plan = PLAN(p, *t);
    if (plan != VBP_IDLE_TIMED) {
        *t += 400 * US;
        vbp_pace_arrival(p, 1, 0, false, VBP_ARRIVAL_KICK, LIMIT, *t);
    } else if (hit) {
        *t = (wake + end) / 2;
        vbp_pace_arrival(p, 1, 0, true, VBP_ARRIVAL_TIMED, LIMIT, *t);
    } else if (i % 2) {
        vbp_hybrid_missed(p);
        *t = end + 100 * US;
        vbp_pace_arrival(p, 1, 0, false, VBP_ARRIVAL_KICK, LIMIT, *t);
    } else {
        *t += 10 * US;
        vbp_pace_arrival(p, 1, 0, false, VBP_ARRIVAL_KICK_EARLY, LIMIT, *t);
    }
    *t += 5 * US;
    return plan;
}

/*
 * poll-hybrid pays or not: with fewer than VBP_HYBRID_MIN_HITS (8) of
 * VBP_HYBRID_EPOCH (16) timed sleeps' requests caught, the next
 * VBP_HYBRID_BACKOFF lone requests sleep until their kick, then it tries
 * again
 */
static void test_hybrid_pays(void)
{
    QEMU_BUILD_BUG_ON(VBP_HYBRID_EPOCH % VBP_HYBRID_MIN_HITS);

    VBPPace p = { .lone_gap_ns = 400 * US };
    int64_t t = T0;

    /* Exactly VBP_HYBRID_MIN_HITS hits, spread out: it pays, still timed */
    for (int i = 0; i < VBP_HYBRID_EPOCH; i++) {
        bool hit = i % (VBP_HYBRID_EPOCH / VBP_HYBRID_MIN_HITS) == 0;

        g_assert_cmpint(lone_request(&p, &t, hit, i), ==, VBP_IDLE_TIMED);
    }
    g_assert_cmpint(p.hybrid_off, ==, 0);
    /* One fewer: it does not */
    for (int i = 0; i < VBP_HYBRID_EPOCH; i++) {
        bool hit = i % (VBP_HYBRID_EPOCH / VBP_HYBRID_MIN_HITS) == 0 && i;

        g_assert_cmpint(lone_request(&p, &t, hit, i), ==, VBP_IDLE_TIMED);
    }
    g_assert_cmpint(p.hybrid_off, ==, VBP_HYBRID_BACKOFF);
    g_assert_cmpint(p.hybrid_tries, ==, 0);
    /* Kicks while it sleeps through are no timed sleeps' outcomes */
    for (int i = 0; i < VBP_HYBRID_BACKOFF; i++) {
        g_assert_cmpint(lone_request(&p, &t, true, i), ==, VBP_IDLE_SLEEP);
    }
    g_assert_cmpint(p.hybrid_tries, ==, 0);
    g_assert_cmpint(lone_request(&p, &t, true, 0), ==, VBP_IDLE_TIMED);
    g_assert_cmpint(p.hybrid_tries, ==, 1);
    g_assert_cmpint(p.hybrid_hits, ==, 1);
    /* A parallel guest or a short gap: the window, and no backoff used */
    p.hybrid_off = 1;
    p.par = VBP_PAR_HOLD;
    g_assert_cmpint(lone_request(&p, &t, true, 0), ==, VBP_IDLE_WINDOW);
    g_assert_cmpint(p.hybrid_off, ==, 1);
}

/* A QD1 guest end to end: never held, learns its lone gap, sleeps */
static void test_qd1_guest(void)
{
    VBPPace p = { };
    int64_t t = T0, wake, end;

    for (int i = 0; i < 64; i++) {
        vbp_pace_arrival(&p, 1, 0, true, VBP_ARRIVAL_POLLED, LIMIT, t);
        g_assert_cmpint(vbp_hold_decide(&p, &coalesce, 1, 1, t, t + 5 * US),
                        ==, VBP_RELEASE_LONE);
        vbp_pace_busy(&p, false, t + 5 * US);
        t += 305 * US;
    }
    g_assert_cmpint(p.lone_gap_ns, >=, 299 * US);
    g_assert_cmpint(p.lone_gap_ns, <=, 300 * US);
    g_assert_cmpint(PLAN(&p, t - 300 * US), ==, VBP_IDLE_TIMED);
    g_assert_cmpint(wake, <, t);
    g_assert_cmpint(end, >, t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/virtio-blk-poll-policy/pace/par", test_par);
    g_test_add_func("/virtio-blk-poll-policy/pace/gap", test_gap);
    g_test_add_func("/virtio-blk-poll-policy/pace/clock-back",
                    test_clock_back);
    g_test_add_func("/virtio-blk-poll-policy/pace/lone-gap", test_lone_gap);
    g_test_add_func("/virtio-blk-poll-policy/pace/depth", test_depth);
    g_test_add_func("/virtio-blk-poll-policy/hold/lone", test_hold_lone);
    g_test_add_func("/virtio-blk-poll-policy/hold/bounds", test_hold_bounds);
    g_test_add_func("/virtio-blk-poll-policy/hold/idle", test_hold_idle);
    g_test_add_func("/virtio-blk-poll-policy/hold/submissions",
                    test_hold_submissions);
    g_test_add_func("/virtio-blk-poll-policy/window", test_window);
    g_test_add_func("/virtio-blk-poll-policy/hybrid/plan", test_hybrid);
    g_test_add_func("/virtio-blk-poll-policy/hybrid/overflow",
                    test_hybrid_overflow);
    g_test_add_func("/virtio-blk-poll-policy/hybrid/pays", test_hybrid_pays);
    g_test_add_func("/virtio-blk-poll-policy/qd1-guest", test_qd1_guest);
    g_test_add_func("/virtio-blk-poll-policy/doze", test_doze);
    return g_test_run();
}
