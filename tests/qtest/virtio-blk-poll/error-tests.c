/*
 * virtio-blk-poll qtests: errors
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Backend errors under werror/rerror, failed and short io_uring
 * submissions, write-through and write thresholds.
 */

#include "qemu/osdep.h"
#include "framework.h"

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

/*
 * A fast path write that fails still dirties the bitmap, as the block
 * layer's does (bdrv_co_write_req_finish(): whatever the result, some
 * bytes may have changed before the error)
 */
static void test_fast_dirty_bitmap_failed_write(void)
{
    VbpTest *t = vbp_boot_bitmap("\"werror\": \"report\"");
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096] = { 7 };

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

void vbp_register_errors_tests(void)
{
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
}
