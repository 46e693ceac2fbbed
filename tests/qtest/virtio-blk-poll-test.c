/*
 * QTest cases for virtio-blk-poll
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The generic virtio-blk tests run against virtio-blk-poll-pci through its
 * libqos node.  These tests cover what is particular to it: its property
 * set, its configuration errors, polling with guest kicks suppressed,
 * sleeping when idle, one interrupt per batch, several queues on several
 * IOThreads, and malformed requests.
 */

#include "qemu/osdep.h"
#include <sys/mount.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "standard-headers/linux/virtio_pci.h"
#include "libqos/libqos-pc.h"
#include "libqos/qgraph.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"

#define IMAGE_SIZE      (8 * 1024 * 1024)
#define TIMEOUT_US      (30 * 1000 * 1000)
#define DEV_SLOT        4
/* Request layout: header, data at DATA_OFS (page aligned), status after */
#define DATA_OFS        4096

/* The device under test and its IOThreads; the measurement changes them */
static const char *vbp_driver = "virtio-blk-poll-pci";
static const char *vbp_iothread_opts = "";

typedef struct VbpTest {
    QOSState *qs;
    QTestState *qts;
    QVirtioPCIDevice *pdev;
    QVirtioDevice *dev;
    QVirtQueue *vq[2];
    int nvqs;
    char *img;
} VbpTest;

/* A raw image file of IMAGE_SIZE bytes */
static char *vbp_image_create(void)
{
    char *path;
    int fd = g_file_open_tmp("vbp-test.XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, IMAGE_SIZE), ==, 0);
    close(fd);
    return path;
}

/*
 * Boot a pc machine with one virtio-blk-poll-pci at slot DEV_SLOT, with
 * @devopts added to its JSON -device options, and set up @nvqs queues.
 */
/*
 * @blockdev: the -blockdev options of the disk, node "disk0"; "%s" in it
 * stands for the image file; NULL: a raw image over a file node "file0";
 * "null": null-co
 */
static VbpTest *vbp_boot_args(const char *blockdev_fmt, bool msix,
                              const char *devopts, int nvqs,
                              uint64_t drop_features)
{
    VbpTest *t = g_new0(VbpTest, 1);
    g_autofree char *blockdev = NULL;
    uint64_t features;

    t->img = vbp_image_create();
    if (!g_strcmp0(blockdev_fmt, "null")) {
        blockdev = g_strdup_printf("-blockdev driver=null-co,node-name=disk0,"
                                   "read-zeroes=on,size=%d", IMAGE_SIZE);
    } else if (blockdev_fmt) {
        blockdev = g_strdup_printf(blockdev_fmt, t->img);
    } else {
        blockdev = g_strdup_printf("-blockdev driver=file,node-name=file0,"
                                   "filename=%s -blockdev driver=raw,"
                                   "node-name=disk0,file=file0", t->img);
    }
    t->qs = qtest_pc_boot("-nodefaults "
        "-object iothread,id=iot0%s -object iothread,id=iot1%s %s "
        "-device '{\"driver\": \"%s\", \"id\": \"vbp0\", "
        "\"drive\": \"disk0\", \"addr\": \"%x.0\"%s%s}'",
        vbp_iothread_opts, vbp_iothread_opts, blockdev, vbp_driver,
        DEV_SLOT, devopts ? ", " : "", devopts ? devopts : "");
    t->qts = t->qs->qts;
    t->pdev = virtio_pci_new(t->qs->pcibus,
                             &(QPCIAddress) { .devfn = QPCI_DEVFN(DEV_SLOT, 0) });
    g_assert_nonnull(t->pdev);
    t->dev = &t->pdev->vdev;
    g_assert_cmpint(t->dev->device_type, ==, VIRTIO_ID_BLOCK);

    qvirtio_pci_device_enable(t->pdev);
    if (msix) {
        qpci_msix_enable(t->pdev->pdev);
        qvirtio_pci_set_msix_configuration_vector(t->pdev, &t->qs->alloc, 0);
    }
    qvirtio_start_device(t->dev);
    features = qvirtio_get_features(t->dev);
    features &= ~(QVIRTIO_F_BAD_FEATURE | drop_features |
                  (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
                  (1ull << VIRTIO_BLK_F_SCSI));
    qvirtio_set_features(t->dev, features);
    t->nvqs = nvqs;
    for (int i = 0; i < nvqs; i++) {
        t->vq[i] = qvirtqueue_setup(t->dev, &t->qs->alloc, i);
        if (msix) {
            qvirtqueue_pci_msix_setup(t->pdev, (QVirtQueuePCI *)t->vq[i],
                                      &t->qs->alloc, i + 1);
        }
    }
    qvirtio_set_driver_ok(t->dev);
    return t;
}

static VbpTest *vbp_boot(const char *devopts, int nvqs, uint64_t drop_features)
{
    return vbp_boot_args(NULL, false, devopts, nvqs, drop_features);
}

static void vbp_shutdown(VbpTest *t)
{
    for (int i = 0; i < t->nvqs; i++) {
        qvirtqueue_cleanup(t->dev->bus, t->vq[i], &t->qs->alloc);
    }
    qos_object_destroy((QOSGraphObject *)t->pdev);
    qtest_pc_shutdown(t->qs);
    unlink(t->img);
    g_free(t->img);
    g_free(t);
}

/*
 * Queue a request in the descriptor table (not yet in the avail ring):
 * header, optional data in @nseg descriptors, status byte.  Returns the
 * head descriptor; the guest address of the buffer is stored in *addr.
 */
static uint32_t vbp_add_req_seg(VbpTest *t, QVirtQueue *vq, uint32_t type,
                                uint64_t sector, const void *data, size_t len,
                                int nseg, uint64_t *addr)
{
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(type),
        .sector = cpu_to_le64(sector),
    };
    uint8_t status = 0xff;
    uint32_t head;
    size_t seg = len / nseg, done = 0;

    *addr = guest_alloc(&t->qs->alloc, DATA_OFS + len + 1);
    qtest_memwrite(t->qts, *addr, &hdr, sizeof(hdr));
    if (data) {
        qtest_memwrite(t->qts, *addr + DATA_OFS, data, len);
    }
    qtest_memwrite(t->qts, *addr + DATA_OFS + len, &status, 1);

    head = qvirtqueue_add(t->qts, vq, *addr, sizeof(hdr), false, true);
    for (int i = 0; i < nseg && len; i++) {
        size_t n = i == nseg - 1 ? len - done : seg;

        qvirtqueue_add(t->qts, vq, *addr + DATA_OFS + done, n,
                       type == VIRTIO_BLK_T_IN, true);
        done += n;
    }
    qvirtqueue_add(t->qts, vq, *addr + DATA_OFS + len, 1, true, false);
    return head;
}

static uint32_t vbp_add_req(VbpTest *t, QVirtQueue *vq, uint32_t type,
                            uint64_t sector, const void *data, size_t len,
                            uint64_t *addr)
{
    return vbp_add_req_seg(t, vq, type, sector, data, len, 1, addr);
}

static uint8_t vbp_status(VbpTest *t, uint64_t addr, size_t len)
{
    return qtest_readb(t->qts, addr + DATA_OFS + len);
}

/* Put @head in the avail ring, as a guest does, but never kick */
static void vbp_publish(VbpTest *t, QVirtQueue *vq, uint32_t head)
{
    uint16_t idx = qtest_readw(t->qts, vq->avail + 2);

    qtest_writew(t->qts, vq->avail + 4 + 2 * (idx % vq->size), head);
    qtest_writew(t->qts, vq->avail + 2, idx + 1);
}

/*
 * Put @head in the avail ring at position @i after the current index; when
 * @count is not zero, then move the index by @count at once.
 */
static void vbp_publish_n(VbpTest *t, QVirtQueue *vq, uint32_t head,
                          int i, int count)
{
    uint16_t idx = qtest_readw(t->qts, vq->avail + 2);

    qtest_writew(t->qts, vq->avail + 4 + 2 * ((idx + i) % vq->size), head);
    if (count) {
        qtest_writew(t->qts, vq->avail + 2, idx + count);
    }
}

static uint16_t vbp_used_idx(VbpTest *t, QVirtQueue *vq)
{
    return qtest_readw(t->qts, vq->used + 2);
}

static uint16_t vbp_used_flags(VbpTest *t, QVirtQueue *vq)
{
    return qtest_readw(t->qts, vq->used);
}

static void vbp_wait_used(VbpTest *t, QVirtQueue *vq, uint16_t idx)
{
    gint64 start = g_get_monotonic_time();

    while (vbp_used_idx(t, vq) != idx) {
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(100);
    }
}

/* The stats of one queue, from qom-get; the caller unrefs */
static QDict *vbp_stats(QTestState *qts, const char *id, int queue)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                           "{'path': %s, 'property': 'stats'}}", id);
    QList *list = qdict_get_qlist(rsp, "return");
    QDict *st;

    g_assert_nonnull(list);
    g_assert_cmpint(qlist_size(list), >, queue);
    st = qobject_to(QDict, qlist_peek(list));
    for (int i = 0; i < queue; i++) {
        qobject_unref(qlist_pop(list));
        st = qobject_to(QDict, qlist_peek(list));
    }
    qobject_ref(st);
    qobject_unref(rsp);
    return st;
}

static uint64_t vbp_stat(QTestState *qts, int queue, const char *name)
{
    QDict *st = vbp_stats(qts, "vbp0", queue);
    uint64_t v = qdict_get_int(st, name);

    qobject_unref(st);
    return v;
}

/* Write @n sectors through the poller and read them back */
static void vbp_write_read(VbpTest *t, QVirtQueue *vq, uint64_t sector,
                           uint8_t pattern, bool kick)
{
    char wbuf[512], rbuf[512];
    uint64_t waddr, raddr;
    uint32_t head;
    uint16_t used = vbp_used_idx(t, vq);

    memset(wbuf, pattern, sizeof(wbuf));
    head = vbp_add_req(t, vq, VIRTIO_BLK_T_OUT, sector, wbuf, 512, &waddr);
    if (kick) {
        qvirtqueue_kick(t->qts, t->dev, vq, head);
    } else {
        vbp_publish(t, vq, head);
    }
    vbp_wait_used(t, vq, ++used);
    g_assert_cmpint(vbp_status(t, waddr, 512), ==, VIRTIO_BLK_S_OK);

    head = vbp_add_req(t, vq, VIRTIO_BLK_T_IN, sector, NULL, 512, &raddr);
    if (kick) {
        qvirtqueue_kick(t->qts, t->dev, vq, head);
    } else {
        vbp_publish(t, vq, head);
    }
    vbp_wait_used(t, vq, ++used);
    g_assert_cmpint(vbp_status(t, raddr, 512), ==, VIRTIO_BLK_S_OK);
    qtest_memread(t->qts, raddr + DATA_OFS, rbuf, sizeof(rbuf));
    g_assert_cmpmem(rbuf, sizeof(rbuf), wbuf, sizeof(wbuf));
    guest_free(&t->qs->alloc, waddr);
    guest_free(&t->qs->alloc, raddr);
}

static void vbp_assert_alive(VbpTest *t)
{
    qtest_qmp_assert_success(t->qts, "{'execute': 'query-status'}");
}

/* CPU time (ticks) the thread @tid of QEMU has used */
static uint64_t thread_cpu_ticks(pid_t pid, int64_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%" PRId64 "/stat",
                                            pid, tid);
    g_autofree char *buf = NULL;
    unsigned long utime, stime;
    char *p;

    g_assert_true(g_file_get_contents(path, &buf, NULL, NULL));
    p = strrchr(buf, ')');
    g_assert_nonnull(p);
    /* fields 14 and 15 (utime, stime), counting from the pid */
    g_assert_cmpint(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                           "%*u %lu %lu", &utime, &stime), ==, 2);
    return utime + stime;
}

/*
 * Every property of virtio-blk-pci exists on virtio-blk-poll-pci, with the
 * same type and default, so a management tool can swap the driver name.
 */
