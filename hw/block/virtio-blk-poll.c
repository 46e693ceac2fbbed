/*
 * virtio-blk-poll: virtio-blk with virtqueues served by polling IOThreads
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * To the guest this is an ordinary virtio-blk device.  On the host each
 * virtqueue belongs to one IOThread (iothread, iothread-vq-mapping, or an
 * IOThread the device creates when none is named).  When the guest kicks,
 * the queue enters its polling phase: guest notifications are disabled
 * and a bottom half in the IOThread's AioContext runs one pass after the
 * other.  A pass takes up to batch-max requests from the avail ring,
 * starts them through virtio-blk's request code, publishes everything
 * that completed with one used index update and signals the guest at most
 * once.  After poll-idle-ns without a new request or completion the queue
 * re-enables notifications, looks at the ring once more to close the race
 * with the guest, and sleeps until the next kick.
 *
 * Because the poller is a bottom half of the IOThread's event loop, timers,
 * other handlers, drain and block layer completions keep running in that
 * thread between passes, and query-iothreads names the thread that polls.
 * The bottom half runs passes back to back for up to a slice (see
 * vbp_poll_bh()) so that the event loop's fd check, a system call, comes
 * once per slice rather than once per pass.
 *
 * This file: the QOM device, its properties, realize and the stats.  The
 * others: see virtio-blk-poll-internal.h.
 */

#include "qemu/osdep.h"
#include <linux/falloc.h>
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/cutils.h"
#include "qemu/defer-call.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "hw/qdev-properties.h"
#include "block/block_int-common.h"
#include "block/block_int-io.h"
#include "block/graph-lock.h"
#include "block/raw-aio.h"
#include "hw/virtio/virtio-blk-poll.h"
#include "hw/virtio/virtio-blk-poll-uring.h"
#include "virtio-blk-poll-internal.h"
#include "qemu/error-report.h"
#include "qobject/qdict.h"
#include "system/block-backend.h"
#include "system/iothread.h"
#include "trace.h"

const char *const vbp_signal_reason_names[VBP_SIGNAL__MAX] = {
    [VBP_SIGNAL_FORCED] = "signal-forced",
    [VBP_SIGNAL_LONE] = "signal-lone",
    [VBP_SIGNAL_COUNT] = "signal-count",
    [VBP_SIGNAL_DEPTH] = "signal-depth",
    [VBP_SIGNAL_IDLE] = "signal-idle",
    [VBP_SIGNAL_TIME] = "signal-time",
};

/*
 * The value of a testing property of the io_uring engine, which applies
 * to every queue's ring: a uint32, once the device is realized.
 */
static bool vbp_testing_value(Object *obj, Visitor *v, const char *name,
                              uint32_t *value, Error **errp)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(obj);

    if (!visit_type_uint32(v, name, value, errp)) {
        return false;
    }
    if (!d->queues) {
        error_setg(errp, "%s: the device is not realized", name);
        return false;
    }
    return true;
}

/*
 * Testing: x-fail-next-submit=ERRNO makes the next io_uring submission of
 * every queue fail with -ERRNO, as if the kernel had refused it.
 */
static void vbp_set_fail_next_submit(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(obj);
    uint32_t err;

    if (!vbp_testing_value(obj, v, name, &err, errp)) {
        return;
    }
    if (!err || err > 4095) {
        error_setg(errp, "invalid %s value (%" PRIu32 "), must be an errno "
                   "between 1 and 4095", name, err);
        return;
    }
    for (unsigned i = 0; i < VIRTIO_BLK(d)->conf.num_queues; i++) {
        if (d->queues[i].uring) {
            vbp_uring_fail_next_submit(d->queues[i].uring, -(int)err);
        }
    }
}

/*
 * Testing: x-short-next-submit=N makes the kernel consume at most N SQEs
 * of the next io_uring submission of every queue, as a short submission.
 */
