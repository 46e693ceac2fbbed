/*
 * virtio-blk-poll qtests: completion coalescing
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Completion coalescing: one interrupt for many, never for a lone request.
 */

#include "qemu/osdep.h"
#include "framework.h"

/* Count the MSI-X messages of @vq that arrive within @wait_us */
static int vbp_count_msix(VbpTest *t, QVirtQueue *vq, int64_t wait_us)
{
    gint64 end = g_get_monotonic_time() + wait_us;
    int n = 0;

    while (g_get_monotonic_time() < end) {
        if (t->dev->bus->get_queue_isr_status(t->dev, vq)) {
            n++;
        }
        g_usleep(100);
    }
    return n;
}

/* Publish @n read requests at once, then check and free them */
static void vbp_burst(VbpTest *t, QVirtQueue *vq, int n, uint64_t *addr)
{
    vbp_reads_at_once(t, vq, n, 1, 512, addr);
    for (int i = 0; i < n; i++) {
        g_assert_cmpint(vbp_status(t, addr[i], 512), ==, VIRTIO_BLK_S_OK);
        guest_free(&t->qs->alloc, addr[i]);
    }
    vbp_reset_descs(vq);
}

/*
 * A burst is taken in one pass, published with one used index update and
 * signalled with one interrupt: the counters and the MSI-X messages the
 * guest receives agree.  null-co completes inline, within the pass.
 */
static void test_batch_one_irq(void)
{
    VbpTest *t = vbp_boot_args("null", true, "\"poll-idle-ns\": 1000000", 1,
                               1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];
    uint64_t addr[32];
    uint64_t notifies = 0, suppressed;

    for (int round = 1; round <= 3; round++) {
        uint64_t updates = vbp_stat(t->qts, 0, "used-updates");

        vbp_burst(t, vq, 32, addr);
        g_assert_cmpint(vbp_count_msix(t, vq, 50 * 1000), ==, 1);
        notifies = vbp_stat(t->qts, 0, "notifies");
        g_assert_cmpint(notifies, ==, round);
        g_assert_cmpint(vbp_stat(t->qts, 0, "used-updates"), ==, updates + 1);
        g_assert_cmpint(vbp_stat(t->qts, 0, "max-batch"), ==, 32);
        g_usleep(5 * 1000);     /* let the queue fall asleep */
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "requests"), ==, 96);

    /* The driver polls: VRING_AVAIL_F_NO_INTERRUPT, no interrupt at all */
    qtest_writew(t->qts, vq->avail, VRING_AVAIL_F_NO_INTERRUPT);
    suppressed = vbp_stat(t->qts, 0, "notifies-suppressed");
    vbp_burst(t, vq, 16, addr);
    g_assert_cmpint(vbp_count_msix(t, vq, 50 * 1000), ==, 0);
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies"), ==, notifies);
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies-suppressed"), >,
                    suppressed);
    vbp_shutdown(t);
}

/* Coalescing with bounds a test can keep to: 1 s */
#define VBP_COALESCE_TEST_OPTS "\"poll-idle-ns\": 1000000000, " \
    "\"poll-adaptive\": false, \"coalesce-max-ns\": 1000000000, " \
    "\"coalesce-idle-ns\": 1000000000"

/*
 * Show the device that the guest submits in parallel (two requests in
 * one avail index update), then @n more one by one, each published
 * before the next is submitted; none is signalled while more come.
 * Returns the used index.
 */
static uint16_t vbp_parallel_reads(VbpTest *t, QVirtQueue *vq, int n)
{
    uint16_t used = vbp_used_idx(t, vq) + 2;
    uint64_t addr[2];

    vbp_reads_at_once(t, vq, 2, 16, 512, addr);
    for (int i = 0; i < n; i++) {
        uint64_t a;
        uint32_t head = vbp_add_req(t, vq, VIRTIO_BLK_T_IN, 64 + i * 16,
                                    NULL, 512, &a);

        vbp_publish(t, vq, head);
        vbp_wait_used(t, vq, ++used);
        g_assert_cmpint(vbp_status(t, a, 512), ==, VIRTIO_BLK_S_OK);
    }
    return used;
}