static void test_props_match(void)
{
    QTestState *qts = qtest_init("-machine none");
    QDict *base = qtest_qmp(qts, "{'execute': 'device-list-properties', "
                            "'arguments': {'typename': 'virtio-blk-pci'}}");
    QDict *poll = qtest_qmp(qts, "{'execute': 'device-list-properties', "
                            "'arguments': {'typename': 'virtio-blk-poll-pci'}}");
    QList *bl = qdict_get_qlist(base, "return");
    QList *pl = qdict_get_qlist(poll, "return");
    const QListEntry *be, *pe;
    int checked = 0;
    bool own[6] = { };

    g_assert_nonnull(bl);
    g_assert_nonnull(pl);
    QLIST_FOREACH_ENTRY(bl, be) {
        QDict *bp = qobject_to(QDict, qlist_entry_obj(be));
        const char *name = qdict_get_str(bp, "name");
        QDict *match = NULL;

        QLIST_FOREACH_ENTRY(pl, pe) {
            QDict *pp = qobject_to(QDict, qlist_entry_obj(pe));
            if (!strcmp(qdict_get_str(pp, "name"), name)) {
                match = pp;
                break;
            }
        }
        if (!match) {
            g_test_message("virtio-blk-poll-pci lacks property '%s'", name);
        }
        g_assert_nonnull(match);
        if (!g_str_has_prefix(qdict_get_str(bp, "type"), "child<")) {
            /* the virtio-backend child is of the device's own type */
            g_assert_cmpstr(qdict_get_str(match, "type"), ==,
                            qdict_get_str(bp, "type"));
        }
        g_assert_true(qobject_is_equal(qdict_get(match, "default-value"),
                                       qdict_get(bp, "default-value")));
        checked++;
    }
    g_assert_cmpint(checked, >, 30);

    /* Its own properties are there and documented */
    QLIST_FOREACH_ENTRY(pl, pe) {
        QDict *pp = qobject_to(QDict, qlist_entry_obj(pe));
        const char *name = qdict_get_str(pp, "name");
        static const char *const mine[] = {
            "poll-idle-ns", "busy-poll", "batch-max", "poll-cpus",
            "fast-path", "uring-sqpoll"
        };

        for (int i = 0; i < ARRAY_SIZE(mine); i++) {
            if (!strcmp(name, mine[i])) {
                g_assert_true(qdict_haskey(pp, "description"));
                own[i] = true;
            }
        }
    }
    for (int i = 0; i < ARRAY_SIZE(own); i++) {
        g_assert_true(own[i]);
    }

    qobject_unref(base);
    qobject_unref(poll);
    qtest_quit(qts);
}

/* Bad configurations fail device_add with an error naming the culprit */
static void test_bad_config(void)
{
    static const struct {
        const char *args;
        const char *error;
    } cases[] = {
        { "{}", "drive property not set" },
        { "{'drive': 'd0', 'iothread': 'nope'}", "nope" },
        { "{'drive': 'd0', 'iothread-vq-mapping': [{'iothread': 'nope'}]}",
          "nope" },
        { "{'drive': 'd0', 'num-queues': 0}", "num-queues" },
        { "{'drive': 'd0', 'num-queues': 2000}", "num-queues" },
        { "{'drive': 'd0', 'queue-size': 3}", "queue-size" },
        { "{'drive': 'd0', 'batch-max': 0}", "batch-max" },
        { "{'drive': 'd0', 'batch-max': 5000}", "batch-max" },
        { "{'drive': 'd0', 'poll-idle-ns': 5000000000}", "poll-idle-ns" },
        { "{'drive': 'd0', 'uring-batch': 0}", "uring-batch" },
        { "{'drive': 'd0', 'uring-batch': 2000}", "uring-batch" },
        { "{'drive': 'd0', 'uring-batch-ns': 20000000}", "uring-batch-ns" },
        { "{'drive': 'd0', 'ioeventfd': false}", "ioeventfd" },
        { "{'drive': 'd0', 'poll-idle-ns': 'soon'}", "poll-idle-ns" },
        { "{'drive': 'nodrive'}", "nodrive" },
        { "{'drive': 'd0', 'poll-cpus': 'abc'}", "'abc'" },
        { "{'drive': 'd0', 'poll-cpus': '5-2'}", "'5-2'" },
        { "{'drive': 'd0', 'poll-cpus': '0-9999'}", "'0-9999'" },
        { "{'drive': 'd0', 'poll-cpus': '0,'}", "'0,'" },
        { "{'drive': 'd0', 'iothread': 'iot0', 'poll-cpus': '0:0:0'}",
          "'0:0:0'" },
    };
    QTestState *qts = qtest_init("-machine pc -nodefaults "
        "-blockdev driver=null-co,node-name=d0 -object iothread,id=iot0");
    QDict *rsp;

    for (int i = 0; i < ARRAY_SIZE(cases); i++) {
        QDict *args = qobject_to(QDict, qobject_from_json(cases[i].args,
                                                          &error_abort));
        const char *desc;

        qdict_put_str(args, "driver", "virtio-blk-poll-pci");
        qdict_put_str(args, "id", "bad");
        rsp = qtest_qmp(qts, "{'execute': 'device_add', 'arguments': %p}",
                        args);
        g_assert_true(qdict_haskey(rsp, "error"));
        desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
        g_test_message("%s -> %s", cases[i].args, desc);
        g_assert_nonnull(strstr(desc, cases[i].error));
        qobject_unref(rsp);
    }

    /* QEMU is still fine, and the short name maps to the PCI device */
    qtest_qmp_assert_success(qts, "{'execute': 'query-status'}");
    qtest_qmp_assert_success(qts, "{'execute': 'device_add', 'arguments': "
                             "{'driver': 'virtio-blk-poll', 'id': 'good', "
                             "'drive': 'd0'}}");
    rsp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                    "{'path': 'good', 'property': 'type'}}");
    g_assert_cmpstr(qdict_get_str(rsp, "return"), ==, "virtio-blk-poll-pci");
    qobject_unref(rsp);
    qtest_quit(qts);
}

/*
 * While the queue polls, the guest is told not to kick, and requests put
 * in the avail ring without any kick are served.
 */
static void test_poll_without_kick(void)
{
    VbpTest *t = vbp_boot("\"busy-poll\": true", 1,
                          1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];
    QDict *st;

    uint64_t kicks;

    /* The first request wakes the queue up */
    vbp_write_read(t, vq, 0, 0x5a, true);
    g_assert_cmpint(vbp_used_flags(t, vq) & VRING_USED_F_NO_NOTIFY, ==,
                    VRING_USED_F_NO_NOTIFY);
    kicks = vbp_stat(t->qts, 0, "kicks");
    g_assert_cmpint(kicks, <=, 1);

    /* From now on, no kick at all */
    for (int i = 1; i <= 8; i++) {
        vbp_write_read(t, vq, i * 8, 0x10 + i, false);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "kicks"), ==, kicks);
    g_assert_cmpint(vbp_stat(t->qts, 0, "requests"), ==, 18);
    st = vbp_stats(t->qts, "vbp0", 0);
    g_assert_true(qdict_get_bool(st, "polling"));
    qobject_unref(st);
    vbp_shutdown(t);
}

/*
 * Same with VIRTIO_RING_F_EVENT_IDX: the avail event stays behind the
 * driver's index, so the stock kick logic of a driver does not kick.
 */
static void test_poll_event_idx(void)
{
    VbpTest *t = vbp_boot("\"busy-poll\": true", 1, 0);
    QVirtQueue *vq = t->vq[0];

    g_assert_true(vq->event);
    vbp_write_read(t, vq, 0, 0x11, true);
    for (int i = 1; i <= 8; i++) {
        /* qvirtqueue_kick() kicks only if avail_event asks for it */
        vbp_write_read(t, vq, i * 8, 0x20 + i, true);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "kicks"), <=, 2);
    g_assert_cmpint(vbp_stat(t->qts, 0, "requests"), ==, 18);
    vbp_shutdown(t);
}

/* After poll-idle-ns without work, kicks are back on and the thread sleeps */
static void test_idle_sleep(void)
{
    VbpTest *t = vbp_boot("\"poll-idle-ns\": 2000000, \"iothread\": \"iot0\"",
                          1, 1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];
    QDict *st;
    int64_t tid;
    uint64_t t0, t1;

    vbp_write_read(t, vq, 0, 0x33, true);
    g_usleep(200 * 1000);
    g_assert_cmpint(vbp_used_flags(t, vq) & VRING_USED_F_NO_NOTIFY, ==, 0);

    st = vbp_stats(t->qts, "vbp0", 0);
    g_assert_false(qdict_get_bool(st, "polling"));
    g_assert_cmpstr(qdict_get_str(st, "iothread"), ==, "iot0");
    g_assert_cmpint(qdict_get_int(st, "wakeups"), >=, 1);
    g_assert_cmpint(qdict_get_int(st, "poll-ns"), >=, 2000000);
    g_assert_cmpint(qdict_get_int(st, "sleep-ns"), >=, 100 * 1000 * 1000);
    tid = qdict_get_int(st, "thread-id");
    qobject_unref(st);

    /* Asleep: under 5% of a CPU over a second */
    t0 = thread_cpu_ticks(qtest_pid(t->qts), tid);
    g_usleep(G_USEC_PER_SEC);
    t1 = thread_cpu_ticks(qtest_pid(t->qts), tid);
    g_assert_cmpuint((t1 - t0) * 100, <, 5 * sysconf(_SC_CLK_TCK));

    /* A kick wakes it up again */
    vbp_write_read(t, vq, 8, 0x44, true);
    g_assert_cmpint(vbp_stat(t->qts, 0, "kicks"), >=, 2);
    g_assert_cmpint(vbp_stat(t->qts, 0, "wakeups"), >=, 2);
    vbp_shutdown(t);
}

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

/*
 * libqos hands out descriptors from the start of the table and never
 * takes them back: once every request is complete, start over, or a long
 * test runs past the end of the table.
 */
static void vbp_reset_descs(QVirtQueue *vq)
{
    vq->free_head = 0;
    vq->num_free = vq->size;
}

/*
 * Publish @n reads of @len bytes at sectors 0, @stride, 2 * @stride, ...
 * at once (one avail index update), kick, and wait until all are used.
 */
static void vbp_reads_at_once(VbpTest *t, QVirtQueue *vq, int n,
                              uint64_t stride, size_t len, uint64_t *addr)
{
    uint16_t used = vbp_used_idx(t, vq);

    for (int i = 0; i < n; i++) {
        uint32_t head = vbp_add_req(t, vq, VIRTIO_BLK_T_IN, i * stride, NULL,
                                    len, &addr[i]);
        vbp_publish_n(t, vq, head, i, i == n - 1 ? n : 0);
    }
    t->dev->bus->virtqueue_kick(t->dev, vq);
    vbp_wait_used(t, vq, used + n);
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


/* stop while polling: nothing is served; cont: everything is */
static void test_stop_cont(void)
{
    VbpTest *t = vbp_boot("\"busy-poll\": true", 1, 0);
    QVirtQueue *vq = t->vq[0];
    char buf[512];
    uint64_t addr;
    uint32_t head;
    uint16_t used;

    vbp_write_read(t, vq, 0, 0x61, true);
    for (int i = 0; i < 3; i++) {
        qtest_qmp_assert_success(t->qts, "{'execute': 'stop'}");
        used = vbp_used_idx(t, vq);
        memset(buf, 0x70 + i, sizeof(buf));
        head = vbp_add_req(t, vq, VIRTIO_BLK_T_OUT, 16 + i, buf, 512, &addr);
        vbp_publish(t, vq, head);
        g_usleep(50 * 1000);
        g_assert_cmpint(vbp_used_idx(t, vq), ==, used);
        qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
        vbp_wait_used(t, vq, used + 1);
        g_assert_cmpint(vbp_status(t, addr, 512), ==, VIRTIO_BLK_S_OK);
        guest_free(&t->qs->alloc, addr);
        vbp_write_read(t, vq, 32 + i, 0x80 + i, true);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "requests"), ==, 2 + 3 * 3);
    vbp_shutdown(t);
}