static void vbp_set_short_next_submit(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(obj);
    uint32_t max;

    if (!vbp_testing_value(obj, v, name, &max, errp)) {
        return;
    }
    if (d->uring_sqpoll) {
        error_setg(errp, "%s: not with uring-sqpoll=on", name);
        return;
    }
    for (unsigned i = 0; i < VIRTIO_BLK(d)->conf.num_queues; i++) {
        if (d->queues[i].uring) {
            vbp_uring_short_next_submit(d->queues[i].uring, max);
        }
    }
}

static void vbp_get_stats(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(obj);
    VirtIOBlock *s = VIRTIO_BLK(obj);
    unsigned nvqs = d->queues ? s->conf.num_queues : 0;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    if (!visit_start_list(v, name, NULL, 0, errp)) {
        return;
    }
    for (unsigned i = 0; i < nvqs; i++) {
        VirtIOBlockPollQueue *q = &d->queues[i];
        VirtIOBlockPollStats st;
        uint64_t index = i;
        int64_t tid = q->iothread ? q->iothread->thread_id : -1;
        g_autofree char *iothread = g_strdup(q->iothread ?
            object_get_canonical_path_component(OBJECT(q->iothread)) : "");
        bool polling = vbp_polling(q);
        g_autofree char *state = g_strdup(vbp_queue_state(q));
        int64_t window = d->busy_poll ? -1 : vbp_poll_window(q);
        g_autofree char *path = g_strdup(
            d->throttle_state && qatomic_read(d->throttle_state) ?
            "I/O throttling" : qatomic_read(&d->fast.fd) >= 0 ? "io_uring" :
            vbp_fast_reason_name(d, qatomic_read(&d->fast.reason)));
        VBPUringStats us = { };
        bool ok;

        if (q->uring) {
            vbp_uring_get_stats(q->uring, &us);
        }
#define VBP_STAT_READ(field, name) \
        st.field = qatomic_read(&q->stats.field);
        VBP_QUEUE_STATS(VBP_STAT_READ)
#undef VBP_STAT_READ
        for (int r = 0; r < ARRAY_SIZE(st.signal_reason); r++) {
            st.signal_reason[r] = qatomic_read(&q->stats.signal_reason[r]);
        }
        if (polling) {
            st.poll_ns += now - qatomic_read(&q->poll_start_ns);
        } else if (qatomic_read(&q->sleep_start_ns)) {
            st.sleep_ns += now - qatomic_read(&q->sleep_start_ns);
        }

        if (!visit_start_struct(v, NULL, NULL, 0, errp)) {
            break;
        }
        ok = visit_type_uint64(v, "queue", &index, errp) &&
             visit_type_str(v, "iothread", &iothread, errp) &&
             visit_type_int(v, "thread-id", &tid, errp) &&
             visit_type_bool(v, "polling", &polling, errp) &&
             visit_type_str(v, "state", &state, errp) &&
             visit_type_int(v, "poll-window-ns", &window, errp) &&
             visit_type_str(v, "path", &path, errp) &&
             visit_type_uint64(v, "uring-sqes", &us.sqes, errp) &&
             visit_type_uint64(v, "uring-submit-calls", &us.submit_calls,
                               errp) &&
             visit_type_uint64(v, "early-completions", &us.early_completions,
                               errp) &&
             visit_type_uint64(v, "uring-resubmits", &us.resubmits, errp);
#define VBP_STAT_VISIT(field, name) \
        ok = ok && visit_type_uint64(v, name, &st.field, errp);
        VBP_QUEUE_STATS(VBP_STAT_VISIT)
#undef VBP_STAT_VISIT
        for (int r = 0; ok && r < ARRAY_SIZE(st.signal_reason); r++) {
            ok = visit_type_uint64(v, vbp_signal_reason_names[r],
                                   &st.signal_reason[r], errp);
        }
        if (ok) {
            ok = visit_check_struct(v, errp);
        }
        visit_end_struct(v, NULL);
        if (!ok) {
            break;
        }
    }
    visit_end_list(v, NULL);
}

