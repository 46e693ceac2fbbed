/*
 * virtio-blk-poll qtests: their framework
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "framework.h"

/* The device under test and its IOThreads; the measurement changes them */
const char *vbp_driver = "virtio-blk-poll-pci";

const char *vbp_iothread_opts = "";

/* A raw image file of IMAGE_SIZE bytes */
char *vbp_image_create(void)
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
VbpTest *vbp_boot_args(const char *blockdev_fmt, bool msix,
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

VbpTest *vbp_boot(const char *devopts, int nvqs, uint64_t drop_features)
{
    return vbp_boot_args(NULL, false, devopts, nvqs, drop_features);
}

/*
 * The guest resets the device and sets its queues up again (with MSI-X
 * vectors if @msix), as a driver does after NEEDS_RESET
 */
void vbp_setup_again(VbpTest *t, bool msix)
{
    for (int i = 0; i < t->nvqs; i++) {
        qvirtqueue_cleanup(t->dev->bus, t->vq[i], &t->qs->alloc);
    }
    qvirtio_start_device(t->dev);
    qvirtio_set_features(t->dev, t->dev->features);
    for (int i = 0; i < t->nvqs; i++) {
        t->vq[i] = qvirtqueue_setup(t->dev, &t->qs->alloc, i);
        if (msix) {
            qvirtqueue_pci_msix_setup(t->pdev, (QVirtQueuePCI *)t->vq[i],
                                      &t->qs->alloc, i + 1);
        }
    }
    qvirtio_set_driver_ok(t->dev);
}

void vbp_shutdown(VbpTest *t)
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
uint32_t vbp_add_req_seg(VbpTest *t, QVirtQueue *vq, uint32_t type,
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

uint32_t vbp_add_req(VbpTest *t, QVirtQueue *vq, uint32_t type,
                     uint64_t sector, const void *data, size_t len,
                     uint64_t *addr)
{
    return vbp_add_req_seg(t, vq, type, sector, data, len, 1, addr);
}

uint8_t vbp_status(VbpTest *t, uint64_t addr, size_t len)
{
    return qtest_readb(t->qts, addr + DATA_OFS + len);
}

/* Put @head in the avail ring, as a guest does, but never kick */
void vbp_publish(VbpTest *t, QVirtQueue *vq, uint32_t head)
{
    uint16_t idx = qtest_readw(t->qts, vq->avail + 2);

    qtest_writew(t->qts, vq->avail + 4 + 2 * (idx % vq->size), head);
    qtest_writew(t->qts, vq->avail + 2, idx + 1);
}

/*
 * Put @head in the avail ring at position @i after the current index; when
 * @count is not zero, then move the index by @count at once.
 */
void vbp_publish_n(VbpTest *t, QVirtQueue *vq, uint32_t head,
                   int i, int count)
{
    uint16_t idx = qtest_readw(t->qts, vq->avail + 2);

    qtest_writew(t->qts, vq->avail + 4 + 2 * ((idx + i) % vq->size), head);
    if (count) {
        qtest_writew(t->qts, vq->avail + 2, idx + count);
    }
}

uint16_t vbp_used_idx(VbpTest *t, QVirtQueue *vq)
{
    return qtest_readw(t->qts, vq->used + 2);
}

void vbp_wait_used(VbpTest *t, QVirtQueue *vq, uint16_t idx)
{
    gint64 start = g_get_monotonic_time();

    while (vbp_used_idx(t, vq) != idx) {
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(100);
    }
}

/* The stats of one queue, from qom-get; the caller unrefs */
QDict *vbp_stats(QTestState *qts, const char *id, int queue)
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

uint64_t vbp_stat(QTestState *qts, int queue, const char *name)
{
    QDict *st = vbp_stats(qts, "vbp0", queue);
    uint64_t v = qdict_get_int(st, name);

    qobject_unref(st);
    return v;
}

/* Write @n sectors through the poller and read them back */
void vbp_write_read(VbpTest *t, QVirtQueue *vq, uint64_t sector,
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

void vbp_assert_alive(VbpTest *t)
{
    qtest_qmp_assert_success(t->qts, "{'execute': 'query-status'}");
}

/*
 * libqos hands out descriptors from the start of the table and never
 * takes them back: once every request is complete, start over, or a long
 * test runs past the end of the table.
 */
void vbp_reset_descs(QVirtQueue *vq)
{
    vq->free_head = 0;
    vq->num_free = vq->size;
}

/*
 * Publish @n reads of @len bytes at sectors 0, @stride, 2 * @stride, ...
 * at once (one avail index update), kick, and wait until all are used.
 */
void vbp_reads_at_once(VbpTest *t, QVirtQueue *vq, int n,
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

/* A string counter of queue 0 */
char *vbp_stat_str(QTestState *qts, const char *name)
{
    QDict *st = vbp_stats(qts, "vbp0", 0);
    char *v = g_strdup(qdict_get_str(st, name));

    qobject_unref(st);
    return v;
}

void vbp_assert_path(VbpTest *t, const char *expect)
{
    g_autofree char *path = vbp_stat_str(t->qts, "path");

    if (!g_str_has_prefix(path, expect)) {
        g_test_message("path is '%s', expected '%s'", path, expect);
    }
    g_assert_true(g_str_has_prefix(path, expect));
}

/* Submit one request with a kick and wait for it; returns the status */
uint8_t vbp_do(VbpTest *t, QVirtQueue *vq, uint32_t type,
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
void vbp_host_read(const char *path, int64_t offset, void *buf,
                   size_t len)
{
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, len, offset), ==, len);
    close(fd);
}

void vbp_check_data(VbpTest *t, VbpPath path)
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

/* The dirty bitmap of a node in @t's QEMU, its dirty byte count */
int64_t vbp_bitmap_count(VbpTest *t, const char *node_name)
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
 * Boot with @devopts, show the fast path working, then add a dirty
 * bitmap of 64 KiB granularity to the disk node
 */
VbpTest *vbp_boot_bitmap(const char *devopts)
{
    VbpTest *t = vbp_boot(devopts, 1, 0);

    vbp_write_read(t, t->vq[0], 0, 0x10, true);
    qtest_qmp_assert_success(t->qts, "{'execute': 'block-dirty-bitmap-add', "
                             "'arguments': {'node': 'disk0', 'name': 'bm0', "
                             "'granularity': 65536}}");
    return t;
}

GArray *vbp_thread_ids(pid_t pid)
{
    g_autofree char *taskdir = g_strdup_printf("/proc/%d/task", pid);
    GDir *dir = g_dir_open(taskdir, 0, NULL);
    GArray *tids = g_array_new(false, false, sizeof(int));
    const char *name;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir))) {
        int tid = atoi(name);

        g_array_append_val(tids, tid);
    }
    g_dir_close(dir);
    return tids;
}