/*
 * Drained sections while the queue polls: a resize and a snapshot (which
 * changes the graph under the device); the device keeps serving.
 */
/*
 * Wait (a few seconds at most, doing I/O meanwhile) until queue 0 of vbp0
 * takes the path @expect ("io_uring" or the start of a fallback reason).
 * At most 25 rounds: libqos does not recycle descriptors, and each round
 * takes six of the queue's 256.
 */
static void vbp_wait_path(VbpTest *t, const char *expect)
{
    char *path = NULL;

    for (int i = 0; i < 25; i++) {
        QDict *st = vbp_stats(t->qts, "vbp0", 0);

        g_free(path);
        path = g_strdup(qdict_get_str(st, "path"));
        qobject_unref(st);
        if (g_str_has_prefix(path, expect)) {
            break;
        }
        vbp_write_read(t, t->vq[0], 64, 0x5a, true);
        g_usleep(100 * 1000);
    }
    if (!g_str_has_prefix(path, expect)) {
        g_test_message("path is '%s', expected '%s'", path, expect);
    }
    g_assert_true(g_str_has_prefix(path, expect));
    g_free(path);
}

static void test_drain_while_polling(void)
{
    VbpTest *t = vbp_boot("\"busy-poll\": true, \"iothread\": \"iot0\"",
                          1, 0);
    QVirtQueue *vq = t->vq[0];
    g_autofree char *overlay = g_strdup_printf("%s.qcow2", t->img);

    vbp_write_read(t, vq, 0, 0x01, true);
    vbp_wait_path(t, "io_uring");
    qtest_qmp_assert_success(t->qts, "{'execute': 'block_resize', "
                             "'arguments': {'node-name': 'disk0', "
                             "'size': %d}}", IMAGE_SIZE / 2);
    vbp_write_read(t, vq, 8, 0x02, true);
    g_assert_cmpint(qvirtio_config_readq(t->dev, 0), ==, IMAGE_SIZE / 2 / 512);
    /*
     * block_resize's own BlockBackend leaves after the drained section in
     * which the queue was attached again: the fast path must come back.
     */
    vbp_wait_path(t, "io_uring");

    qtest_qmp_assert_success(t->qts, "{'execute': 'blockdev-snapshot-sync', "
                             "'arguments': {'node-name': 'disk0', "
                             "'snapshot-file': %s, "
                             "'snapshot-node-name': 'snap0', "
                             "'format': 'qcow2'}}", overlay);
    vbp_write_read(t, vq, 16, 0x03, true);
    /* What was written before the snapshot still reads back */
    vbp_write_read(t, vq, 0, 0x01, true);
    unlink(overlay);
    vbp_shutdown(t);
}

/* A device reset under load, then the queue is set up again and works */
/* The state of every queue of vbp0 is @expect */
static void vbp_assert_state(VbpTest *t, const char *expect)
{
    for (int i = 0; i < t->nvqs; i++) {
        QDict *st = vbp_stats(t->qts, "vbp0", i);

        g_assert_cmpstr(qdict_get_str(st, "state"), ==, expect);
        qobject_unref(st);
    }
}

/*
 * A drained section that begins and ends while the queues stop (a block
 * job finishing in the main loop that the stop polls while it waits for
 * each IOThread; x-drain-during-stop makes one at that moment) leaves
 * every queue stopped, for a VM stop and for a device reset; after cont
 * and after the guest sets the device up again, it serves.
 */
static void test_drain_during_stop(void)
{
    VbpTest *t = vbp_boot("\"x-drain-during-stop\": true, "
                          "\"num-queues\": 2", 2, 0);
    QVirtQueue *vq;

    for (int i = 0; i < 2; i++) {
        vbp_write_read(t, t->vq[i], 8 * i, 0x51 + i, true);
    }
    vbp_assert_state(t, "sleeping");
    qtest_qmp_assert_success(t->qts, "{'execute': 'stop'}");
    vbp_assert_state(t, "stopped");
    qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
    for (int i = 0; i < 2; i++) {
        vbp_write_read(t, t->vq[i], 16 + 8 * i, 0x61 + i, true);
    }

    /* A device reset */
    for (int i = 0; i < 2; i++) {
        qvirtqueue_cleanup(t->dev->bus, t->vq[i], &t->qs->alloc);
    }
    qvirtio_reset(t->dev);
    vbp_assert_state(t, "stopped");
    vbp_assert_alive(t);
    qvirtio_set_acknowledge(t->dev);
    qvirtio_set_driver(t->dev);
    qvirtio_set_features(t->dev, t->dev->features);
    for (int i = 0; i < 2; i++) {
        t->vq[i] = qvirtqueue_setup(t->dev, &t->qs->alloc, i);
    }
    qvirtio_set_driver_ok(t->dev);
    vq = t->vq[1];
    vbp_write_read(t, vq, 40, 0x71, true);
    vbp_shutdown(t);
}

static void test_reset_under_load(void)
{
    VbpTest *t = vbp_boot("\"busy-poll\": true", 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint64_t addr[16];

    vbp_write_read(t, vq, 0, 0x11, true);
    for (int i = 0; i < 16; i++) {
        uint32_t head = vbp_add_req(t, vq, VIRTIO_BLK_T_IN, i, NULL, 512,
                                    &addr[i]);
        vbp_publish(t, vq, head);
    }
    /* reset while those may be in flight */
    qvirtqueue_cleanup(t->dev->bus, vq, &t->qs->alloc);
    qvirtio_start_device(t->dev);
    qvirtio_set_features(t->dev, t->dev->features);
    t->vq[0] = vq = qvirtqueue_setup(t->dev, &t->qs->alloc, 0);
    qvirtio_set_driver_ok(t->dev);
    vbp_write_read(t, vq, 8, 0x22, true);
    vbp_write_read(t, vq, 0, 0x11, true);
    vbp_assert_alive(t);
    vbp_shutdown(t);
}

/* A string counter of queue 0 */
static char *vbp_stat_str(QTestState *qts, const char *name)
{
    QDict *st = vbp_stats(qts, "vbp0", 0);
    char *v = g_strdup(qdict_get_str(st, name));

    qobject_unref(st);
    return v;
}

static void vbp_assert_path(VbpTest *t, const char *expect)
{
    g_autofree char *path = vbp_stat_str(t->qts, "path");

    if (!g_str_has_prefix(path, expect)) {
        g_test_message("path is '%s', expected '%s'", path, expect);
    }
    g_assert_true(g_str_has_prefix(path, expect));
}

/* Submit one request with a kick and wait for it; returns the status */
static uint8_t vbp_do(VbpTest *t, QVirtQueue *vq, uint32_t type,
                      uint64_t sector, void *buf, size_t len, int nseg)
{
    uint64_t addr;
    uint16_t used = vbp_used_idx(t, vq);
    uint32_t head = vbp_add_req_seg(t, vq, type, sector,
                                    type == VIRTIO_BLK_T_IN ? NULL : buf,
                                    len, nseg, &addr);
    uint8_t status;

    qvirtqueue_kick(t->qts, t->dev, vq, head);
    vbp_wait_used(t, vq, used + 1);
    status = vbp_status(t, addr, len);
    if (type == VIRTIO_BLK_T_IN && status == VIRTIO_BLK_S_OK) {
        qtest_memread(t->qts, addr + DATA_OFS, buf, len);
    }
    guest_free(&t->qs->alloc, addr);
    return status;
}

/* What the host file holds at @offset */
static void vbp_host_read(const char *path, int64_t offset, void *buf,
                          size_t len)
{
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, len, offset), ==, len);
    close(fd);
}

/*
 * Writes of several sizes and segment counts land in the host file, byte
 * for byte, and read back; then a flush.
 */
typedef enum {
    PATH_FAST,          /* every request on the io_uring path */
    PATH_FALLBACK,      /* every request through the block layer */
    PATH_ANY,
} VbpPath;

static void vbp_check_data(VbpTest *t, VbpPath path)
{
    static const struct {
        uint64_t sector;
        size_t len;
        int nseg;
    } io[] = {
        { 1, 512, 1 }, { 9, 4096, 3 }, { 128, 65536, 2 }, { 301, 1536, 3 },
        { 4096, 131072, 32 },
    };
    QVirtQueue *vq = t->vq[0];

    for (int i = 0; i < ARRAY_SIZE(io); i++) {
        g_autofree uint8_t *w = g_malloc(io[i].len);
        g_autofree uint8_t *r = g_malloc(io[i].len);

        for (size_t j = 0; j < io[i].len; j++) {
            w[j] = i * 37 + j * 7 + (j >> 9);
        }
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, io[i].sector, w,
                               io[i].len, io[i].nseg), ==, VIRTIO_BLK_S_OK);
        vbp_host_read(t->img, io[i].sector * 512, r, io[i].len);
        g_assert_cmpmem(r, io[i].len, w, io[i].len);
        memset(r, 0, io[i].len);
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, io[i].sector, r,
                               io[i].len, io[i].nseg), ==, VIRTIO_BLK_S_OK);
        g_assert_cmpmem(r, io[i].len, w, io[i].len);
    }
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 1), ==,
                    VIRTIO_BLK_S_OK);
    if (path == PATH_FAST) {
        g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==,
                        2 * ARRAY_SIZE(io));
        g_assert_cmpint(vbp_stat(t->qts, 0, "fast-flushes"), ==, 1);
        g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 0);
    } else if (path == PATH_FALLBACK) {
        g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, 0);
        g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==,
                        2 * ARRAY_SIZE(io));
        g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-flushes"), ==, 1);
    }
}

/* The io_uring path, page cache */
static void test_fast_data(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);

    vbp_check_data(t, PATH_FAST);
    vbp_assert_path(t, "io_uring");
    vbp_shutdown(t);
}

/* A disk on a file node with no format node, as libvirt >= 10 sets it up */
static void test_fast_data_file_node(void)
{
    VbpTest *t = vbp_boot_args("-blockdev driver=file,node-name=disk0,"
                               "filename=%s", false, NULL, 1, 0);

    vbp_check_data(t, PATH_FAST);
    vbp_assert_path(t, "io_uring");
    vbp_shutdown(t);
}

/* The io_uring path with a kernel thread polling the submission queue */
static void test_fast_data_sqpoll(void)
{
    VbpTest *t = vbp_boot("\"uring-sqpoll\": true", 1, 0);

    vbp_check_data(t, PATH_FAST);
    vbp_assert_path(t, "io_uring");
    vbp_shutdown(t);
}

/* The io_uring path with O_DIRECT, where the host file system allows it */
static void test_fast_data_direct(void)
{
    g_autofree char *probe = vbp_image_create();
    int fd = open(probe, O_RDWR | O_DIRECT);
    VbpTest *t;

    unlink(probe);
    if (fd < 0) {
        g_test_skip("the temporary directory does not support O_DIRECT");
        return;
    }
    close(fd);
    t = vbp_boot_args("-blockdev driver=file,node-name=file0,filename=%s,"
                      "cache.direct=on -blockdev driver=raw,node-name=disk0,"
                      "file=file0", false, NULL, 1, 0);
    vbp_assert_path(t, "io_uring");
    /*
     * Requests aligned to what the file system needs for O_DIRECT take the
     * fast path (the 64 KiB and 128 KiB ones at least), the others the
     * block layer, which bounces them
     */
    vbp_check_data(t, PATH_ANY);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), >=, 4);
    vbp_shutdown(t);
}

/* The block layer path: fast-path=off */
static void test_fallback_data(void)
{
    VbpTest *t = vbp_boot("\"fast-path\": false", 1, 0);

    vbp_assert_path(t, "disabled");
    vbp_check_data(t, PATH_FALLBACK);
    vbp_shutdown(t);
}