/* The IOThread whose AioContext is @ctx, for the stats; NULL if unknown */
static IOThread *vbp_queue_iothread(VirtIOBlock *s, AioContext *ctx)
{
    IOThreadVirtQueueMappingList *node;

    if (s->conf.iothread) {
        return s->conf.iothread;
    }
    for (node = s->conf.iothread_vq_mapping_list; node; node = node->next) {
        IOThread *iothread = iothread_by_id(node->value->iothread);

        if (iothread && iothread_get_aio_context(iothread) == ctx) {
            return iothread;
        }
    }
    return NULL;
}

static void vbp_unrealize(DeviceState *dev);

/* Parse a CPU list such as "0-2,5" into @set */
static bool vbp_parse_cpu_list(const char *list, const char *whole,
                               cpu_set_t *set, Error **errp)
{
    long ncpus = sysconf(_SC_NPROCESSORS_CONF);
    g_auto(GStrv) items = g_strsplit(list, ",", -1);

    CPU_ZERO(set);
    for (char **item = items; *item; item++) {
        const char *end;
        unsigned long first, last;

        if (qemu_strtoul(*item, &end, 10, &first) < 0) {
            goto bad;
        }
        last = first;
        if (*end == '-' && qemu_strtoul(end + 1, &end, 10, &last) < 0) {
            goto bad;
        }
        if (*end || last < first) {
            goto bad;
        }
        if (last >= ncpus || last >= CPU_SETSIZE) {
            error_setg(errp, "invalid poll-cpus property '%s': CPU %lu does "
                       "not exist (the host has %ld)", whole, last, ncpus);
            return false;
        }
        for (unsigned long cpu = first; cpu <= last; cpu++) {
            CPU_SET(cpu, set);
        }
    }
    return true;

bad:
    error_setg(errp, "invalid poll-cpus property '%s': expected CPU lists "
               "such as 0-2,5, one per IOThread separated by ':'", whole);
    return false;
}

/*
 * Pin the serving IOThreads as poll-cpus asks: one CPU list for all, or
 * one per distinct IOThread in queue order.  libvirt, which pins the
 * threads query-iothreads reports after QEMU has started, overrides it.
 */
static bool vbp_apply_poll_cpus(VirtIOBlockPoll *d, Error **errp)
{
    VirtIOBlock *s = VIRTIO_BLK(d);
    g_auto(GStrv) lists = g_strsplit(d->poll_cpus, ":", -1);
    guint nlists = g_strv_length(lists);
    g_autoptr(GPtrArray) threads = g_ptr_array_new();

    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        IOThread *iothread = d->queues[i].iothread;

        if (iothread && !g_ptr_array_find(threads, iothread, NULL)) {
            g_ptr_array_add(threads, iothread);
        }
    }
    if (nlists != 1 && nlists != threads->len) {
        error_setg(errp, "invalid poll-cpus property '%s': %u CPU lists for "
                   "%u IOThreads", d->poll_cpus, nlists, threads->len);
        return false;
    }
    for (guint i = 0; i < threads->len; i++) {
        IOThread *iothread = g_ptr_array_index(threads, i);
        cpu_set_t set;

        if (!vbp_parse_cpu_list(lists[nlists == 1 ? 0 : i], d->poll_cpus,
                                &set, errp)) {
            return false;
        }
        if (sched_setaffinity(iothread->thread_id, sizeof(set), &set) < 0) {
            error_setg_errno(errp, errno, "cannot pin IOThread '%s' to "
                             "poll-cpus '%s'",
                             object_get_canonical_path_component(
                                 OBJECT(iothread)), d->poll_cpus);
            return false;
        }
    }
    return true;
}

