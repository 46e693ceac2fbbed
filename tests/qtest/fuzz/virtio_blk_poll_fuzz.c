/*
 * virtio-blk-poll fuzzing targets
 *
 * A hostile driver for virtio-blk-poll, fed by libFuzzer: it negotiates
 * features, sets up several virtqueues and then writes whatever the input
 * says into the rings (well-formed requests with hostile sectors, sizes and
 * layouts; raw descriptor chains with arbitrary addresses, lengths, flags
 * and links; bogus avail indexes; used_event games; forced notifications;
 * device resets with requests in flight) while the device's IOThreads poll
 * the rings and serve them through io_uring or the block layer.  After the
 * input the harness waits (boundedly) for the device to answer everything
 * it accepted, then resets the device, so that every input also exercises
 * stopping the polling queues with requests in flight.
 *
 * Targets:
 *   virtio-blk-poll-fuzz           raw file, io_uring fast path, 4 queues
 *                                  on the device's own IOThread
 *   virtio-blk-poll-fallback-fuzz  raw over a blkdebug filter (block layer
 *                                  path), 2 queues on a user IOThread
 *
 * Input: two header bytes (feature choices, number of queues to set up),
 * then operations; see virtio_blk_poll_fuzz() and
 * scripts/fuzz/make-seeds.py, which writes the seed corpus.
 *
 * Copyright (c) 2026 virtio-blk-poll developers
 *
 * Based on the virtio-blk fuzzing target (Red Hat Inc., 2020).
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"

#include "qemu/main-loop.h"
#include "tests/qtest/libqtest.h"
#include "tests/qtest/libqos/virtio-blk.h"
#include "tests/qtest/libqos/virtio.h"
#include "tests/qtest/libqos/virtio-pci.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_pci.h"
#include "fuzz.h"
#include "qos_fuzz.h"

#define TEST_IMAGE_SIZE     (8 * 1024 * 1024)
#define VBPF_MAX_QUEUES     4
#define VBPF_ARENA_SIZE     (512 * 1024)
#define VBPF_WAIT_US        20000   /* for the device to answer an input */
#define VBPF_HANG_US        (15 * G_USEC_PER_SEC)

enum {
    OP_REQ,         /* a request built by the harness, hostile knobs */
    OP_RAW,         /* a descriptor chain written as the input says */
    OP_KICK,        /* notify a queue whatever the suppression says */
    OP_WAIT,        /* let the IOThreads run (and go back to sleep) */
    OP_RESET,       /* reset the device with requests in flight */
    OP_USED_EVENT,  /* write used_event (EVENT_IDX) */
    OP_AVAIL_IDX,   /* move avail->idx anywhere */
    OP_AVAIL_FLAGS, /* avail->flags, e.g. VRING_AVAIL_F_NO_INTERRUPT */
    OP_MAX
};

/*
 * Move a queue's rings while it is served (Q_ENABLE again): outside the
 * modulo of the other operations, so that the inputs kept before it
 * existed mean what they meant (only an operation byte of 0xff changed)
 */
#define OP_RINGS            0xff
#define RINGS_BAR           0       /* into the device's own BAR */
#define RINGS_UNMAPPED      1       /* beyond guest RAM */
#define RINGS_HOME          2       /* back where the harness put them */

/* OP_REQ flags */
#define REQ_INDIRECT        0x01    /* the whole chain in an indirect table */
#define REQ_SPLIT_HDR       0x02    /* header in two descriptors */
#define REQ_NO_STATUS       0x04    /* no status descriptor */
#define REQ_HDR_WRITABLE    0x08    /* header marked device-writable */
#define REQ_BAD_STATUS_LEN  0x10    /* status descriptor of 0 bytes */
#define REQ_FLIP_DATA       0x20    /* data descriptors in the wrong direction */
#define REQ_NO_KICK         0x40    /* publish, but do not notify */
#define REQ_HUGE_SEG        0x80    /* one data descriptor of 4 GiB - 1 */

typedef struct {
    QVirtQueue *vq;
    uint16_t next_desc;     /* next free descriptor slot, mod size */
} VbpFuzzQueue;