/* A qcow2 image takes the block layer, with the same results */
static void test_fallback_qcow2(void)
{
    g_autofree char *qcow2 = g_strdup_printf("%s/vbp-test-%d.qcow2",
                                             g_get_tmp_dir(), getpid());
    const char *qemu_img = g_getenv("QTEST_QEMU_IMG");
    g_autofree char *cmd = NULL;
    g_autofree char *blockdev = NULL;
    VbpTest *t;
    uint8_t w[8192], r[8192];

    if (!qemu_img) {
        g_test_skip("QTEST_QEMU_IMG not set");
        return;
    }
    cmd = g_strdup_printf("%s create -q -f qcow2 %s 8M", qemu_img, qcow2);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
    /* vbp_boot_args() puts its own image file name in the first %%s */
    blockdev = g_strdup_printf("-blockdev driver=file,node-name=file0,"
                               "filename=%s -blockdev driver=qcow2,"
                               "node-name=disk0,file=file0%%.0s", qcow2);
    t = vbp_boot_args(blockdev, false, NULL, 1, 0);
    vbp_assert_path(t, "not a raw image");
    for (int i = 0; i < 4; i++) {
        memset(w, 0x30 + i, sizeof(w));
        g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_OUT, i * 100, w,
                               sizeof(w), i + 1), ==, VIRTIO_BLK_S_OK);
        g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_IN, i * 100, r,
                               sizeof(r), 1), ==, VIRTIO_BLK_S_OK);
        g_assert_cmpmem(r, sizeof(r), w, sizeof(w));
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 8);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, 0);
    vbp_shutdown(t);
    unlink(qcow2);
}

/*
 * A burst of N requests is submitted with one io_uring_enter(), and
 * reads of page-cached data complete in the same pass (early completion).
 */
static void test_one_submit_per_batch(void)
{
    VbpTest *t = vbp_boot("\"poll-idle-ns\": 1000000", 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096];
    uint64_t addr[16], calls, sqes, early;

    memset(buf, 0xab, sizeof(buf));
    for (int i = 0; i < 16; i++) {
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, i * 16, buf,
                               sizeof(buf), 1), ==, VIRTIO_BLK_S_OK);
    }
    g_usleep(5 * 1000);
    calls = vbp_stat(t->qts, 0, "uring-submit-calls");
    sqes = vbp_stat(t->qts, 0, "uring-sqes");
    early = vbp_stat(t->qts, 0, "early-completions");

    /* 16 reads of 4 KiB, 4 KiB apart: nothing to merge */
    vbp_reads_at_once(t, vq, 16, 16, sizeof(buf), addr);
    for (int i = 0; i < 16; i++) {
        g_assert_cmpint(vbp_status(t, addr[i], sizeof(buf)), ==,
                        VIRTIO_BLK_S_OK);
        g_assert_cmpint(qtest_readb(t->qts, addr[i] + DATA_OFS + 100), ==,
                        0xab);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "uring-sqes") - sqes, ==, 16);
    g_assert_cmpint(vbp_stat(t->qts, 0, "uring-submit-calls") - calls, ==, 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "early-completions") - early, >, 0);
    vbp_shutdown(t);
}

/*
 * Submission batching across passes: requests of a guest that submits in
 * parallel are held for one io_uring submission and submitted without
 * further guest activity; a lone request is submitted by the pass that
 * takes it.
 */
static void test_uring_batch(void)
{
    VbpTest *t = vbp_boot("\"poll-idle-ns\": 1000000000, "
                          "\"poll-adaptive\": false, \"coalesce\": false, "
                          "\"uring-batch\": 8, "
                          "\"uring-batch-ns\": 10000000", 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint64_t calls, sqes, held, addr[2];
    uint8_t buf[512];

    vbp_assert_path(t, "io_uring");
    calls = vbp_stat(t->qts, 0, "uring-submit-calls");
    sqes = vbp_stat(t->qts, 0, "uring-sqes");
    g_assert_cmpint(vbp_stat(t->qts, 0, "uring-held"), ==, 0);

    /* Two at once: held (2 < uring-batch), then submitted together */
    vbp_reads_at_once(t, vq, 2, 16, sizeof(buf), addr);
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(vbp_status(t, addr[i], sizeof(buf)), ==,
                        VIRTIO_BLK_S_OK);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "uring-sqes") - sqes, ==, 2);
    g_assert_cmpint(vbp_stat(t->qts, 0, "uring-submit-calls") - calls, ==, 1);
    held = vbp_stat(t->qts, 0, "uring-held");
    g_assert_cmpint(held, >, 0);

    /* One by one, each waited for: never held */
    calls = vbp_stat(t->qts, 0, "uring-submit-calls");
    for (int i = 0; i < 8; i++) {
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, 64 + i * 16, buf,
                               sizeof(buf), 1), ==, VIRTIO_BLK_S_OK);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "uring-submit-calls") - calls, ==, 8);
    g_assert_cmpint(vbp_stat(t->qts, 0, "uring-held"), ==, held);
    vbp_shutdown(t);
}

/*
 * A read or write with a header and a status byte but no data buffer is
 * a zero-length request for the block layer, which passes it down to
 * file-posix: with aio=io_uring, QEMU 10.2 read the missing iovec through
 * a NULL pointer (patch 0002).  Both complete with 0 bytes.
 */
static void test_empty_rw(void)
{
    VbpTest *t = vbp_boot_args("-blockdev driver=file,node-name=file0,"
                               "filename=%s,aio=io_uring -blockdev "
                               "driver=raw,node-name=disk0,file=file0",
                               false, "\"fast-path\": false", 1, 0);

    vbp_assert_path(t, "disabled");
    g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_IN, 0, NULL, 0, 1), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_OUT, 0, NULL, 0, 1), ==,
                    VIRTIO_BLK_S_OK);
    vbp_write_read(t, t->vq[0], 8, 0x5a, true);
    vbp_shutdown(t);
}

/* A discard or write zeroes of @nsect sectors at @sector */
static uint8_t vbp_dwz(VbpTest *t, uint32_t type, uint64_t sector,
                       uint32_t nsect, bool unmap)
{
    struct virtio_blk_discard_write_zeroes dwz = {
        .sector = cpu_to_le64(sector),
        .num_sectors = cpu_to_le32(nsect),
        .flags = cpu_to_le32(unmap ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0),
    };

    return vbp_do(t, t->vq[0], type, 0, &dwz, sizeof(dwz), 1);
}

/* Dirty bitmaps see the writes of the fast path */
static void test_fast_dirty_bitmap(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096] = { 1 };
    QDict *rsp;
    QList *nodes;
    const QListEntry *e;
    int64_t count = -1;

    vbp_write_read(t, vq, 0, 0x10, true);
    qtest_qmp_assert_success(t->qts, "{'execute': 'block-dirty-bitmap-add', "
                             "'arguments': {'node': 'disk0', 'name': 'bm0', "
                             "'granularity': 65536}}");
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 8, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 1024 * 1024 / 512, buf,
                           sizeof(buf), 2), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_dwz(t, VIRTIO_BLK_T_WRITE_ZEROES,
                            2 * 1024 * 1024 / 512, 8, false), ==,
                    VIRTIO_BLK_S_OK);
    vbp_assert_path(t, "io_uring");
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-dwz"), ==, 1);

    rsp = qtest_qmp(t->qts, "{'execute': 'query-named-block-nodes', "
                    "'arguments': {'flat': true}}");
    nodes = qdict_get_qlist(rsp, "return");
    QLIST_FOREACH_ENTRY(nodes, e) {
        QDict *node = qobject_to(QDict, qlist_entry_obj(e));
        QList *bitmaps;

        if (strcmp(qdict_get_str(node, "node-name"), "disk0") ||
            !qdict_haskey(node, "dirty-bitmaps")) {
            continue;
        }
        bitmaps = qdict_get_qlist(node, "dirty-bitmaps");
        count = qdict_get_int(qobject_to(QDict, qlist_peek(bitmaps)),
                              "count");
    }
    qobject_unref(rsp);
    g_assert_cmpint(count, ==, 3 * 65536);
    vbp_shutdown(t);
}

/* Throttling moves requests to the block layer, and it takes effect */
static void test_throttle(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint64_t addr[5];
    uint16_t used;

    vbp_write_read(t, vq, 0, 0x10, true);
    vbp_assert_path(t, "io_uring");
    qtest_qmp_assert_success(t->qts, "{'execute': 'block_set_io_throttle', "
        "'arguments': {'id': '/machine/peripheral/vbp0/virtio-backend', 'bps': 0, 'bps_rd': 0, 'bps_wr': 0, "
        "'iops': 1, 'iops_rd': 0, 'iops_wr': 0}}");
    vbp_assert_path(t, "I/O throttling");

    used = vbp_used_idx(t, vq);
    for (int i = 0; i < 5; i++) {
        /*
         * Not adjacent: requests one pass takes together must not be
         * merged into one, or fallback-rw would depend on the timing
         */
        uint32_t head = vbp_add_req(t, vq, VIRTIO_BLK_T_IN, i * 16, NULL, 512,
                                    &addr[i]);
        qvirtqueue_kick(t->qts, t->dev, vq, head);
    }
    /* Throttled: the virtual clock of qtest stands still */
    g_usleep(200 * 1000);
    g_assert_cmpint((uint16_t)(vbp_used_idx(t, vq) - used), <, 5);
    /*
     * Let virtual time pass until all are done: a throttled request
     * waits for a timer armed at its own submission time plus the
     * throttle's wait, so one step is not enough for a request that
     * reached the throttle queue late, or after another one was released
     */
    {
        gint64 start = g_get_monotonic_time();

        while (vbp_used_idx(t, vq) != (uint16_t)(used + 5)) {
            g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
            qtest_clock_step(t->qts, 1000 * 1000 * 1000LL);
            g_usleep(1000);
        }
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), >=, 5);

    /* Without limits the fast path is back */
    qtest_qmp_assert_success(t->qts, "{'execute': 'block_set_io_throttle', "
        "'arguments': {'id': '/machine/peripheral/vbp0/virtio-backend', 'bps': 0, 'bps_rd': 0, 'bps_wr': 0, "
        "'iops': 0, 'iops_rd': 0, 'iops_wr': 0}}");
    vbp_assert_path(t, "io_uring");
    vbp_shutdown(t);
}

/* A mirror job sees every write; the copy equals the source */
static void test_mirror(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QVirtQueue *vq = t->vq[0];
    g_autofree char *target = vbp_image_create();
    g_autofree uint8_t *a = g_malloc(IMAGE_SIZE);
    g_autofree uint8_t *b = g_malloc(IMAGE_SIZE);
    uint8_t buf[65536];
    uint64_t fast;

    for (int i = 0; i < 8; i++) {
        memset(buf, 0x20 + i, sizeof(buf));
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, i * 1024, buf,
                               sizeof(buf), 4), ==, VIRTIO_BLK_S_OK);
    }
    qtest_qmp_assert_success(t->qts, "{'execute': 'blockdev-add', "
        "'arguments': {'driver': 'raw', 'node-name': 'tgt', 'file': "
        "{'driver': 'file', 'filename': %s}}}", target);
    qtest_qmp_assert_success(t->qts, "{'execute': 'blockdev-mirror', "
        "'arguments': {'job-id': 'm0', 'device': 'disk0', 'target': 'tgt', "
        "'sync': 'full'}}");
    vbp_assert_path(t, "");
    fast = vbp_stat(t->qts, 0, "fast-rw");
    /* writes while the job runs */
    for (int i = 0; i < 8; i++) {
        memset(buf, 0x40 + i, sizeof(buf));
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, i * 1024 + 64, buf,
                               sizeof(buf), 4), ==, VIRTIO_BLK_S_OK);
    }
    qtest_qmp_eventwait(t->qts, "BLOCK_JOB_READY");
    for (int i = 0; i < 8; i++) {
        memset(buf, 0x60 + i, sizeof(buf));
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, i * 1024 + 256, buf,
                               sizeof(buf), 4), ==, VIRTIO_BLK_S_OK);
    }
    /* none of those took the fast path */
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, fast);
    /* cancelling a ready job leaves a consistent copy, without a pivot */
    qtest_qmp_assert_success(t->qts, "{'execute': 'block-job-cancel', "
                             "'arguments': {'device': 'm0'}}");
    qtest_qmp_eventwait(t->qts, "BLOCK_JOB_COMPLETED");
    vbp_host_read(t->img, 0, a, IMAGE_SIZE);
    vbp_host_read(target, 0, b, IMAGE_SIZE);
    g_assert_true(memcmp(a, b, IMAGE_SIZE) == 0);

    /* the job is gone: the fast path is back */
    qtest_qmp_assert_success(t->qts, "{'execute': 'blockdev-del', "
                             "'arguments': {'node-name': 'tgt'}}");
    vbp_write_read(t, vq, 0, 0x10, true);
    vbp_assert_path(t, "io_uring");
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), >, fast);
    unlink(target);
    vbp_shutdown(t);
}