/*
 * Completions of a guest that keeps submitting are published at once
 * but signalled together: exactly one interrupt for 8, within the bound
 * (1 s here), with no further guest activity needed.
 */
static void test_coalesce_burst(void)
{
    VbpTest *t = vbp_boot_args("null", true, VBP_COALESCE_TEST_OPTS, 1,
                               1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];

    vbp_parallel_reads(t, vq, 6);
    /* All 8 are in the used ring; their interrupt is held */
    g_assert_cmpint(t->dev->bus->get_queue_isr_status(t->dev, vq), ==, 0);
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies"), ==, 0);
    /* ... and comes within the bound by itself */
    g_assert_cmpint(vbp_count_msix(t, vq, 3000 * 1000), ==, 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies"), ==, 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "max-coalesced"), ==, 8);
    /*
     * By the idle window or the time bound, or, on a host so busy that
     * the IOThread slept past both, by the end of polling (1 s after the
     * last completion): never for a reason that needs the guest
     */
    g_assert_cmpint(vbp_stat(t->qts, 0, "signal-idle") +
                    vbp_stat(t->qts, 0, "signal-time") +
                    vbp_stat(t->qts, 0, "signal-forced"), ==, 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "held"), >, 0);
    vbp_shutdown(t);
}

/*
 * A lone request (the guest waits for each completion) is signalled at
 * once, not after the idle window or the bound (1 s here).
 */
static void test_coalesce_lone(void)
{
    VbpTest *t = vbp_boot_args("null", true, VBP_COALESCE_TEST_OPTS, 1,
                               1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[512];

    for (int i = 0; i < 8; i++) {
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, i * 16, buf,
                               sizeof(buf), 1), ==, VIRTIO_BLK_S_OK);
        /* Well before the 1 s a held completion could wait */
        g_assert_cmpint(vbp_count_msix(t, vq, 500 * 1000), ==, 1);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "signal-lone"), ==, 8);
    g_assert_cmpint(vbp_stat(t->qts, 0, "held"), ==, 0);
    vbp_shutdown(t);
}

/*
 * Completions held when the VM stops are signalled by the stop, not
 * lost and not left to the bound; after cont and after a device reset
 * the queue works.
 */
static void test_coalesce_stop_reset(void)
{
    VbpTest *t = vbp_boot_args("null", true, VBP_COALESCE_TEST_OPTS, 1,
                               1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[512];

    vbp_parallel_reads(t, vq, 2);
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies"), ==, 0);
    qtest_qmp_assert_success(t->qts, "{'execute': 'stop'}");
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies"), ==, 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "signal-forced"), ==, 1);
    g_assert_cmpint(vbp_count_msix(t, vq, 200 * 1000), ==, 1);
    qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, 8, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);

    /* Held again, then a device reset: nothing to lose, nothing breaks */
    vbp_parallel_reads(t, vq, 2);
    vbp_setup_again(t, true);
    vq = t->vq[0];
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, 16, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);
    vbp_assert_alive(t);
    vbp_shutdown(t);
}

/* coalesce=off: one interrupt per pass, as before */
static void test_coalesce_off(void)
{
    VbpTest *t = vbp_boot_args("null", true, VBP_COALESCE_TEST_OPTS
                               ", \"coalesce\": false", 1,
                               1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];

    vbp_parallel_reads(t, vq, 6);
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies"), ==, 7);
    g_assert_cmpint(vbp_stat(t->qts, 0, "signal-forced"), ==, 7);
    g_assert_cmpint(vbp_stat(t->qts, 0, "held"), ==, 0);
    vbp_shutdown(t);
}

void vbp_register_coalescing_tests(void)
{
    qtest_add_func("/virtio-blk-poll/batch-one-irq", test_batch_one_irq);
    qtest_add_func("/virtio-blk-poll/coalesce/burst", test_coalesce_burst);
    qtest_add_func("/virtio-blk-poll/coalesce/lone", test_coalesce_lone);
    qtest_add_func("/virtio-blk-poll/coalesce/stop-reset",
                   test_coalesce_stop_reset);
    qtest_add_func("/virtio-blk-poll/coalesce/off", test_coalesce_off);
}
