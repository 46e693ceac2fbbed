/*
 * virtio-blk-poll qtests: polling
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Polling and sleeping, the poll window and poll-hybrid, IOThreads and
 * pinning, stop/cont, drains and resets.
 */

#include "qemu/osdep.h"
#include "framework.h"

static uint16_t vbp_used_flags(VbpTest *t, QVirtQueue *vq)
{
    return qtest_readw(t->qts, vq->used);
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

/*
 * While the queue polls with VIRTIO_RING_F_EVENT_IDX, avail_event stays
 * out of the driver's reach (patch "virtio: keep avail_event out of the
 * driver's reach while notifications are off"): at least a ring's size
 * away from the driver's avail index on both sides, so that however many
 * requests the driver adds, and however quickly the device takes them,
 * the driver's [old, new) window never holds it.  Left where it was (0,
 * or where notifications were last enabled), the driver's index would
 * come round to it every 65536 requests and kick.
 */
static void test_poll_avail_event(void)
{
    VbpTest *t = vbp_boot("\"busy-poll\": true", 1, 0);
    QVirtQueue *vq = t->vq[0];

    g_assert_true(vq->event);
    for (int i = 0; i < 12; i++) {
        uint16_t idx, event;

        vbp_write_read(t, vq, i * 8, 0x60 + i, true);
        idx = qtest_readw(t->qts, vq->avail + 2);
        event = qtest_readw(t->qts, vq->used + 4 + 8 * vq->size);
        g_assert_cmpuint((uint16_t)(event - idx), >=, vq->size);
        g_assert_cmpuint((uint16_t)(idx - event), >=, vq->size);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "kicks"), <=, 1);
    g_assert_cmpint(vbp_stat(t->qts, 0, "requests"), ==, 24);
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

/* Queue 0's state, as the stats show it; the caller frees */
static char *vbp_state(VbpTest *t)
{
    QDict *st = vbp_stats(t->qts, "vbp0", 0);
    char *state = g_strdup(qdict_get_str(st, "state"));

    qobject_unref(st);
    return state;
}

/*
 * A guest that polls a queue for its completions suppresses their
 * interrupts (Linux's poll queues: VRING_AVAIL_F_NO_INTERRUPT, or a
 * used_event it never moves).  Such a queue, idle after its poll window,
 * dozes: notifications stay off and a timer looks at the ring, so the
 * guest, whose driver kicks only when the device asks, never kicks.
 * @doze_ns: poll-doze-ns; after that long without a request the queue
 * sleeps and the next request kicks, as for any guest.
 */
static VbpTest *vbp_boot_polled(uint64_t doze_ns)
{
    g_autofree char *opts = g_strdup_printf("\"poll-doze-ns\": %" PRIu64,
                                            doze_ns);
    VbpTest *t = vbp_boot(opts, 1, 1ull << VIRTIO_RING_F_EVENT_IDX);
    QVirtQueue *vq = t->vq[0];

    qtest_writew(t->qts, vq->avail, VRING_AVAIL_F_NO_INTERRUPT);
    /* 40 completions, none signalled: the guest polls */
    for (int i = 0; i < 20; i++) {
        vbp_write_read(t, vq, i * 8, i, true);
    }
    return t;
}

static void vbp_polled_guest(uint64_t doze_ns)
{
    VbpTest *t = vbp_boot_polled(doze_ns);
    QVirtQueue *vq = t->vq[0];
    g_autofree char *state = NULL;
    uint64_t kicks;
    int i;

    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies"), ==, 0);
    g_assert_cmpint(vbp_stat(t->qts, 0, "notifies-suppressed"), >=, 32);

    if (doze_ns) {
        /* Idle: it dozes, for longer than this test runs */
        for (i = 0; i < TIMEOUT_US / 1000; i++) {
            g_free(state);
            state = vbp_state(t);
            if (!strcmp(state, "dozing")) {
                break;
            }
            g_usleep(1000);
        }
        g_assert_cmpint(i, <, TIMEOUT_US / 1000);
        g_assert_cmpint(vbp_used_flags(t, vq) & VRING_USED_F_NO_NOTIFY, ==,
                        VRING_USED_F_NO_NOTIFY);
        kicks = vbp_stat(t->qts, 0, "kicks");
        /* Requests now and then, each after the window: never a kick */
        for (i = 0; i < 8; i++) {
            g_usleep(2000);
            vbp_write_read(t, vq, i * 8, 0x40 + i, true);
        }
        g_assert_cmpint(vbp_stat(t->qts, 0, "kicks"), ==, kicks);
        g_assert_cmpint(vbp_stat(t->qts, 0, "dozes"), >=, 8);
    } else {
        /* poll-doze-ns=0: it sleeps, and the next request kicks */
        g_usleep(200 * 1000);
        state = vbp_state(t);
        g_assert_cmpstr(state, ==, "sleeping");
        g_assert_cmpint(vbp_used_flags(t, vq) & VRING_USED_F_NO_NOTIFY, ==, 0);
        kicks = vbp_stat(t->qts, 0, "kicks");
        vbp_write_read(t, vq, 0, 0x77, true);
        /* the device asked for it (the window decides about the read) */
    g_assert_cmpint(vbp_stat(t->qts, 0, "kicks"), >, kicks);
        g_assert_cmpint(vbp_stat(t->qts, 0, "dozes"), ==, 0);
    }
    vbp_shutdown(t);
}

static void test_polled_guest(void)
{
    vbp_polled_guest(60000000000ull);
}

/* A doze ends: with poll-doze-ns=1 ms, 200 ms later the queue sleeps */
static void test_polled_guest_sleeps(void)
{
    VbpTest *t = vbp_boot_polled(1000000);
    QVirtQueue *vq = t->vq[0];
    g_autofree char *state = NULL;
    uint64_t kicks;

    g_usleep(200 * 1000);
    state = vbp_state(t);
    g_assert_cmpstr(state, ==, "sleeping");
    g_assert_cmpint(vbp_stat(t->qts, 0, "dozes"), >=, 1);
    g_assert_cmpint(vbp_used_flags(t, vq) & VRING_USED_F_NO_NOTIFY, ==, 0);
    kicks = vbp_stat(t->qts, 0, "kicks");
    vbp_write_read(t, vq, 0, 0x78, true);
    /* the device asked for it (the poll window decides about the read) */
    g_assert_cmpint(vbp_stat(t->qts, 0, "kicks"), >, kicks);
    vbp_shutdown(t);
}

static void test_polled_guest_no_doze(void)
{
    vbp_polled_guest(0);
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
    qvirtio_reset(t->dev);
    vbp_assert_state(t, "stopped");
    vbp_assert_alive(t);
    vbp_setup_again(t, false);
    vbp_write_read(t, t->vq[1], 40, 0x71, true);
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

/*
 * Reads 20 ms apart after a few 0.5 ms apart: the timed sleeps learn a
 * gap of at most 10 ms (VBP_HYBRID_MAX_GAP_NS), so from then on each of
 * their polling phases ends before the next request comes.  After at most
 * two epochs of 16 (the first may be the paced reads' with hits), they
 * stopped paying: the queue sleeps until the kick instead.
 */
static void test_poll_hybrid_pays(void)
{
    VbpTest *t = vbp_boot_args("null", false, "\"poll-idle-ns\": 1000000000",
                               1, 0);
    uint8_t buf[512];

    vbp_paced_reads(t, 10);
    g_assert_cmpint(vbp_stat(t->qts, 0, "timed-skips"), ==, 0);
    for (int i = 0; i < 2 * 16 + 2; i++) {
        g_usleep(20 * 1000);
        g_assert_cmpint(vbp_do(t, t->vq[0], VIRTIO_BLK_T_IN, i, buf,
                               sizeof(buf), 1), ==, VIRTIO_BLK_S_OK);
    }
    g_assert_cmpint(vbp_stat(t->qts, 0, "timed-skips"), >=, 2);
    vbp_shutdown(t);
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

/* Number of IOThread threads ("IO <id>" with debug-threads=on) of QEMU */
static int count_io_threads(pid_t pid)
{
    g_autoptr(GArray) tids = vbp_thread_ids(pid);
    int n = 0;

    for (guint i = 0; i < tids->len; i++) {
        g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/comm", pid,
                                                g_array_index(tids, int, i));
        g_autofree char *comm = NULL;

        if (g_file_get_contents(path, &comm, NULL, NULL) &&
            g_str_has_prefix(comm, "IO ")) {
            n++;
        }
    }
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

void vbp_register_polling_tests(void)
{

    qtest_add_func("/virtio-blk-poll/props-match", test_props_match);
    qtest_add_func("/virtio-blk-poll/bad-config", test_bad_config);
    qtest_add_func("/virtio-blk-poll/poll-without-kick",
                   test_poll_without_kick);
    qtest_add_func("/virtio-blk-poll/poll-event-idx", test_poll_event_idx);
    qtest_add_func("/virtio-blk-poll/poll-avail-event",
                   test_poll_avail_event);
    qtest_add_func("/virtio-blk-poll/idle-sleep", test_idle_sleep);
    qtest_add_func("/virtio-blk-poll/polled-guest/doze", test_polled_guest);
    qtest_add_func("/virtio-blk-poll/polled-guest/doze-ends",
                   test_polled_guest_sleeps);
    qtest_add_func("/virtio-blk-poll/polled-guest/no-doze",
                   test_polled_guest_no_doze);
    qtest_add_func("/virtio-blk-poll/poll-adaptive", test_poll_adaptive);
    qtest_add_func("/virtio-blk-poll/poll-hybrid", test_poll_hybrid);
    qtest_add_func("/virtio-blk-poll/poll-hybrid/pays", test_poll_hybrid_pays);
    qtest_add_func("/virtio-blk-poll/stop-cont", test_stop_cont);
    qtest_add_func("/virtio-blk-poll/drain-while-polling",
                   test_drain_while_polling);
    qtest_add_func("/virtio-blk-poll/reset-under-load", test_reset_under_load);
    qtest_add_func("/virtio-blk-poll/drain-during-stop",
                   test_drain_during_stop);
    qtest_add_func("/virtio-blk-poll/two-iothreads", test_two_iothreads);
    /* changes a host sysctl for a moment: run alone (meson.build) */
    qtest_add_func("/virtio-blk-poll-serial/uring-disabled",
                   test_uring_disabled);
    qtest_add_func("/virtio-blk-poll/own-iothread", test_own_iothread);
    qtest_add_func("/virtio-blk-poll/poll-cpus", test_poll_cpus);
    qtest_add_func("/virtio-blk-poll/unplug", test_unplug_threads);
}