/*
 * An image inactivated while the guest runs (blockdev-set-active, as a
 * migration does at its end): no request may reach it through the fast
 * path; once active again, the fast path is back.
 */
static void test_inactive(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096] = { 7 };
    uint64_t fast;
    QDict *rsp;

    vbp_write_read(t, vq, 0, 0x10, true);
    vbp_assert_path(t, "io_uring");
    rsp = qtest_qmp(t->qts, "{'execute': 'blockdev-set-active', "
                    "'arguments': {'node-name': 'disk0', 'active': false}}");
    if (qdict_haskey(rsp, "error")) {
        /* refused while the device writes: then nothing changed */
        g_test_message("inactivation refused: %s", qdict_get_str(
                       qdict_get_qdict(rsp, "error"), "desc"));
        vbp_write_read(t, vq, 8, 0x20, true);
        vbp_assert_path(t, "io_uring");
    } else {
        vbp_assert_path(t, "image inactive");
        fast = vbp_stat(t->qts, 0, "fast-rw");
        /* writes fail (werror=enospc reports EPERM), reads work */
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 8, buf, sizeof(buf),
                               1), ==, VIRTIO_BLK_S_IOERR);
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, 8, buf, sizeof(buf),
                               1), ==, VIRTIO_BLK_S_OK);
        g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, fast);
        qtest_qmp_assert_success(t->qts, "{'execute': 'blockdev-set-active', "
                                 "'arguments': {'node-name': 'disk0', "
                                 "'active': true}}");
        vbp_write_read(t, vq, 16, 0x30, true);
        vbp_assert_path(t, "io_uring");
    }
    qobject_unref(rsp);
    vbp_assert_alive(t);
    vbp_shutdown(t);
}

static int64_t vbp_host_blocks(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_blocks;
}

static bool vbp_host_is(const char *path, int64_t offset, size_t len,
                        uint8_t byte)
{
    g_autofree uint8_t *buf = g_malloc(len);

    vbp_host_read(path, offset, buf, len);
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != byte) {
            return false;
        }
    }
    return true;
}

/* Fill the first MiB of the disk with @byte, through the guest */
static void vbp_fill(VbpTest *t, uint8_t byte)
{
    g_autofree uint8_t *buf = g_malloc(65536);

    memset(buf, byte, 65536);
    for (int i = 0; i < 16; i++) {
        g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_OUT, i * 128, buf,
                               65536, 4), ==, VIRTIO_BLK_S_OK);
    }
}

/*
 * Discard and write zeroes on the fast path, with file-posix's semantics:
 * without discard=unmap a discard changes nothing and write zeroes
 * writes zeroes; with it, both punch holes.
 */
static void test_fast_discard_write_zeroes(const void *opaque)
{
    bool unmap = GPOINTER_TO_INT(opaque);
    g_autofree char *blockdev = g_strdup_printf(
        "-blockdev driver=file,node-name=file0,filename=%%s%s "
        "-blockdev driver=raw,node-name=disk0,file=file0%s",
        unmap ? ",discard=unmap" : "", unmap ? ",discard=unmap" : "");
    VbpTest *t = vbp_boot_args(blockdev, false, NULL, 1, 0);
    int64_t blocks;

    vbp_fill(t, 0x5a);
    blocks = vbp_host_blocks(t->img);

    /* write zeroes, 64 KiB at 128 KiB */
    g_assert_cmpint(vbp_dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, 256, 128, false),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_true(vbp_host_is(t->img, 128 * 1024, 65536, 0));
    g_assert_true(vbp_host_is(t->img, 0, 128 * 1024, 0x5a));
    g_assert_true(vbp_host_is(t->img, 192 * 1024, 65536, 0x5a));

    /* discard 256 KiB at 512 KiB */
    g_assert_cmpint(vbp_dwz(t, VIRTIO_BLK_T_DISCARD, 1024, 512, false),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_true(vbp_host_is(t->img, 512 * 1024, 256 * 1024,
                              unmap ? 0 : 0x5a));
    g_assert_true(vbp_host_is(t->img, 768 * 1024, 256 * 1024, 0x5a));

    /* write zeroes that may unmap, 64 KiB at 320 KiB */
    g_assert_cmpint(vbp_dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, 640, 128, true),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_true(vbp_host_is(t->img, 320 * 1024, 65536, 0));
    if (unmap) {
        /* the discard and the unmapping write zeroes freed space */
        g_assert_cmpint(vbp_host_blocks(t->img), <=,
                        blocks - (256 + 64) * 1024 / 512);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-dwz"), ==, 3);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-dwz"), ==, 0);
    vbp_shutdown(t);
}

/* A read-only image: reads take the fast path, writes fail as upstream */
static void test_read_only(void)
{
    VbpTest *t = vbp_boot_args("-blockdev driver=file,node-name=file0,"
                               "filename=%s,read-only=on -blockdev driver=raw,"
                               "node-name=disk0,file=file0,read-only=on",
                               false, NULL, 1, 0);
    uint8_t buf[512] = { 0 };

    g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_IN, 0, buf, 512, 1),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, 1);
    g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_OUT, 0, buf, 512, 1),
                    ==, VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 1);
    vbp_assert_alive(t);
    vbp_shutdown(t);
}

static bool vbp_vm_running(VbpTest *t)
{
    QDict *rsp = qtest_qmp(t->qts, "{'execute': 'query-status'}");
    bool running = qdict_get_bool(qdict_get_qdict(rsp, "return"), "running");

    qobject_unref(rsp);
    return running;
}

/*
 * Write @n chunks of @len bytes; when the VM stops on a write error,
 * call @fix and continue.  Every chunk must be on the host at the end.
 * Returns how many times the VM stopped.
 */
static int vbp_write_through_stops(VbpTest *t, size_t len, int n,
                                   void (*fix)(void *), void *opaque)
{
    QVirtQueue *vq = t->vq[0];
    g_autofree uint8_t *w = g_malloc(len);
    g_autofree uint8_t *r = g_malloc(len);
    int stops = 0;

    for (int i = 0; i < n; i++) {
        uint16_t used = vbp_used_idx(t, vq);
        uint64_t addr;
        uint32_t head;
        gint64 start = g_get_monotonic_time();

        memset(w, 0x50 + i, len);
        head = vbp_add_req(t, vq, VIRTIO_BLK_T_OUT, i * len / 512, w, len,
                           &addr);
        qvirtqueue_kick(t->qts, t->dev, vq, head);
        while (vbp_used_idx(t, vq) == used) {
            if (!vbp_vm_running(t)) {
                /* werror=stop: the request waits, uncompleted */
                g_usleep(20 * 1000);
                g_assert_cmpint(vbp_used_idx(t, vq), ==, used);
                stops++;
                fix(opaque);
                qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
            }
            g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
            g_usleep(1000);
        }
        g_assert_cmpint(vbp_status(t, addr, len), ==, VIRTIO_BLK_S_OK);
        guest_free(&t->qs->alloc, addr);
    }
    for (int i = 0; i < n; i++) {
        memset(w, 0x50 + i, len);
        vbp_host_read(t->img, i * len, r, len);
        g_assert_cmpmem(r, len, w, len);
    }
    return stops;
}

static void vbp_tmpfs_grow(void *dir)
{
    g_assert_cmpint(mount(NULL, dir, NULL, MS_REMOUNT, "size=16m"), ==, 0);
}

/*
 * ENOSPC from a real file system with werror=stop: the VM stops, and
 * after making room and 'cont' the write completes and the data is right.
 * On the io_uring path (@opaque false) and through the block layer.
 */
static void test_enospc_stop(const void *opaque)
{
    bool fallback = GPOINTER_TO_INT(opaque);
    g_autofree char *dir = g_dir_make_tmp("vbp-enospc-XXXXXX", NULL);
    g_autofree char *img = NULL;
    g_autofree char *blockdev = NULL;
    VbpTest *t;
    int fd;

    g_assert_nonnull(dir);
    if (geteuid() != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        rmdir(dir);
        g_test_skip("needs root to mount a small tmpfs");
        return;
    }
    img = g_strdup_printf("%s/disk.raw", dir);
    fd = open(img, O_RDWR | O_CREAT, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, IMAGE_SIZE), ==, 0);
    close(fd);

    blockdev = g_strdup_printf("-blockdev driver=file,node-name=file0,"
                               "filename=%s -blockdev driver=raw,"
                               "node-name=disk0,file=file0%%.0s", img);
    t = vbp_boot_args(blockdev, false, fallback ?
                      "\"werror\": \"stop\", \"fast-path\": false" :
                      "\"werror\": \"stop\"", 1, 0);
    g_free(t->img);
    t->img = g_strdup(img);
    vbp_assert_path(t, fallback ? "disabled" : "io_uring");

    g_assert_cmpint(vbp_write_through_stops(t, 256 * 1024, 8,
                                            vbp_tmpfs_grow, dir), >=, 1);
    if (fallback) {
        g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, 0);
    } else {
        g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 0);
    }
    vbp_shutdown(t);
    umount2(dir, MNT_DETACH);
    rmdir(dir);
}

/* Write the config's wce byte, as Linux does for /sys/block/vda/cache_type */
static void vbp_set_wce(VbpTest *t, uint8_t wce)
{
    qpci_io_writeb(t->pdev->pdev, t->pdev->bar,
                   t->pdev->device_cfg_offset +
                   offsetof(struct virtio_blk_config, wce), wce);
    g_assert_cmpint(qvirtio_config_readb(t->dev,
                    offsetof(struct virtio_blk_config, wce)), ==, wce);
}

/*
 * A write-through disk (write-cache=off, or the guest turning its cache
 * off through the config's wce byte) gets durable writes on the fast
 * path (RWF_DSYNC, counted in fast-fua), as the block layer's FUA gives
 * them; with the write cache on, plain writes; cache.no-flush=on drops
 * FUA as the block layer does.
 */
static void test_fast_write_through(const void *opaque)
{
    bool no_flush = GPOINTER_TO_INT(opaque);
    VbpTest *t = vbp_boot_args(no_flush ?
        "-blockdev driver=file,node-name=file0,filename=%s,"
        "cache.no-flush=on -blockdev driver=raw,node-name=disk0,"
        "file=file0" : NULL, false, "\"write-cache\": \"off\"", 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096];
    uint64_t fua = no_flush ? 0 : 4;

    vbp_assert_path(t, "io_uring");
    g_assert_cmpint(qvirtio_config_readb(t->dev,
                    offsetof(struct virtio_blk_config, wce)), ==, 0);
    memset(buf, 0x3c, sizeof(buf));
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, i * 8, buf,
                               sizeof(buf), 1), ==, VIRTIO_BLK_S_OK);
    }
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, 5);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-fua"), ==, fua);

    /* The guest turns its write cache on: plain writes */
    vbp_set_wce(t, 1);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 64, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-fua"), ==, fua);

    /* ... and off again: durable writes again */
    vbp_set_wce(t, 0);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 72, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-fua"), ==,
                    no_flush ? 0 : fua + 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 0);

    /* cache.no-flush=on: the block layer makes the flush a no-op */
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 1), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-flushes"), ==, no_flush ? 0 : 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-flushes"), ==,
                    no_flush ? 1 : 0);
    vbp_shutdown(t);
}