/* A count property: 1 to VIRTQUEUE_MAX_SIZE */
static bool vbp_check_count(const char *name, uint32_t value, Error **errp)
{
    if (value < 1 || value > VIRTQUEUE_MAX_SIZE) {
        error_setg(errp, "invalid %s property (%" PRIu32 "), must be "
                   "between 1 and %d", name, value, VIRTQUEUE_MAX_SIZE);
        return false;
    }
    return true;
}

static void vbp_realize(DeviceState *dev, Error **errp)
{
    ERRP_GUARD();
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(dev);
    VirtIOBlockPollClass *vbpc = VIRTIO_BLK_POLL_GET_CLASS(dev);
    VirtIOBlock *s = VIRTIO_BLK(dev);
    static unsigned iothread_count;

    if (s->conf.num_queues > VIRTIO_QUEUE_MAX &&
        s->conf.num_queues != VIRTIO_BLK_AUTO_NUM_QUEUES) {
        error_setg(errp, "invalid num-queues property (%" PRIu16 "), must be "
                   "between 1 and %d", s->conf.num_queues, VIRTIO_QUEUE_MAX);
        return;
    }
    if (!vbp_check_count("batch-max", d->batch_max, errp)) {
        return;
    }
    if (d->poll_idle_ns > VIRTIO_BLK_POLL_MAX_IDLE_NS) {
        error_setg(errp, "invalid poll-idle-ns property (%" PRIu64 "), must "
                   "be at most %" PRIu64 " (use busy-poll=on to never sleep)",
                   d->poll_idle_ns, (uint64_t)VIRTIO_BLK_POLL_MAX_IDLE_NS);
        return;
    }
    if (d->poll_doze_ns > VIRTIO_BLK_POLL_MAX_DOZE_NS) {
        error_setg(errp, "invalid poll-doze-ns property (%" PRIu64 "), must "
                   "be at most %" PRIu64, d->poll_doze_ns,
                   (uint64_t)VIRTIO_BLK_POLL_MAX_DOZE_NS);
        return;
    }

    if (!vbp_check_count("uring-batch", d->uring_batch, errp)) {
        return;
    }
    if (d->uring_batch_ns > VIRTIO_BLK_POLL_MAX_URING_BATCH_NS) {
        error_setg(errp, "invalid uring-batch-ns property (%" PRIu64 "), "
                   "must be at most %" PRIu64, d->uring_batch_ns,
                   (uint64_t)VIRTIO_BLK_POLL_MAX_URING_BATCH_NS);
        return;
    }
    if (!vbp_check_count("coalesce-max", d->coalesce_max, errp)) {
        return;
    }
    if (d->coalesce_idle_ns > VIRTIO_BLK_POLL_MAX_COALESCE_NS) {
        error_setg(errp, "invalid coalesce-idle-ns property (%" PRIu64 "), "
                   "must be at most %" PRIu64 " (0: adaptive)",
                   d->coalesce_idle_ns,
                   (uint64_t)VIRTIO_BLK_POLL_MAX_COALESCE_NS);
        return;
    }
    if (d->coalesce_max_ns < VIRTIO_BLK_POLL_MIN_COALESCE_NS ||
        d->coalesce_max_ns > VIRTIO_BLK_POLL_MAX_COALESCE_NS) {
        error_setg(errp, "invalid coalesce-max-ns property (%" PRIu64 "), "
                   "must be between %" PRIu64 " and %" PRIu64,
                   d->coalesce_max_ns,
                   (uint64_t)VIRTIO_BLK_POLL_MIN_COALESCE_NS,
                   (uint64_t)VIRTIO_BLK_POLL_MAX_COALESCE_NS);
        return;
    }

    if (!virtio_device_ioeventfd_enabled(VIRTIO_DEVICE(dev))) {
        error_setg(errp, "virtio-blk-poll needs ioeventfd, but the transport "
                   "does not provide it (ioeventfd=off?)");
        return;
    }

    if (!s->conf.iothread && !s->conf.iothread_vq_mapping_list) {
        /* Short: the thread is named "IO <id>", at most 15 characters */
        g_autofree char *id = g_strdup_printf("vbp-poll%u",
                                              iothread_count++);

        d->own_iothread = iothread_create(id, errp);
        if (!d->own_iothread) {
            return;
        }
        /*
         * It lives outside /objects, where management tools count their
         * own IOThreads, so it cannot be named through the link property;
         * the reference is the link's, dropped when the device finalizes.
         */
        s->conf.iothread = d->own_iothread;
        object_ref(OBJECT(d->own_iothread));
    }

    vbpc->parent_realize(dev, errp);
    if (*errp) {
        goto fail;
    }

    d->queues = g_new0(VirtIOBlockPollQueue, s->conf.num_queues);
    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        VirtIOBlockPollQueue *q = &d->queues[i];

        q->dev = d;
        q->index = i;
        q->window_ns = -1;
        q->vq = virtio_get_queue(VIRTIO_DEVICE(dev), i);
        q->ctx = s->vq_aio_context[i];
        q->iothread = vbp_queue_iothread(s, q->ctx);
        /*
         * No re-entrancy guard: the one of this device is never checked
         * (the transport proxy owns the MMIO regions), sharing it between
         * IOThreads would race, and a pass cannot reach MMIO dispatch at
         * all: rings and descriptors outside guest RAM are refused in
         * threads without the BQL.
         */
        q->poll_bh = aio_bh_new(q->ctx, vbp_poll_bh, q);
        virtio_queue_set_served_without_bql(q->vq, true);
        if (d->fast_path && !d->uring_error) {
            Error *local_err = NULL;

            q->uring = vbp_uring_new(s->conf.queue_size, d->uring_sqpoll,
                                     &vbp_uring_ops, d, &local_err);
            if (!q->uring) {
                d->uring_error = g_strdup_printf("io_uring unavailable: %s",
                                                 error_get_pretty(local_err));
                warn_report("virtio-blk-poll: %s; requests take the block "
                            "layer", d->uring_error);
                error_free(local_err);
            }
        }
    }
    d->fast.fd = -1;
    d->fast.reason = VBP_FAST_NOT_STARTED;
    d->throttle_state =
        &blk_get_public(s->blk)->throttle_group_member.throttle_state;
    if (d->poll_cpus && !vbp_apply_poll_cpus(d, errp)) {
        vbp_unrealize(dev);
        return;
    }
    return;

