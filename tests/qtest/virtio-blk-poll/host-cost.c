/*
 * virtio-blk-poll qtests: host CPU per request
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Host CPU per request of each I/O path (scripts/measure-host-cost.sh; a
 * measurement, skipped unless VBP_MEASURE=1).
 */

#include "qemu/osdep.h"
#include "framework.h"

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
    g_autoptr(GArray) tids = vbp_thread_ids(pid);
    uint64_t sum = 0;

    for (guint i = 0; i < tids->len; i++) {
        int tid = g_array_index(tids, int, i);

        if (tid != pid) {
            sum += thread_cpu_ns(pid, tid);
        }
    }
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

void vbp_register_host_cost_tests(void)
{
    qtest_add_func("/virtio-blk-poll-measure/host-cost", measure_host_cost);
}