/*
 * block-set-write-threshold needs no drain: a write past the threshold
 * takes the block layer, which sends BLOCK_WRITE_THRESHOLD, and the
 * writes below it stay on the fast path once the threshold is gone.
 */
static void test_fast_write_threshold(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096];
    QDict *ev;

    vbp_assert_path(t, "io_uring");
    memset(buf, 0x77, sizeof(buf));
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 0, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);
    qtest_qmp_assert_success(t->qts, "{'execute': 'block-set-write-threshold',"
                             " 'arguments': {'node-name': 'file0', "
                             "'write-threshold': %d}}", 1024 * 1024);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 2048, buf, sizeof(buf),
                           1), ==, VIRTIO_BLK_S_OK);
    /* Before waiting for the event, which never comes otherwise */
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 1);
    ev = qtest_qmp_eventwait_ref(t->qts, "BLOCK_WRITE_THRESHOLD");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "node-name"),
                    ==, "file0");
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"),
                                  "write-threshold"), ==, 1024 * 1024);
    qobject_unref(ev);
    /* The event cleared the threshold: the fast path again */
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 4096, buf, sizeof(buf),
                           1), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, 2);
    vbp_shutdown(t);
}

/*
 * The kernel refuses an io_uring submission (injected): the requests of
 * that submission complete with an error under the werror policy, none
 * hangs, and the next ones work.  @opaque: werror=stop, where the failed
 * write waits for 'cont' and then succeeds.
 */
static void test_fast_submit_error(const void *opaque)
{
    bool stop = GPOINTER_TO_INT(opaque);
    VbpTest *t = vbp_boot(stop ? "\"werror\": \"stop\"" :
                          "\"werror\": \"report\"", 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t w[4096], r[4096];
    uint64_t addr;
    uint16_t used;
    uint32_t head;

    vbp_assert_path(t, "io_uring");
    memset(w, 0x11, sizeof(w));
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 0, w, sizeof(w), 1), ==,
                    VIRTIO_BLK_S_OK);

    qtest_qmp_assert_success(t->qts, "{'execute': 'qom-set', 'arguments': "
                             "{'path': 'vbp0', 'property': "
                             "'x-fail-next-submit', 'value': 5}}");
    memset(w, 0x22, sizeof(w));
    used = vbp_used_idx(t, vq);
    head = vbp_add_req(t, vq, VIRTIO_BLK_T_OUT, 0, w, sizeof(w), &addr);
    qvirtqueue_kick(t->qts, t->dev, vq, head);
    if (stop) {
        QDict *ev = qtest_qmp_eventwait_ref(t->qts, "BLOCK_IO_ERROR");

        g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "action"),
                        ==, "stop");
        qobject_unref(ev);
        while (vbp_vm_running(t)) {
            g_usleep(1000);
        }
        g_assert_cmpint(vbp_used_idx(t, vq), ==, used);
        qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
        vbp_wait_used(t, vq, used + 1);
        g_assert_cmpint(vbp_status(t, addr, sizeof(w)), ==, VIRTIO_BLK_S_OK);
    } else {
        vbp_wait_used(t, vq, used + 1);
        g_assert_cmpint(vbp_status(t, addr, sizeof(w)), ==,
                        VIRTIO_BLK_S_IOERR);
        memset(w, 0x11, sizeof(w));
    }
    guest_free(&t->qs->alloc, addr);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, 0, r, sizeof(r), 1), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpmem(r, sizeof(r), w, sizeof(w));
    /* The ring still works, and a drained section does not hang */
    memset(w, 0x33, sizeof(w));
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 8, w, sizeof(w), 1), ==,
                    VIRTIO_BLK_S_OK);
    qtest_qmp_assert_success(t->qts, "{'execute': 'stop'}");
    qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
    vbp_write_read(t, vq, 16, 0x44, true);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 0);
    vbp_shutdown(t);
}

static void vbp_qom_set_int(VbpTest *t, const char *prop, int64_t value)
{
    qtest_qmp_assert_success(t->qts, "{'execute': 'qom-set', 'arguments': "
                             "{'path': 'vbp0', 'property': %s, "
                             "'value': %" PRId64 "}}", prop, value);
}

/*
 * The kernel takes fewer SQEs than it is given (x-short-next-submit):
 * those left in the SQ are submitted by the reap of the ones it took,
 * without another kick, and none is left behind when the queue stops.
 * Interrupt mode (poll-idle-ns=0): no polling pass submits them either.
 */
static void test_fast_short_submit(void)
{
    VbpTest *t = vbp_boot("\"poll-idle-ns\": 0, \"werror\": \"report\"",
                          1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t w[2][4096], r[4096];
    uint64_t addr[2];
    uint32_t head[2];
    uint16_t used;

    vbp_assert_path(t, "io_uring");
    /* Two requests in one kick, one submission: the kernel takes one */
    vbp_qom_set_int(t, "x-short-next-submit", 1);
    used = vbp_used_idx(t, vq);
    for (int i = 0; i < 2; i++) {
        memset(w[i], 0x31 + i, sizeof(w[i]));
        head[i] = vbp_add_req(t, vq, VIRTIO_BLK_T_OUT, i * 8, w[i],
                              sizeof(w[i]), &addr[i]);
        vbp_publish_n(t, vq, head[i], i, i ? 2 : 0);
    }
    t->dev->bus->virtqueue_kick(t->dev, vq);
    vbp_wait_used(t, vq, used + 2);
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(vbp_status(t, addr[i], sizeof(w[i])), ==,
                        VIRTIO_BLK_S_OK);
        guest_free(&t->qs->alloc, addr[i]);
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, i * 8, r, sizeof(r),
                               1), ==, VIRTIO_BLK_S_OK);
        g_assert_cmpmem(r, sizeof(r), w[i], sizeof(w[i]));
    }

    /*
     * A QD1 guest after a failed submission: the next submission takes
     * only the no-op left of the failed SQE; the request behind it is
     * submitted by the no-op's completion, not by the next kick.
     */
    vbp_qom_set_int(t, "x-fail-next-submit", 5);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 16, w[0], sizeof(w[0]),
                           1), ==, VIRTIO_BLK_S_IOERR);
    vbp_qom_set_int(t, "x-short-next-submit", 1);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 16, w[1], sizeof(w[1]),
                           1), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, 16, r, sizeof(r), 1), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpmem(r, sizeof(r), w[1], sizeof(w[1]));

    /*
     * The kernel takes none and has none: nothing would ever submit the
     * request, so it fails (as for -EAGAIN), and stop does not wait for it
     */
    vbp_qom_set_int(t, "x-short-next-submit", 0);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 24, w[0], sizeof(w[0]),
                           1), ==, VIRTIO_BLK_S_IOERR);
    qtest_qmp_assert_success(t->qts, "{'execute': 'stop'}");
    qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
    vbp_write_read(t, vq, 32, 0x44, true);
    g_assert_cmpint(vbp_stat(t->qts, 0, "fallback-rw"), ==, 0);
    vbp_shutdown(t);
}

/* The dirty bitmap of a node in @t's QEMU, its dirty byte count */
static int64_t vbp_bitmap_count(VbpTest *t, const char *node_name)
{
    QDict *rsp = qtest_qmp(t->qts, "{'execute': 'query-named-block-nodes', "
                           "'arguments': {'flat': true}}");
    QList *nodes = qdict_get_qlist(rsp, "return");
    const QListEntry *e;
    int64_t count = -1;

    QLIST_FOREACH_ENTRY(nodes, e) {
        QDict *node = qobject_to(QDict, qlist_entry_obj(e));
        QList *bitmaps;

        if (strcmp(qdict_get_str(node, "node-name"), node_name) ||
            !qdict_haskey(node, "dirty-bitmaps")) {
            continue;
        }
        bitmaps = qdict_get_qlist(node, "dirty-bitmaps");
        count = qdict_get_int(qobject_to(QDict, qlist_peek(bitmaps)),
                              "count");
    }
    qobject_unref(rsp);
    return count;
}

/*
 * A fast path write that fails still dirties the bitmap, as the block
 * layer's does (bdrv_co_write_req_finish(): whatever the result, some
 * bytes may have changed before the error)
 */
static void test_fast_dirty_bitmap_failed_write(void)
{
    VbpTest *t = vbp_boot("\"werror\": \"report\"", 1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096] = { 7 };

    vbp_write_read(t, vq, 0, 0x10, true);
    qtest_qmp_assert_success(t->qts, "{'execute': 'block-dirty-bitmap-add', "
                             "'arguments': {'node': 'disk0', 'name': 'bm0', "
                             "'granularity': 65536}}");
    vbp_qom_set_int(t, "x-fail-next-submit", 5);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 1024 * 1024 / 512, buf,
                           sizeof(buf), 1), ==, VIRTIO_BLK_S_IOERR);
    vbp_assert_path(t, "io_uring");
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-rw"), ==, 3);
    g_assert_cmpint(vbp_bitmap_count(t, "disk0"), ==, 65536);
    vbp_shutdown(t);
}

/* x-fail-next-submit refuses what is not an errno */
static void test_fail_next_submit_bad(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QDict *rsp = qtest_qmp(t->qts, "{'execute': 'qom-set', 'arguments': "
                           "{'path': 'vbp0', 'property': "
                           "'x-fail-next-submit', 'value': 0}}");

    g_assert_true(qdict_haskey(rsp, "error"));
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"), "(0)"));
    qobject_unref(rsp);
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
 * poll-hybrid: a guest that waits for each request and pauses before the
 * next (0.5 ms here) finds the queue asleep on a timer between requests,
 * not polling through the gap (1 s of poll-idle-ns); every request is
 * served, whether the timer's polling or a kick finds it.  Off: none.
 */
static void vbp_paced_reads(VbpTest *t, int n)
{
    uint8_t buf[512];

    for (int i = 0; i < n; i++) {
        g_usleep(500);
        g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_IN, i * 16, buf,
                               sizeof(buf), 1), ==, VIRTIO_BLK_S_OK);
    }
}

static void test_poll_hybrid(void)
{
    VbpTest *t = vbp_boot_args("null", false, "\"poll-idle-ns\": 1000000000",
                               1, 0);

    vbp_paced_reads(t, 10);
    g_assert_cmpint(vbp_stat(t->qts, 0, "timed-sleeps"), >, 0);
    g_assert_cmpint(vbp_stat(t->qts, 0, "requests"), ==, 10);
    vbp_shutdown(t);

    t = vbp_boot_args("null", false, "\"poll-idle-ns\": 1000000000, "
                      "\"poll-hybrid\": false", 1, 0);
    vbp_paced_reads(t, 10);
    g_assert_cmpint(vbp_stat(t->qts, 0, "timed-sleeps"), ==, 0);
    g_assert_cmpint(vbp_stat(t->qts, 0, "timed-wakeups"), ==, 0);
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
    qvirtqueue_cleanup(t->dev->bus, vq, &t->qs->alloc);
    qvirtio_start_device(t->dev);
    qvirtio_set_features(t->dev, t->dev->features);
    t->vq[0] = vq = qvirtqueue_setup(t->dev, &t->qs->alloc, 0);
    qvirtqueue_pci_msix_setup(t->pdev, (QVirtQueuePCI *)vq, &t->qs->alloc, 1);
    qvirtio_set_driver_ok(t->dev);
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

/*
 * poll-adaptive: a guest whose requests come further apart than
 * poll-idle-ns gets no polling at all (window 0: each kick is served and
 * the queue sleeps); when its pace allows, the queue polls again, with a
 * window that grows until it catches the next request.
 */
static void test_poll_adaptive(void)
{
    VbpTest *t = vbp_boot_args("null", false, "\"poll-idle-ns\": 10000000",
                               1, 0);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[512];
    QDict *st;

    for (int i = 0; i < 20; i++) {
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, i, buf, sizeof(buf),
                               1), ==, VIRTIO_BLK_S_OK);
        g_usleep(60 * 1000);
    }
    /* 60 ms apart: a window of at most 10 ms never catches the next one */
    st = vbp_stats(t->qts, "vbp0", 0);
    g_assert_cmpint(qdict_get_int(st, "poll-window-ns"), ==, 0);
    g_assert_false(qdict_get_bool(st, "polling"));
    qobject_unref(st);

    for (int i = 0; i < 64; i++) {
        g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_IN, i, buf, sizeof(buf),
                               1), ==, VIRTIO_BLK_S_OK);
    }
    /* Back to back: polling pays again, within the bound */
    st = vbp_stats(t->qts, "vbp0", 0);
    g_assert_cmpint(qdict_get_int(st, "poll-window-ns"), >, 0);
    g_assert_cmpint(qdict_get_int(st, "poll-window-ns"), <=, 10000000);
    qobject_unref(st);
    vbp_shutdown(t);
}

