/*
 * QTest cases for virtio-blk-poll
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The generic virtio-blk tests run against virtio-blk-poll-pci through its
 * libqos node.  These tests cover what is particular to it, one topic a
 * file in virtio-blk-poll/ on one framework (framework.c):
 *
 *   polling-tests.c     polling with guest kicks suppressed, sleeping when
 *                       idle, the poll window, poll-hybrid, IOThreads and
 *                       pinning, properties, stop/cont, drains, resets
 *   coalescing-tests.c  one interrupt for many completions, none held for
 *                       a lone request
 *   fast-path-tests.c   the raw io_uring path and the block layer fallback
 *   error-tests.c       backend errors, failed and short submissions,
 *                       write-through, write thresholds
 *   hostile-tests.c     malformed requests and rings
 *   host-cost.c         a measurement, not a test (VBP_MEASURE=1)
 */

#include "qemu/osdep.h"
#include "libqos/qgraph.h"
#include "virtio-blk-poll/framework.h"

static void register_virtio_blk_poll_test(void)
{
    vbp_register_polling_tests();
    vbp_register_coalescing_tests();
    vbp_register_fast_path_tests();
    vbp_register_hostile_tests();
    vbp_register_errors_tests();
    vbp_register_host_cost_tests();
}

libqos_init(register_virtio_blk_poll_test);
