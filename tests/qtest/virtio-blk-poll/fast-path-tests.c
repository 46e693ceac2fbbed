/*
 * virtio-blk-poll qtests: the fast path
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The raw io_uring fast path and the block layer fallback: data, write-
 * through, bitmaps, jobs, errors.
 */

#include "qemu/osdep.h"
#include "framework.h"

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
    VbpTest *t = vbp_boot_bitmap(NULL);
    QVirtQueue *vq = t->vq[0];
    uint8_t buf[4096] = { 1 };

    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 8, buf, sizeof(buf), 1),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_do(t, vq, VIRTIO_BLK_T_OUT, 1024 * 1024 / 512, buf,
                           sizeof(buf), 2), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vbp_dwz(t, VIRTIO_BLK_T_WRITE_ZEROES,
                            2 * 1024 * 1024 / 512, 8, false), ==,
                    VIRTIO_BLK_S_OK);
    vbp_assert_path(t, "io_uring");
    g_assert_cmpint(vbp_stat(t->qts, 0, "fast-dwz"), ==, 1);
    g_assert_cmpint(vbp_bitmap_count(t, "disk0"), ==, 3 * 65536);
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

void vbp_register_fast_path_tests(void)
{
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
    qtest_add_func("/virtio-blk-poll/fallback/nbd", test_fallback_nbd);
}