fail:
    if (d->own_iothread) {
        iothread_destroy(d->own_iothread);
        d->own_iothread = NULL;
    }
}

static void vbp_unrealize(DeviceState *dev)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(dev);
    VirtIOBlockPollClass *vbpc = VIRTIO_BLK_POLL_GET_CLASS(dev);
    VirtIOBlock *s = VIRTIO_BLK(dev);

    vbpc->parent_unrealize(dev);
    for (unsigned i = 0; i < s->conf.num_queues; i++) {
        qemu_bh_delete(d->queues[i].poll_bh);
        if (d->queues[i].hybrid_timer) {
            timer_free(d->queues[i].hybrid_timer);
        }
        if (d->queues[i].uring) {
            vbp_uring_detach(d->queues[i].uring);
            vbp_uring_free(d->queues[i].uring);
        }
    }
    g_free(d->queues);
    d->queues = NULL;
    g_free(d->uring_error);
    d->uring_error = NULL;
    if (d->own_iothread) {
        /* The iothread link holds the last reference until finalize */
        iothread_destroy(d->own_iothread);
        d->own_iothread = NULL;
    }
}

static const Property vbp_properties[] = {
    DEFINE_PROP_UINT64("poll-idle-ns", VirtIOBlockPoll, poll_idle_ns,
                       VIRTIO_BLK_POLL_DEFAULT_IDLE_NS),
    DEFINE_PROP_BOOL("busy-poll", VirtIOBlockPoll, busy_poll, false),
    DEFINE_PROP_BOOL("poll-adaptive", VirtIOBlockPoll, poll_adaptive, true),
    DEFINE_PROP_BOOL("poll-hybrid", VirtIOBlockPoll, poll_hybrid, true),
    DEFINE_PROP_UINT64("poll-doze-ns", VirtIOBlockPoll, poll_doze_ns,
                       VIRTIO_BLK_POLL_DEFAULT_DOZE_NS),
    DEFINE_PROP_UINT32("batch-max", VirtIOBlockPoll, batch_max,
                       VIRTIO_BLK_POLL_DEFAULT_BATCH),
    DEFINE_PROP_STRING("poll-cpus", VirtIOBlockPoll, poll_cpus),
    DEFINE_PROP_BOOL("fast-path", VirtIOBlockPoll, fast_path, true),
    DEFINE_PROP_BOOL("uring-sqpoll", VirtIOBlockPoll, uring_sqpoll, false),
    DEFINE_PROP_UINT32("uring-batch", VirtIOBlockPoll, uring_batch,
                       VIRTIO_BLK_POLL_DEFAULT_URING_BATCH),
    DEFINE_PROP_UINT64("uring-batch-ns", VirtIOBlockPoll, uring_batch_ns,
                       VIRTIO_BLK_POLL_DEFAULT_URING_BATCH_NS),
    DEFINE_PROP_BOOL("coalesce", VirtIOBlockPoll, coalesce, true),
    DEFINE_PROP_UINT32("coalesce-max", VirtIOBlockPoll, coalesce_max,
                       VIRTIO_BLK_POLL_DEFAULT_COALESCE),
    DEFINE_PROP_UINT64("coalesce-max-ns", VirtIOBlockPoll, coalesce_max_ns,
                       VIRTIO_BLK_POLL_DEFAULT_COALESCE_NS),
    DEFINE_PROP_UINT64("coalesce-idle-ns", VirtIOBlockPoll, coalesce_idle_ns,
                       0),
    /* Testing only: a drained section begins and ends while queues stop */
    DEFINE_PROP_BOOL("x-drain-during-stop", VirtIOBlockPoll,
                     drain_during_stop, false),
    /*
     * Measuring only: offer the queues to the IOThread's own adaptive
     * polling as well (what 10.2's fdmon-io_uring did to QD1)
     */
    DEFINE_PROP_BOOL("x-iothread-poll", VirtIOBlockPoll, iothread_poll,
                     false),
};

