/*
 * virtio-blk-poll qtests: hostile input
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Malformed requests and rings: a defined outcome, and QEMU keeps going.
 */

#include "qemu/osdep.h"
#include "framework.h"

/*
 * Malformed requests: each gets a defined outcome, and QEMU keeps going.
 */
static void vbp_assert_needs_reset(VbpTest *t)
{
    gint64 start = g_get_monotonic_time();

    while (!(t->dev->bus->get_status(t->dev) & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(1000);
    }
    vbp_assert_alive(t);
}

static void test_hostile_status(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint64_t addr;
    uint32_t head;
    uint16_t used = vbp_used_idx(t, vq);

    /* Past the end of the disk: IOERR */
    head = vbp_add_req(t, vq, VIRTIO_BLK_T_IN, IMAGE_SIZE / 512, NULL, 512,
                       &addr);
    qvirtqueue_kick(t->qts, t->dev, vq, head);
    vbp_wait_used(t, vq, ++used);
    g_assert_cmpint(vbp_status(t, addr, 512), ==, VIRTIO_BLK_S_IOERR);

    /* Straddling the end: IOERR */
    head = vbp_add_req(t, vq, VIRTIO_BLK_T_OUT, IMAGE_SIZE / 512 - 1,
                       NULL, 1024, &addr);
    qvirtqueue_kick(t->qts, t->dev, vq, head);
    vbp_wait_used(t, vq, ++used);
    g_assert_cmpint(vbp_status(t, addr, 1024), ==, VIRTIO_BLK_S_IOERR);

    /* Unknown request type: UNSUPP */
    head = vbp_add_req(t, vq, 0x1234, 0, NULL, 0, &addr);
    qvirtqueue_kick(t->qts, t->dev, vq, head);
    vbp_wait_used(t, vq, ++used);
    g_assert_cmpint(vbp_status(t, addr, 0), ==, VIRTIO_BLK_S_UNSUPP);

    /* Data length not a multiple of the sector size: IOERR */
    head = vbp_add_req(t, vq, VIRTIO_BLK_T_OUT, 0, NULL, 100, &addr);
    qvirtqueue_kick(t->qts, t->dev, vq, head);
    vbp_wait_used(t, vq, ++used);
    g_assert_cmpint(vbp_status(t, addr, 100), ==, VIRTIO_BLK_S_IOERR);

    /* And the device still works */
    vbp_write_read(t, vq, 0, 0x99, true);
    vbp_assert_alive(t);
    vbp_shutdown(t);
}

typedef enum {
    HOSTILE_SHORT_HEADER,
    HOSTILE_STATUS_READONLY,
    HOSTILE_LOOP,
    HOSTILE_OUTSIDE_RAM,
    HOSTILE_AVAIL_JUMP,
    HOSTILE_HEAD_OUT_OF_RANGE,
} HostileCase;

static void test_hostile_fatal(const void *opaque)
{
    HostileCase c = GPOINTER_TO_INT(opaque);
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint64_t addr = guest_alloc(&t->qs->alloc, 4096);
    uint32_t head = vq->free_head;
    uint16_t idx;

    switch (c) {
    case HOSTILE_SHORT_HEADER:
        /* an 8 byte header: virtio_error() */
        head = qvirtqueue_add(t->qts, vq, addr, 8, false, true);
        qvirtqueue_add(t->qts, vq, addr + 512, 1, true, false);
        break;
    case HOSTILE_STATUS_READONLY:
        /* no device-writable buffer for the status: virtio_error() */
        head = qvirtqueue_add(t->qts, vq, addr, 16, false, true);
        qvirtqueue_add(t->qts, vq, addr + 512, 1, false, false);
        break;
    case HOSTILE_LOOP:
        /* a descriptor chained to itself */
        head = qvirtqueue_add(t->qts, vq, addr, 16, false, true);
        qtest_writew(t->qts, vq->desc + 16 * head + 14, head);
        break;
    case HOSTILE_OUTSIDE_RAM:
        /*
         * A header far beyond guest RAM.  Mapped through a bounce buffer,
         * unassigned memory would make the IOThread wait for the BQL
         * (which a reset, holding it, waits for the IOThread under: a
         * deadlock the fuzzer found): it is refused with virtio_error().
         */
        head = qvirtqueue_add(t->qts, vq, 1ull << 44, 16, false, true);
        qvirtqueue_add(t->qts, vq, addr + 512, 1, true, false);
        break;
    case HOSTILE_AVAIL_JUMP:
        /* the avail index moves by more than the queue size */
        idx = qtest_readw(t->qts, vq->avail + 2);
        qtest_writew(t->qts, vq->avail + 2, idx + vq->size + 5);
        t->dev->bus->virtqueue_kick(t->dev, vq);
        vbp_assert_needs_reset(t);
        vbp_shutdown(t);
        return;
    case HOSTILE_HEAD_OUT_OF_RANGE:
        head = vq->size + 7;
        break;
    }
    qvirtqueue_kick(t->qts, t->dev, vq, head);
    vbp_assert_needs_reset(t);

    /* A reset brings the device back */
    vbp_setup_again(t, false);
    vbp_write_read(t, t->vq[0], 0, 0x42, true);
    vbp_shutdown(t);
}

/*
 * The guest moves a served queue's rings into the device's own BAR after
 * DRIVER_OK (Q_ENABLE again): the avail ring into the notification
 * region, which reads as zeroes (an empty queue, to the busy-polling
 * IOThread), the used ring into the ISR region, which ignores writes.
 * Served from there, every avail read of the IOThread would take the BQL
 * through MMIO dispatch, and the reset below, which holds the BQL while
 * it waits for that IOThread, would hang QEMU: the rings are refused with
 * virtio_error() when they are set, and QMP still answers.
 */
static void test_hostile_rings_moved(void)
{
    VbpTest *t = vbp_boot("\"busy-poll\": true", 1, 0);
    QVirtioPCIDevice *dev = t->pdev;
    QVirtQueue *vq = t->vq[0];
    uint64_t bar = dev->bar.addr;
    uint32_t cfg = dev->common_cfg_offset;
    struct {
        size_t lo;
        uint64_t addr;
    } regs[] = {
        { offsetof(struct virtio_pci_common_cfg, queue_desc_lo),
          bar + dev->device_cfg_offset },
        { offsetof(struct virtio_pci_common_cfg, queue_avail_lo),
          bar + dev->notify_cfg_offset },
        { offsetof(struct virtio_pci_common_cfg, queue_used_lo),
          bar + dev->isr_cfg_offset },
    };

    g_assert_false(dev->bar.is_io);
    qpci_io_writew(dev->pdev, dev->bar, cfg +
                   offsetof(struct virtio_pci_common_cfg, queue_select), 0);
    for (int i = 0; i < ARRAY_SIZE(regs); i++) {
        qpci_io_writel(dev->pdev, dev->bar, cfg + regs[i].lo, regs[i].addr);
        qpci_io_writel(dev->pdev, dev->bar, cfg + regs[i].lo + 4,
                       regs[i].addr >> 32);
    }
    qpci_io_writew(dev->pdev, dev->bar, cfg +
                   offsetof(struct virtio_pci_common_cfg, queue_enable), 1);
    /* Wake the queue: it would poll the BAR for ever */
    t->dev->bus->virtqueue_kick(t->dev, vq);
    g_usleep(10 * 1000);
    vbp_assert_needs_reset(t);
    qvirtio_reset(t->dev);
    vbp_assert_alive(t);

    /* The guest sets the queue up again in RAM: it works */
    vbp_setup_again(t, false);
    vbp_write_read(t, t->vq[0], 8, 0x22, true);
    vbp_shutdown(t);
}

void vbp_register_hostile_tests(void)
{
    static const char *const hostile[] = {
        "short-header", "status-readonly", "desc-loop", "outside-ram",
        "avail-jump", "head-out-of-range",
    };
    qtest_add_func("/virtio-blk-poll/hostile/status", test_hostile_status);
    qtest_add_func("/virtio-blk-poll/hostile/rings-moved",
                   test_hostile_rings_moved);
    for (int i = 0; i < ARRAY_SIZE(hostile); i++) {
        g_autofree char *path =
            g_strdup_printf("/virtio-blk-poll/hostile/%s", hostile[i]);
        qtest_add_data_func(path, GINT_TO_POINTER(i), test_hostile_fatal);
    }
}