typedef struct {
    QTestState *s;
    QVirtioPCIDevice *pdev;
    QVirtioDevice *dev;
    int num_queues;         /* of the device (its command line says) */
    int nq;                 /* set up by this input */
    VbpFuzzQueue q[VBPF_MAX_QUEUES];
    uint64_t arena;         /* guest memory for headers, data, tables */
    uint32_t arena_off;
} VbpFuzz;

static VbpFuzz vbpf;

/*
 * libFuzzer's -timeout relies on SIGALRM, which QEMU blocks: a watchdog
 * thread turns an input that hangs (a deadlock between the main loop and
 * an IOThread, say) into an abort, for which libFuzzer saves the input.
 */
static int64_t vbpf_input_start;    /* monotonic, 0 between inputs */

static gpointer vbpf_watchdog(gpointer opaque)
{
    for (;;) {
        int64_t start = qatomic_read(&vbpf_input_start);

        g_usleep(G_USEC_PER_SEC);
        if (start && start == qatomic_read(&vbpf_input_start) &&
            g_get_monotonic_time() - start > VBPF_HANG_US) {
            fprintf(stderr, "virtio-blk-poll-fuzz: an input ran for more "
                    "than %" PRId64 " s: hang\n", VBPF_HANG_US / 1000000);
            abort();
        }
    }
    return NULL;
}

/* Consume n bytes of input; false when there are not enough */
static bool take(const uint8_t **data, size_t *size, void *out, size_t n)
{
    if (*size < n) {
        return false;
    }
    memcpy(out, *data, n);
    *data += n;
    *size -= n;
    return true;
}

/*
 * Bump allocation in the arena, wrapping around: requests of an earlier
 * round may still be in flight, which is what a buggy guest does too.
 * The rings are little-endian (virtio 1.0, or legacy on x86): the qtest
 * accessors write the target's byte order.
 */
static uint64_t arena_alloc(uint32_t len)
{
    uint64_t addr;

    len = ROUND_UP(MAX(len, 1), 16);
    if (len > VBPF_ARENA_SIZE) {
        len = VBPF_ARENA_SIZE;
    }
    if (vbpf.arena_off + len > VBPF_ARENA_SIZE) {
        vbpf.arena_off = 0;
    }
    addr = vbpf.arena + vbpf.arena_off;
    vbpf.arena_off += len;
    return addr;
}

static void desc_write(VbpFuzzQueue *fq, uint16_t idx, uint64_t addr,
                       uint32_t len, uint16_t flags, uint16_t next)
{
    uint64_t d = fq->vq->desc + 16ull * (idx % fq->vq->size);

    qtest_writeq(vbpf.s, d, addr);
    qtest_writel(vbpf.s, d + 8, len);
    qtest_writew(vbpf.s, d + 12, flags);
    qtest_writew(vbpf.s, d + 14, next);
}

static uint16_t desc_take(VbpFuzzQueue *fq)
{
    uint16_t idx = fq->next_desc % fq->vq->size;

    fq->next_desc = (idx + 1) % fq->vq->size;
    return idx;
}

/* Notify as a Linux driver would: honour NO_NOTIFY and avail_event */
static void queue_notify(VbpFuzzQueue *fq, uint16_t old_idx, uint16_t new_idx,
                         bool force)
{
    QVirtQueue *vq = fq->vq;
    uint16_t flags = qtest_readw(vbpf.s, vq->used);
    uint16_t avail_event = qtest_readw(vbpf.s, vq->used + 4 +
                                         sizeof(struct vring_used_elem) *
                                         vq->size);
    bool kick;

    if (vq->event) {
        kick = (uint16_t)(new_idx - avail_event - 1) <
               (uint16_t)(new_idx - old_idx);
    } else {
        kick = !(flags & VRING_USED_F_NO_NOTIFY);
    }
    if (kick || force) {
        vbpf.dev->bus->virtqueue_kick(vbpf.dev, vq);
    }
}

static void avail_push(VbpFuzzQueue *fq, uint16_t head, bool notify)
{
    QVirtQueue *vq = fq->vq;
    uint16_t idx = qtest_readw(vbpf.s, vq->avail + 2);

    qtest_writew(vbpf.s, vq->avail + 4 + 2 * (idx % vq->size),
                   head);
    qtest_writew(vbpf.s, vq->avail + 2, idx + 1);
    if (notify) {
        queue_notify(fq, idx, idx + 1, false);
    }
}