static void vbp_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_CLASS(klass);
    VirtIOBlkClass *vbc = VIRTIO_BLK_CLASS(klass);
    VirtIOBlockPollClass *vbpc = VIRTIO_BLK_POLL_CLASS(klass);

    device_class_set_props(dc, vbp_properties);
    object_class_property_set_description(klass, "poll-idle-ns",
        "Time in ns a virtqueue keeps polling without a new request before "
        "it re-enables guest notifications and sleeps (0: never poll, "
        "serve each kick and sleep)");
    object_class_property_set_description(klass, "poll-adaptive",
        "Poll only as long as the guest's pace between requests makes it "
        "pay (twice its average gap, at most poll-idle-ns; no polling when "
        "that does not fit); off: always poll-idle-ns");
    object_class_property_set_description(klass, "busy-poll",
        "Poll the virtqueues for ever, never sleep: lowest latency, one "
        "host CPU per serving IOThread busy all the time");
    object_class_property_set_description(klass, "batch-max",
        "Most requests taken from a virtqueue per poll pass (1-1024)");
    object_class_property_set_description(klass, "poll-cpus",
        "Host CPUs for the serving IOThreads, a CPU list such as 2-3,6 "
        "for all of them, or one list per IOThread separated by ':' "
        "(in the order of the queues they serve)");
    object_class_property_set_description(klass, "fast-path",
        "Serve reads, writes and flushes of a raw image over a file or "
        "host_device node through a per-queue io_uring (off: always "
        "through the block layer)");
    object_class_property_set_description(klass, "uring-sqpoll",
        "Give each queue's io_uring a kernel thread that polls its "
        "submission queue (no system call to submit; costs a host CPU "
        "while busy and for 10 ms after)");
    object_class_property_set_description(klass, "poll-hybrid",
        "With poll-adaptive, when the guest waits for each request before "
        "the next, sleep until a quarter of its usual gap is left and "
        "poll only from then (off: poll through the whole gap)");
    object_class_property_set_description(klass, "poll-doze-ns",
        "With poll-adaptive, a queue whose guest polls it for completions "
        "(it suppresses their interrupts) keeps notifications off when "
        "idle and looks at its ring every 50 us for this long in ns after "
        "its last request, so the guest never kicks (0-60000000000; 0: "
        "sleep and take a kick, as for any guest)");
    object_class_property_set_description(klass, "uring-batch",
        "Most requests a polling queue holds to start them with one "
        "io_uring submission while its guest keeps submitting (1-1024; "
        "1: one submission per pass; a lone request is never held)");
    object_class_property_set_description(klass, "uring-batch-ns",
        "Longest time in ns a request waits for its io_uring submission "
        "(0-10000000; 0: none waits)");
    object_class_property_set_description(klass, "coalesce",
        "Hold completion interrupts while a polling queue's guest keeps "
        "submitting in parallel, and signal many completions at once "
        "(a lone request is never held)");
    object_class_property_set_description(klass, "coalesce-max",
        "Most completions one interrupt waits for (1-1024; 1: one "
        "interrupt per pass, as without coalescing)");
    object_class_property_set_description(klass, "coalesce-max-ns",
        "Longest time in ns a completion waits for its interrupt "
        "(1000-1000000000)");
    object_class_property_set_description(klass, "coalesce-idle-ns",
        "Signal held completions once no request came for this long, in "
        "ns (0, the default: twice the guest's average gap between "
        "requests; at most coalesce-max-ns)");
    object_class_property_add(klass, "stats", "VirtIOBlockPollQueueStats",
                              vbp_get_stats, NULL, NULL, NULL);
    object_class_property_set_description(klass, "stats",
        "Per-virtqueue counters (read-only): requests, passes, kicks, "
        "notifies, suppressed notifies, polling time, serving thread");
    object_class_property_add(klass, "x-fail-next-submit", "uint32",
                              NULL, vbp_set_fail_next_submit, NULL, NULL);
    object_class_property_set_description(klass, "x-fail-next-submit",
        "Testing only: the next io_uring submission of each queue fails "
        "with this errno (its requests complete with the error)");
    object_class_property_add(klass, "x-short-next-submit", "uint32",
                              NULL, vbp_set_short_next_submit, NULL, NULL);
    object_class_property_set_description(klass, "x-short-next-submit",
        "Testing only: the kernel consumes at most this many requests of "
        "the next io_uring submission of each queue (a short submission)");

    vbpc->parent_realize = vdc->realize;
    vbpc->parent_unrealize = vdc->unrealize;
    vdc->realize = vbp_realize;
    vdc->unrealize = vbp_unrealize;

    vbc->attach_vq = vbp_attach_vq;
    vbc->detach_vq = vbp_detach_vq;
    vbc->stop_vq = vbp_stop_vq;
    vbc->push_request = vbp_push_request;
    vbc->submit_rw = vbp_submit_rw;
    vbc->submit_flush = vbp_submit_flush;
    vbc->submit_dwz = vbp_submit_dwz;
}

static const TypeInfo vbp_info = {
    .name = TYPE_VIRTIO_BLK_POLL,
    .parent = TYPE_VIRTIO_BLK,
    .instance_size = sizeof(VirtIOBlockPoll),
    .class_init = vbp_class_init,
    .class_size = sizeof(VirtIOBlockPollClass),
};

static void vbp_register_types(void)
{
    type_register_static(&vbp_info);
}

type_init(vbp_register_types)