static void vbp_nothing(void *opaque)
{
}

/* EIO injected by blkdebug (block layer path) with werror=stop */
static void test_eio_stop(void)
{
    VbpTest *t = vbp_boot_args("-blockdev driver=blkdebug,node-name=dbg,"
        "image.driver=file,image.filename=%s,"
        "inject-error.0.event=write_aio,inject-error.0.errno=5,"
        "inject-error.0.once=on -blockdev driver=raw,node-name=disk0,"
        "file=dbg", false, "\"werror\": \"stop\"", 1, 0);

    vbp_assert_path(t, "raw image not over");
    g_assert_cmpint(vbp_write_through_stops(t, 4096, 4, vbp_nothing, NULL),
                    ==, 1);
    vbp_shutdown(t);
}

/*
 * With io_uring disabled (kernel.io_uring_disabled=2) the device serves
 * everything through the block layer and says why.  It changes a sysctl
 * of the host for a moment, so it runs apart from other tests.
 */
static void test_uring_disabled(void)
{
    const char *sysctl = "/proc/sys/kernel/io_uring_disabled";
    g_autofree char *old = NULL;
    VbpTest *t;

    if (geteuid() != 0 || !g_file_get_contents(sysctl, &old, NULL, NULL) ||
        !g_file_set_contents(sysctl, "2", -1, NULL)) {
        g_test_skip("needs root and kernel.io_uring_disabled");
        return;
    }
    t = vbp_boot(NULL, 1, 0);
    g_assert_true(g_file_set_contents(sysctl, old, -1, NULL));

    vbp_assert_path(t, "io_uring unavailable");
    vbp_check_data(t, PATH_FALLBACK);
    vbp_shutdown(t);
}

/* A disk served over NBD (qemu-storage-daemon on a unix socket) */
static void test_fallback_nbd(void)
{
    const char *qsd = g_getenv("QTEST_QEMU_STORAGE_DAEMON_BINARY");
    g_autofree char *img = vbp_image_create();
    g_autofree char *sock = g_strdup_printf("%s.sock", img);
    g_autofree char *blockdev_arg = g_strdup_printf(
        "driver=file,node-name=exp0,filename=%s", img);
    g_autofree char *server_arg = g_strdup_printf(
        "addr.type=unix,addr.path=%s", sock);
    g_autofree char *blockdev = g_strdup_printf(
        "-blockdev driver=nbd,node-name=disk0,server.type=unix,"
        "server.path=%s,export=exp0%%.0s", sock);
    const char *argv[] = {
        qsd, "--blockdev", blockdev_arg, "--nbd-server", server_arg,
        "--export", "type=nbd,id=e0,node-name=exp0,writable=on", NULL
    };
    GPid pid;
    VbpTest *t;

    if (!qsd) {
        g_test_skip("QTEST_QEMU_STORAGE_DAEMON_BINARY not set");
        return;
    }
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DEFAULT, NULL, NULL, &pid, NULL));
    for (int i = 0; !g_file_test(sock, G_FILE_TEST_EXISTS); i++) {
        g_assert_cmpint(i, <, 3000);
        g_usleep(10 * 1000);
    }
    t = vbp_boot_args(blockdev, false, NULL, 1, 0);
    g_free(t->img);
    t->img = g_strdup(img);
    vbp_assert_path(t, "protocol node without a file descriptor");
    vbp_check_data(t, PATH_FALLBACK);
    vbp_shutdown(t);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
    unlink(sock);
}

/* Two queues on two IOThreads, interleaved, all data right */
static void test_two_iothreads(void)
{
    VbpTest *t = vbp_boot("\"num-queues\": 2, \"iothread-vq-mapping\": "
                          "[{\"iothread\": \"iot0\", \"vqs\": [0]}, "
                          "{\"iothread\": \"iot1\", \"vqs\": [1]}]", 2, 0);
    QDict *s0, *s1;

    for (int i = 0; i < 16; i++) {
        vbp_write_read(t, t->vq[i % 2], i * 8, i, true);
    }
    s0 = vbp_stats(t->qts, "vbp0", 0);
    s1 = vbp_stats(t->qts, "vbp0", 1);
    g_assert_cmpstr(qdict_get_str(s0, "iothread"), ==, "iot0");
    g_assert_cmpstr(qdict_get_str(s1, "iothread"), ==, "iot1");
    g_assert_cmpint(qdict_get_int(s0, "thread-id"), !=,
                    qdict_get_int(s1, "thread-id"));
    g_assert_cmpint(qdict_get_int(s0, "requests"), ==, 16);
    g_assert_cmpint(qdict_get_int(s1, "requests"), ==, 16);
    qobject_unref(s0);
    qobject_unref(s1);
    vbp_shutdown(t);
}

/* The Cpus_allowed_list of thread @tid of QEMU */
static char *thread_cpus_allowed(pid_t pid, int64_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%" PRId64
                                            "/status", pid, tid);
    g_autofree char *buf = NULL;
    char *line, *end;

    g_assert_true(g_file_get_contents(path, &buf, NULL, NULL));
    line = strstr(buf, "Cpus_allowed_list:");
    g_assert_nonnull(line);
    line += strlen("Cpus_allowed_list:");
    end = strchr(line, '\n');
    return g_strstrip(g_strndup(line, end - line));
}

/* poll-cpus pins each serving IOThread where it was asked */
static void test_poll_cpus(void)
{
    VbpTest *t;
    const char *last = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? "1" : "0";
    g_autofree char *opts = g_strdup_printf(
        "\"num-queues\": 2, \"poll-cpus\": \"0:%s\", "
        "\"iothread-vq-mapping\": [{\"iothread\": \"iot0\", \"vqs\": [0]}, "
        "{\"iothread\": \"iot1\", \"vqs\": [1]}]", last);

    t = vbp_boot(opts, 2, 0);
    for (int q = 0; q < 2; q++) {
        QDict *st = vbp_stats(t->qts, "vbp0", q);
        g_autofree char *cpus = thread_cpus_allowed(qtest_pid(t->qts),
                                    qdict_get_int(st, "thread-id"));

        g_assert_cmpstr(cpus, ==, q == 0 ? "0" : last);
        qobject_unref(st);
    }
    vbp_write_read(t, t->vq[0], 0, 0x12, true);
    vbp_write_read(t, t->vq[1], 8, 0x34, true);

    /*
     * Management pins the thread afterwards, as libvirt does with the
     * thread ids of query-iothreads: that pinning stays, through I/O, a
     * stop/cont and a device reset.
     */
    {
        QDict *st = vbp_stats(t->qts, "vbp0", 0);
        int64_t tid = qdict_get_int(st, "thread-id");
        cpu_set_t set;
        g_autofree char *cpus = NULL;

        qobject_unref(st);
        CPU_ZERO(&set);
        CPU_SET(atoi(last), &set);
        g_assert_cmpint(sched_setaffinity(tid, sizeof(set), &set), ==, 0);
        qtest_qmp_assert_success(t->qts, "{'execute': 'stop'}");
        qtest_qmp_assert_success(t->qts, "{'execute': 'cont'}");
        vbp_write_read(t, t->vq[0], 16, 0x56, true);
        qvirtqueue_cleanup(t->dev->bus, t->vq[0], &t->qs->alloc);
        qvirtqueue_cleanup(t->dev->bus, t->vq[1], &t->qs->alloc);
        qvirtio_start_device(t->dev);
        qvirtio_set_features(t->dev, t->dev->features);
        t->vq[0] = qvirtqueue_setup(t->dev, &t->qs->alloc, 0);
        t->vq[1] = qvirtqueue_setup(t->dev, &t->qs->alloc, 1);
        qvirtio_set_driver_ok(t->dev);
        vbp_write_read(t, t->vq[0], 24, 0x78, true);
        cpus = thread_cpus_allowed(qtest_pid(t->qts), tid);
        g_assert_cmpstr(cpus, ==, last);
    }
    vbp_shutdown(t);
}

/* With no IOThread named, the device polls in one of its own */
static void test_own_iothread(void)
{
    VbpTest *t = vbp_boot(NULL, 1, 0);
    QDict *st, *rsp;

    vbp_write_read(t, t->vq[0], 0, 0x77, true);
    st = vbp_stats(t->qts, "vbp0", 0);
    g_assert_cmpstr(qdict_get_str(st, "iothread"), ==, "vbp-poll0");
    g_assert_cmpint(qdict_get_int(st, "thread-id"), >, 0);
    qobject_unref(st);

    /* ... which management tools do not see as one of theirs */
    rsp = qtest_qmp(t->qts, "{'execute': 'query-iothreads'}");
    g_assert_cmpint(qlist_size(qdict_get_qlist(rsp, "return")), ==, 2);
    qobject_unref(rsp);
    vbp_shutdown(t);
}

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
    qvirtqueue_cleanup(t->dev->bus, vq, &t->qs->alloc);
    qvirtio_start_device(t->dev);
    qvirtio_set_features(t->dev, t->dev->features);
    t->vq[0] = vq = qvirtqueue_setup(t->dev, &t->qs->alloc, 0);
    qvirtio_set_driver_ok(t->dev);
    vbp_write_read(t, vq, 0, 0x42, true);
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
    qvirtqueue_cleanup(t->dev->bus, vq, &t->qs->alloc);
    qvirtio_set_acknowledge(t->dev);
    qvirtio_set_driver(t->dev);
    qvirtio_set_features(t->dev, t->dev->features);
    t->vq[0] = vq = qvirtqueue_setup(t->dev, &t->qs->alloc, 0);
    qvirtio_set_driver_ok(t->dev);
    vbp_write_read(t, vq, 8, 0x22, true);
    vbp_shutdown(t);
}

/* Number of IOThread threads ("IO <id>" with debug-threads=on) of QEMU */
static int count_io_threads(pid_t pid)
{
    g_autofree char *taskdir = g_strdup_printf("/proc/%d/task", pid);
    GDir *dir = g_dir_open(taskdir, 0, NULL);
    const char *tid;
    int n = 0;

    g_assert_nonnull(dir);
    while ((tid = g_dir_read_name(dir))) {
        g_autofree char *path = g_strdup_printf("%s/%s/comm", taskdir, tid);
        g_autofree char *comm = NULL;

        if (g_file_get_contents(path, &comm, NULL, NULL) &&
            g_str_has_prefix(comm, "IO ")) {
            n++;
        }
    }
    g_dir_close(dir);
    return n;
}