/*
 * Let the IOThreads work for up to @us microseconds, or until every queue
 * set up has answered all it was given (or the device gave up on the
 * driver with DEVICE_NEEDS_RESET).  The BQL is dropped meanwhile, as the
 * main loop would.
 */
static void wait_for_device(int64_t us)
{
    int64_t end = g_get_monotonic_time() + us;

    while (g_get_monotonic_time() < end) {
        bool done = true;

        for (int i = 0; i < vbpf.nq; i++) {
            QVirtQueue *vq = vbpf.q[i].vq;
            uint16_t avail = qtest_readw(vbpf.s, vq->avail + 2);
            uint16_t used = qtest_readw(vbpf.s, vq->used + 2);

            if (avail != used) {
                done = false;
            }
        }
        if (done || (vbpf.dev->bus->get_status(vbpf.dev) &
                     VIRTIO_CONFIG_S_NEEDS_RESET)) {
            break;
        }
        main_loop_wait(true);
        bql_unlock();
        g_usleep(20);
        bql_lock();
    }
    main_loop_wait(true);
}

static void queues_cleanup(void)
{
    for (int i = 0; i < vbpf.nq; i++) {
        qvirtqueue_cleanup(vbpf.dev->bus, vbpf.q[i].vq, fuzz_qos_alloc);
        vbpf.q[i].vq = NULL;
    }
    vbpf.nq = 0;
}

/* Header byte 0: feature choices */
#define HDR_EVENT_IDX       0x01
#define HDR_INDIRECT        0x02
#define HDR_NO_FLUSH        0x04
#define HDR_NO_DISCARD      0x08
#define HDR_NO_WZEROES      0x10
#define HDR_NO_MQ           0x20

static void device_start(uint8_t choice, uint8_t nq)
{
    QVirtioDevice *dev = vbpf.dev;
    uint64_t features;

    qvirtio_start_device(dev);      /* reset, ACKNOWLEDGE, DRIVER */
    features = qvirtio_get_features(dev);
    features &= ~(1ull << VIRTIO_F_RING_PACKED);    /* libqos: split only */
    features &= ~(1ull << VIRTIO_BLK_F_SCSI);
    if (!(choice & HDR_EVENT_IDX)) {
        features &= ~(1ull << VIRTIO_RING_F_EVENT_IDX);
    }
    if (!(choice & HDR_INDIRECT)) {
        features &= ~(1ull << VIRTIO_RING_F_INDIRECT_DESC);
    }
    if (choice & HDR_NO_FLUSH) {
        features &= ~(1ull << VIRTIO_BLK_F_FLUSH);
    }
    if (choice & HDR_NO_DISCARD) {
        features &= ~(1ull << VIRTIO_BLK_F_DISCARD);
    }
    if (choice & HDR_NO_WZEROES) {
        features &= ~(1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    }
    if (choice & HDR_NO_MQ) {
        features &= ~(1ull << VIRTIO_BLK_F_MQ);
    }
    qvirtio_set_features(dev, features);

    vbpf.nq = 1 + nq % vbpf.num_queues;
    for (int i = 0; i < vbpf.nq; i++) {
        vbpf.q[i].vq = qvirtqueue_setup(dev, fuzz_qos_alloc, i);
        vbpf.q[i].next_desc = 0;
    }
    qvirtio_set_driver_ok(dev);
}

static void device_stop(void)
{
    /* Reset with whatever is still in flight, then free the rings */
    qvirtio_reset(vbpf.dev);
    queues_cleanup();
}

/*
 * OP_REQ: u8 queue, u8 type, u32 sector, u8 nseg, u16 seglen, u8 flags.
 * A chain as virtio_blk builds it (header, data, status byte), with the
 * knobs of REQ_* to break it in the ways drivers get it wrong.
 */
static void op_req(const uint8_t **data, size_t *size)
{
    static const uint32_t types[] = {
        VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
        VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
        VIRTIO_BLK_T_OUT | 0x80000000u, 0x12345,
    };
    struct {
        uint8_t queue, type;
        uint32_t sector;
        uint8_t nseg;
        uint16_t seglen;
        uint8_t flags;
    } QEMU_PACKED r;
    struct virtio_blk_outhdr hdr;
    uint64_t hdr_addr, status_addr, table = 0;
    uint64_t addrs[20];
    uint32_t lens[20];
    uint16_t dflags[20];
    int n = 0, nseg;
    bool in_data;
    VbpFuzzQueue *fq;
    uint16_t head, slot;

    if (!take(data, size, &r, sizeof(r))) {
        return;
    }
    fq = &vbpf.q[r.queue % vbpf.nq];
    hdr.type = cpu_to_le32(types[r.type % ARRAY_SIZE(types)]);
    hdr.ioprio = 0;
    hdr.sector = cpu_to_le64(r.sector >= 0xfffff000u ?
                             (uint64_t)r.sector << 32 : r.sector);
    in_data = (r.type % ARRAY_SIZE(types)) == 0 ||
              (r.type % ARRAY_SIZE(types)) == 3;
    if (r.flags & REQ_FLIP_DATA) {
        in_data = !in_data;
    }

    hdr_addr = arena_alloc(sizeof(hdr));
    qtest_memwrite(vbpf.s, hdr_addr, &hdr, sizeof(hdr));
    if (r.flags & REQ_SPLIT_HDR) {
        addrs[n] = hdr_addr;
        lens[n] = 4;
        dflags[n++] = 0;
        addrs[n] = hdr_addr + 4;
        lens[n] = sizeof(hdr) - 4;
        dflags[n++] = 0;
    } else {
        addrs[n] = hdr_addr;
        lens[n] = sizeof(hdr);
        dflags[n++] = 0;
    }
    if (r.flags & REQ_HDR_WRITABLE) {
        dflags[0] = VRING_DESC_F_WRITE;
    }

    nseg = r.nseg % 17;
    for (int i = 0; i < nseg; i++) {
        uint32_t len = r.seglen;
        uint64_t addr = arena_alloc(len);

        if (i == 0 && (r.flags & REQ_HUGE_SEG)) {
            len = UINT32_MAX;
        }
        if ((r.type % ARRAY_SIZE(types)) == 1 && len <= VBPF_ARENA_SIZE) {
            /* something recognisable to write */
            uint8_t *buf = g_malloc(MAX(len, 1));
            memset(buf, (uint8_t)(r.sector + i), len);
            qtest_memwrite(vbpf.s, addr, buf, len);
            g_free(buf);
        }
        addrs[n] = addr;
        lens[n] = len;
        dflags[n++] = in_data ? VRING_DESC_F_WRITE : 0;
    }

    status_addr = arena_alloc(1);
    qtest_writeb(vbpf.s, status_addr, 0xff);
    if (!(r.flags & REQ_NO_STATUS)) {
        addrs[n] = status_addr;
        lens[n] = (r.flags & REQ_BAD_STATUS_LEN) ? 0 : 1;
        dflags[n++] = VRING_DESC_F_WRITE;
    }

    if (r.flags & REQ_INDIRECT) {
        table = arena_alloc(16 * n);
        for (int i = 0; i < n; i++) {
            uint64_t d = table + 16 * i;

            qtest_writeq(vbpf.s, d, addrs[i]);
            qtest_writel(vbpf.s, d + 8, lens[i]);
            qtest_writew(vbpf.s, d + 12, dflags[i] |
                           (i + 1 < n ? VRING_DESC_F_NEXT : 0));
            qtest_writew(vbpf.s, d + 14, i + 1);
        }
        head = desc_take(fq);
        desc_write(fq, head, table, 16 * n, VRING_DESC_F_INDIRECT, 0);
    } else {
        head = slot = desc_take(fq);
        for (int i = 0; i < n; i++) {
            uint16_t next = (slot + 1) % fq->vq->size;

            desc_write(fq, slot, addrs[i], lens[i], dflags[i] |
                       (i + 1 < n ? VRING_DESC_F_NEXT : 0), next);
            if (i + 1 < n) {
                slot = desc_take(fq);
            }
        }
    }
    avail_push(fq, head, !(r.flags & REQ_NO_KICK));
}

/*
 * OP_RAW: u8 queue, u8 ndesc, then per descriptor u8 sel, u32 len,
 * u16 flags, u16 next and, when sel & 1, a u64 guest address (else an
 * offset into the harness's buffer).  Nothing is checked.
 */
static void op_raw(const uint8_t **data, size_t *size)
{
    struct {
        uint8_t queue, ndesc;
    } QEMU_PACKED r;
    struct {
        uint8_t sel;
        uint32_t len;
        uint16_t flags, next;
    } QEMU_PACKED d;
    VbpFuzzQueue *fq;
    uint16_t head = 0;

    if (!take(data, size, &r, sizeof(r))) {
        return;
    }
    fq = &vbpf.q[r.queue % vbpf.nq];
    for (int i = 0; i < 1 + r.ndesc % 8; i++) {
        uint64_t addr;
        uint16_t slot;

        if (!take(data, size, &d, sizeof(d))) {
            break;
        }
        if (d.sel & 1) {
            if (!take(data, size, &addr, sizeof(addr))) {
                break;
            }
        } else {
            addr = vbpf.arena + (le32_to_cpu(d.len) & (VBPF_ARENA_SIZE - 1));
        }
        slot = desc_take(fq);
        if (i == 0) {
            head = slot;
        }
        desc_write(fq, slot, addr, d.len, d.flags, d.next);
    }
    avail_push(fq, head, true);
}

/* OP_RINGS: queue, where */
static void op_rings(const uint8_t **data, size_t *size)
{
    QVirtioPCIDevice *pdev = vbpf.pdev;
    uint32_t cfg = pdev->common_cfg_offset;
    VbpFuzzQueue *fq;
    uint8_t arg[2];
    uint64_t addr[3];
    size_t reg[3] = {
        offsetof(struct virtio_pci_common_cfg, queue_desc_lo),
        offsetof(struct virtio_pci_common_cfg, queue_avail_lo),
        offsetof(struct virtio_pci_common_cfg, queue_used_lo),
    };

    if (!take(data, size, arg, sizeof(arg))) {
        return;
    }
    fq = &vbpf.q[arg[0] % vbpf.nq];
    switch (arg[1] % 3) {
    case RINGS_BAR:
        addr[0] = pdev->bar.addr;
        break;
    case RINGS_UNMAPPED:
        addr[0] = 1ull << 44;
        break;
    default:
        addr[0] = fq->vq->desc;
        break;
    }
    addr[1] = arg[1] % 3 == RINGS_HOME ? fq->vq->avail : addr[0] + 0x1000;
    addr[2] = arg[1] % 3 == RINGS_HOME ? fq->vq->used : addr[0] + 0x2000;
    qpci_io_writew(pdev->pdev, pdev->bar, cfg +
                   offsetof(struct virtio_pci_common_cfg, queue_select),
                   fq->vq->index);
    for (int i = 0; i < 3; i++) {
        qpci_io_writel(pdev->pdev, pdev->bar, cfg + reg[i], addr[i]);
        qpci_io_writel(pdev->pdev, pdev->bar, cfg + reg[i] + 4,
                       addr[i] >> 32);
    }
    qpci_io_writew(pdev->pdev, pdev->bar, cfg +
                   offsetof(struct virtio_pci_common_cfg, queue_enable), 1);
}

static void virtio_blk_poll_fuzz(QTestState *s, const uint8_t *data,
                                 size_t size)
{
    uint8_t hdr[2];

    vbpf.s = s;
    if (!take(&data, &size, hdr, sizeof(hdr))) {
        return;
    }
    qatomic_set(&vbpf_input_start, g_get_monotonic_time());
    device_start(hdr[0], hdr[1]);

    while (size > 0) {
        uint8_t op, arg[3];
        VbpFuzzQueue *fq;
        uint16_t v;

        take(&data, &size, &op, 1);
        if (op == OP_RINGS) {
            op_rings(&data, &size);
            continue;
        }
        switch (op % OP_MAX) {
        case OP_REQ:
            op_req(&data, &size);
            break;
        case OP_RAW:
            op_raw(&data, &size);
            break;
        case OP_KICK:
            if (take(&data, &size, arg, 1)) {
                fq = &vbpf.q[arg[0] % vbpf.nq];
                vbpf.dev->bus->virtqueue_kick(vbpf.dev, fq->vq);
            }
            break;
        case OP_WAIT:
            if (take(&data, &size, arg, 1)) {
                wait_for_device(100 * (arg[0] % 32));
            }
            break;
        case OP_RESET:
            if (take(&data, &size, arg, 2)) {
                device_stop();
                device_start(arg[0], arg[1]);
            }
            break;
        case OP_USED_EVENT:
        case OP_AVAIL_IDX:
        case OP_AVAIL_FLAGS:
            if (!take(&data, &size, arg, 3)) {
                break;
            }
            fq = &vbpf.q[arg[0] % vbpf.nq];
            v = arg[1] | arg[2] << 8;
            if (op % OP_MAX == OP_USED_EVENT) {
                qtest_writew(s, fq->vq->avail + 4 +
                               2 * fq->vq->size, v);
            } else if (op % OP_MAX == OP_AVAIL_IDX) {
                qtest_writew(s, fq->vq->avail + 2, v);
                vbpf.dev->bus->virtqueue_kick(vbpf.dev, fq->vq);
            } else {
                qtest_writew(s, fq->vq->avail, v);
            }
            break;
        }
    }

    /* Everything accepted must be answered, then stop it all */
    wait_for_device(VBPF_WAIT_US);
    device_stop();
    flush_events(s);
    qatomic_set(&vbpf_input_start, 0);
}

static void virtio_blk_poll_pre_fuzz(QTestState *s)
{
    QVirtioPCIDevice *pdev;

    qos_init_path(s);
    pdev = fuzz_qos_obj;
    vbpf.s = s;
    vbpf.pdev = pdev;
    vbpf.dev = &pdev->vdev;
    vbpf.arena = guest_alloc(fuzz_qos_alloc, VBPF_ARENA_SIZE);
    g_thread_unref(g_thread_new("vbpf-watchdog", vbpf_watchdog, NULL));
}

static void drive_destroy(void *path)
{
    unlink(path);
    g_free(path);
}

static char *drive_create(void)
{
    int fd, ret;
    char *t_path;

    fd = g_file_open_tmp("vbp-fuzz.XXXXXX", &t_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    ret = ftruncate(fd, TEST_IMAGE_SIZE);
    g_assert_cmpint(ret, ==, 0);
    close(fd);

    g_test_queue_destroy(drive_destroy, t_path);
    return t_path;
}

/* Raw file: the io_uring fast path, 4 queues on the device's IOThread */
static void *fast_setup(GString *cmd_line, void *arg)
{
    char *path = drive_create();

    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,file=%s,format=raw,"
                           "aio=io_uring,discard=unmap,auto-read-only=off"
                           " -global virtio-blk-poll-pci.num-queues=4"
                           " -global virtio-blk-poll-pci.poll-idle-ns=20000 ",
                           path);
    vbpf.num_queues = 4;
    return arg;
}

/* blkdebug filter: the block layer path, 2 queues on a user IOThread */
static void *fallback_setup(GString *cmd_line, void *arg)
{
    char *path = drive_create();

    g_string_append_printf(cmd_line,
                           " -object iothread,id=fuzz-iothread"
                           " -drive if=none,id=drive0,format=raw,"
                           "file.driver=blkdebug,file.image.driver=file,"
                           "file.image.filename=%s,discard=unmap,"
                           "auto-read-only=off"
                           " -global virtio-blk-poll-pci.iothread=fuzz-iothread"
                           " -global virtio-blk-poll-pci.num-queues=2"
                           " -global virtio-blk-poll-pci.poll-idle-ns=20000 ",
                           path);
    vbpf.num_queues = 2;
    return arg;
}

static void register_virtio_blk_poll_fuzz_targets(void)
{
    fuzz_add_qos_target(&(FuzzTarget){
                .name = "virtio-blk-poll-fuzz",
                .description = "Fuzz virtio-blk-poll's rings, io_uring path, "
                               "4 polled queues",
                .pre_fuzz = virtio_blk_poll_pre_fuzz,
                .fuzz = virtio_blk_poll_fuzz,},
                "virtio-blk-poll-pci",
                &(QOSGraphTestOptions){.before = fast_setup});
    fuzz_add_qos_target(&(FuzzTarget){
                .name = "virtio-blk-poll-fallback-fuzz",
                .description = "Fuzz virtio-blk-poll's rings, block layer "
                               "path, 2 polled queues on a user IOThread",
                .pre_fuzz = virtio_blk_poll_pre_fuzz,
                .fuzz = virtio_blk_poll_fuzz,},
                "virtio-blk-poll-pci",
                &(QOSGraphTestOptions){.before = fallback_setup});
}

fuzz_target_init(register_virtio_blk_poll_fuzz_targets);