/* Hot-unplug leaves no thread behind; the device's own IOThread goes too */
static void test_unplug_threads(void)
{
    QTestState *qts = qtest_init("-machine pc -nodefaults "
        "-name vbp,debug-threads=on -blockdev driver=null-co,node-name=d0 "
        "-object iothread,id=iot0");
    pid_t pid = qtest_pid(qts);
    int base = count_io_threads(pid);  /* iot0 and the monitor's */
    gint64 start;

    for (int i = 0; i < 2; i++) {
        qtest_qmp_device_add(qts, "virtio-blk-poll-pci", "hp0",
                             "{'drive': 'd0', 'addr': '06.0'}");
        g_assert_cmpint(count_io_threads(pid), ==, base + 1);
        qpci_unplug_acpi_device_test(qts, "hp0", 6);
        start = g_get_monotonic_time();
        while (count_io_threads(pid) != base) {
            g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
            g_usleep(10 * 1000);
        }
    }
    qtest_qmp_assert_success(qts, "{'execute': 'query-status'}");
    qtest_quit(qts);
}

/* CPU time (ns, from schedstat) the thread @tid of QEMU has used */
static uint64_t thread_cpu_ns(pid_t pid, int64_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%" PRId64
                                            "/schedstat", pid, tid);
    g_autofree char *buf = NULL;

    if (!g_file_get_contents(path, &buf, NULL, NULL)) {
        return 0;   /* the thread is gone */
    }
    return g_ascii_strtoull(buf, NULL, 10);
}

/* CPU time (ns) of every thread of QEMU but the main one (qtest's) */
static uint64_t qemu_worker_ns(pid_t pid)
{
    g_autofree char *taskdir = g_strdup_printf("/proc/%d/task", pid);
    GDir *dir = g_dir_open(taskdir, 0, NULL);
    const char *tid;
    uint64_t sum = 0;

    g_assert_nonnull(dir);
    while ((tid = g_dir_read_name(dir))) {
        if (atoi(tid) != pid) {
            sum += thread_cpu_ns(pid, atoi(tid));
        }
    }
    g_dir_close(dir);
    return sum;
}

/*
 * Not a test: the host CPU cost per request of the three paths, the same
 * workload in the same run (4 KiB random reads from a page-cached raw
 * file, bursts of 16, serving IOThread without polling so that only the
 * work is counted).  Runs when VBP_MEASURE is set; prints one line per
 * configuration and round.
 */
static void measure_host_cost(void)
{
    static const struct {
        const char *name, *driver, *devopts;
    } cfg[] = {
        { "virtio-blk-pci", "virtio-blk-pci", "\"iothread\": \"iot0\"" },
        { "virtio-blk-poll (io_uring path)", "virtio-blk-poll-pci",
          "\"iothread\": \"iot0\", \"poll-idle-ns\": 0" },
        { "virtio-blk-poll (block layer path)", "virtio-blk-poll-pci",
          "\"iothread\": \"iot0\", \"poll-idle-ns\": 0, "
          "\"fast-path\": false" },
    };
    const int nreq = 16000, burst = 16, rounds = 3;

    if (!g_getenv("VBP_MEASURE")) {
        g_test_skip("set VBP_MEASURE=1 to measure");
        return;
    }
    vbp_iothread_opts = ",poll-max-ns=0";
    for (int r = 0; r < rounds; r++) {
        for (int c = 0; c < ARRAY_SIZE(cfg); c++) {
            VbpTest *t;
            QVirtQueue *vq;
            uint64_t addr[16];
            int64_t tid = -1;
            uint64_t io0, io1, all0, all1;
            gint64 t0, t1;
            QDict *rsp;
            QList *threads;

            vbp_driver = cfg[c].driver;
            t = vbp_boot_args("-blockdev driver=file,node-name=file0,"
                              "filename=%s,aio=io_uring -blockdev driver=raw,"
                              "node-name=disk0,file=file0", false,
                              cfg[c].devopts, 1, 0);
            vq = t->vq[0];
            rsp = qtest_qmp(t->qts, "{'execute': 'query-iothreads'}");
            threads = qdict_get_qlist(rsp, "return");
            tid = qdict_get_int(qobject_to(QDict, qlist_peek(threads)),
                                "thread-id");
            qobject_unref(rsp);
            /* fill the page cache */
            for (int i = 0; i < IMAGE_SIZE / 65536; i++) {
                uint8_t buf[65536];

                vbp_do(t, vq, VIRTIO_BLK_T_IN, i * 128, buf, sizeof(buf), 1);
                /* libqos does not recycle descriptors by itself */
                vbp_reset_descs(vq);
            }
            io0 = thread_cpu_ns(qtest_pid(t->qts), tid);
            all0 = qemu_worker_ns(qtest_pid(t->qts));
            t0 = g_get_monotonic_time();
            for (int n = 0; n < nreq; n += burst) {
                uint16_t used = vbp_used_idx(t, vq);

                for (int i = 0; i < burst; i++) {
                    uint32_t head = vbp_add_req(t, vq, VIRTIO_BLK_T_IN,
                                                g_test_rand_int_range(0,
                                                    IMAGE_SIZE / 4096) * 8,
                                                NULL, 4096, &addr[i]);
                    vbp_publish_n(t, vq, head, i, i == burst - 1 ? burst : 0);
                }
                t->dev->bus->virtqueue_kick(t->dev, vq);
                vbp_wait_used(t, vq, used + burst);
                for (int i = 0; i < burst; i++) {
                    guest_free(&t->qs->alloc, addr[i]);
                }
                vbp_reset_descs(vq);
            }
            t1 = g_get_monotonic_time();
            io1 = thread_cpu_ns(qtest_pid(t->qts), tid);
            all1 = qemu_worker_ns(qtest_pid(t->qts));
            g_test_message("MEASURE round=%d config=\"%s\" requests=%d "
                           "iothread_ms_per_1000=%.3f "
                           "workers_ms_per_1000=%.3f wall_s=%.2f",
                           r, cfg[c].name, nreq,
                           (io1 - io0) / 1e6 / (nreq / 1000.0),
                           (all1 - all0) / 1e6 / (nreq / 1000.0),
                           (t1 - t0) / 1e6);
            vbp_shutdown(t);
        }
    }
    vbp_driver = "virtio-blk-poll-pci";
    vbp_iothread_opts = "";
}

static void register_virtio_blk_poll_test(void)
{
    static const char *const hostile[] = {
        "short-header", "status-readonly", "desc-loop", "outside-ram",
        "avail-jump", "head-out-of-range",
    };

    qtest_add_func("/virtio-blk-poll/props-match", test_props_match);
    qtest_add_func("/virtio-blk-poll/bad-config", test_bad_config);
    qtest_add_func("/virtio-blk-poll/poll-without-kick",
                   test_poll_without_kick);
    qtest_add_func("/virtio-blk-poll/poll-event-idx", test_poll_event_idx);
    qtest_add_func("/virtio-blk-poll/idle-sleep", test_idle_sleep);
    qtest_add_func("/virtio-blk-poll/batch-one-irq", test_batch_one_irq);
    qtest_add_func("/virtio-blk-poll/coalesce/burst", test_coalesce_burst);
    qtest_add_func("/virtio-blk-poll/coalesce/lone", test_coalesce_lone);
    qtest_add_func("/virtio-blk-poll/coalesce/stop-reset",
                   test_coalesce_stop_reset);
    qtest_add_func("/virtio-blk-poll/coalesce/off", test_coalesce_off);
    qtest_add_func("/virtio-blk-poll/poll-adaptive", test_poll_adaptive);
    qtest_add_func("/virtio-blk-poll/poll-hybrid", test_poll_hybrid);
    qtest_add_func("/virtio-blk-poll/stop-cont", test_stop_cont);
    qtest_add_func("/virtio-blk-poll/drain-while-polling",
                   test_drain_while_polling);
    qtest_add_func("/virtio-blk-poll/reset-under-load", test_reset_under_load);
    qtest_add_func("/virtio-blk-poll/drain-during-stop",
                   test_drain_during_stop);
    qtest_add_func("/virtio-blk-poll/two-iothreads", test_two_iothreads);
    qtest_add_func("/virtio-blk-poll/fast/data", test_fast_data);
    qtest_add_func("/virtio-blk-poll/fast/data-direct", test_fast_data_direct);
    qtest_add_func("/virtio-blk-poll/fast/data-sqpoll", test_fast_data_sqpoll);
    qtest_add_func("/virtio-blk-poll/fast/data-file-node",
                   test_fast_data_file_node);
    qtest_add_func("/virtio-blk-poll/fast/one-submit-per-batch",
                   test_one_submit_per_batch);
    qtest_add_func("/virtio-blk-poll/fast/uring-batch", test_uring_batch);
    qtest_add_func("/virtio-blk-poll/fast/dirty-bitmap",
                   test_fast_dirty_bitmap);
    qtest_add_func("/virtio-blk-poll/fast/throttle", test_throttle);
    qtest_add_func("/virtio-blk-poll/fast/mirror", test_mirror);
    qtest_add_func("/virtio-blk-poll/fast/read-only", test_read_only);
    qtest_add_func("/virtio-blk-poll/fast/inactive", test_inactive);
    qtest_add_data_func("/virtio-blk-poll/fast/discard-write-zeroes",
                        GINT_TO_POINTER(false),
                        test_fast_discard_write_zeroes);
    qtest_add_data_func("/virtio-blk-poll/fast/discard-write-zeroes-unmap",
                        GINT_TO_POINTER(true),
                        test_fast_discard_write_zeroes);
    qtest_add_func("/virtio-blk-poll/fallback/data", test_fallback_data);
    qtest_add_func("/virtio-blk-poll/fallback/empty-rw", test_empty_rw);
    qtest_add_func("/virtio-blk-poll/fallback/qcow2", test_fallback_qcow2);
    qtest_add_data_func("/virtio-blk-poll/fast/enospc-stop",
                        GINT_TO_POINTER(false), test_enospc_stop);
    qtest_add_data_func("/virtio-blk-poll/fallback/enospc-stop",
                        GINT_TO_POINTER(true), test_enospc_stop);
    qtest_add_func("/virtio-blk-poll/fallback/eio-stop", test_eio_stop);
    qtest_add_data_func("/virtio-blk-poll/fast/write-through",
                        GINT_TO_POINTER(false), test_fast_write_through);
    qtest_add_data_func("/virtio-blk-poll/fast/write-through-no-flush",
                        GINT_TO_POINTER(true), test_fast_write_through);
    qtest_add_func("/virtio-blk-poll/fast/write-threshold",
                   test_fast_write_threshold);
    qtest_add_data_func("/virtio-blk-poll/fast/submit-error-report",
                        GINT_TO_POINTER(false), test_fast_submit_error);
    qtest_add_data_func("/virtio-blk-poll/fast/submit-error-stop",
                        GINT_TO_POINTER(true), test_fast_submit_error);
    qtest_add_func("/virtio-blk-poll/fast/short-submit",
                   test_fast_short_submit);
    qtest_add_func("/virtio-blk-poll/fast/dirty-bitmap-failed-write",
                   test_fast_dirty_bitmap_failed_write);
    qtest_add_func("/virtio-blk-poll/bad-fail-next-submit",
                   test_fail_next_submit_bad);
    qtest_add_func("/virtio-blk-poll/fallback/nbd", test_fallback_nbd);
    qtest_add_func("/virtio-blk-poll-measure/host-cost", measure_host_cost);
    /* changes a host sysctl for a moment: run alone (meson.build) */
    qtest_add_func("/virtio-blk-poll-serial/uring-disabled",
                   test_uring_disabled);
    qtest_add_func("/virtio-blk-poll/own-iothread", test_own_iothread);
    qtest_add_func("/virtio-blk-poll/poll-cpus", test_poll_cpus);
    qtest_add_func("/virtio-blk-poll/hostile/status", test_hostile_status);
    qtest_add_func("/virtio-blk-poll/hostile/rings-moved",
                   test_hostile_rings_moved);
    for (int i = 0; i < ARRAY_SIZE(hostile); i++) {
        g_autofree char *path =
            g_strdup_printf("/virtio-blk-poll/hostile/%s", hostile[i]);
        qtest_add_data_func(path, GINT_TO_POINTER(i), test_hostile_fatal);
    }
    qtest_add_func("/virtio-blk-poll/unplug", test_unplug_threads);
}

libqos_init(register_virtio_blk_poll_test);
