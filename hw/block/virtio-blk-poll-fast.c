/*
 * virtio-blk-poll: the raw fast path through each queue's io_uring
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
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

/*
 * Why requests cannot take the io_uring path now, or NULL if they can.
 * Only a raw image without offset/size over a file or host_device node,
 * or such a node alone, that nothing else uses qualifies: a block job,
 * an export, a filter, a throttle group or detect-zeroes each must see
 * the writes, so with any of them the block layer serves.  Dirty bitmaps
 * are kept up to date by the fast path itself.
 *
 * Context: BQL held; the graph changes only in drained sections, and the
 * queues are attached again after each.
 */
static const char *const vbp_fast_reason_names[VBP_FAST__MAX] = {
    [VBP_FAST_OK] = "io_uring",
    [VBP_FAST_NOT_STARTED] = "not started",
    [VBP_FAST_DISABLED] = "disabled with fast-path=off",
    [VBP_FAST_NO_URING] = "io_uring unavailable",
    [VBP_FAST_NO_MEDIUM] = "no medium",
    [VBP_FAST_PROTOCOL] =
        "protocol node without a file descriptor (rbd, nbd, ...)",
    [VBP_FAST_NOT_RAW] = "not a raw image",
    [VBP_FAST_RAW_OFFSET] = "raw image with an offset or size",
    [VBP_FAST_NOT_FILE] = "raw image not over a file or host_device node",
    [VBP_FAST_THROTTLE] = "I/O throttling",
    [VBP_FAST_INACTIVE] = "image inactive (migration)",
    [VBP_FAST_ZONED] = "zoned device",
    [VBP_FAST_DETECT_ZEROES] = "detect-zeroes",
    [VBP_FAST_SHARED] =
        "image shared with another user (block job, export, ...)",
};

/* What @reason says to a user: io_uring, or why not */
const char *vbp_fast_reason_name(VirtIOBlockPoll *d, VBPFastReason reason)
{
    if (reason == VBP_FAST_NO_URING && d->uring_error) {
        return d->uring_error;
    }
    return vbp_fast_reason_names[reason];
}

static VBPFastReason vbp_fast_path_check(VirtIOBlockPoll *d)
{
    VirtIOBlock *s = VIRTIO_BLK(d);
    BlockDriverState *bs = blk_bs(s->blk), *file;
    BdrvChild *c;
    int n = 0, fd;

    GRAPH_RDLOCK_GUARD_MAINLOOP();

    if (!d->fast_path) {
        return VBP_FAST_DISABLED;
    }
    if (d->uring_error) {
        return VBP_FAST_NO_URING;
    }
    if (!bs || !bs->drv) {
        return VBP_FAST_NO_MEDIUM;
    }
    fd = raw_posix_get_fd(bs);
    if (fd >= 0) {
        /* No format node at all, as libvirt >= 10 attaches raw images */
        file = bs;
    } else if (bs->drv->protocol_name) {
        /* rbd, nbd, iscsi, ...: no descriptor io_uring could use */
        return VBP_FAST_PROTOCOL;
    } else {
        if (strcmp(bs->drv->format_name, "raw")) {
            return VBP_FAST_NOT_RAW;
        }
        if (qdict_haskey(bs->options, "offset") ||
            qdict_haskey(bs->options, "size")) {
            return VBP_FAST_RAW_OFFSET;
        }
        file = bs->file ? bs->file->bs : NULL;
        fd = file ? raw_posix_get_fd(file) : -1;
        if (fd < 0) {
            return VBP_FAST_NOT_FILE;
        }
    }
    if (blk_get_public(s->blk)->throttle_group_member.throttle_state) {
        return VBP_FAST_THROTTLE;
    }
    if ((bs->open_flags | file->open_flags) & BDRV_O_INACTIVE) {
        return VBP_FAST_INACTIVE;
    }
    if (bs->bl.zoned != BLK_Z_NONE || file->bl.zoned != BLK_Z_NONE) {
        /* Write pointers, zone append: the block layer keeps them */
        return VBP_FAST_ZONED;
    }
    if (bs->detect_zeroes != BLOCKDEV_DETECT_ZEROES_OPTIONS_OFF ||
        file->detect_zeroes != BLOCKDEV_DETECT_ZEROES_OPTIONS_OFF) {
        return VBP_FAST_DETECT_ZEROES;
    }
    /* Our BlockBackend above the top node, the raw node above the file */
    QLIST_FOREACH(c, &bs->parents, next_parent) {
        n++;
    }
    if (file != bs) {
        QLIST_FOREACH(c, &file->parents, next_parent) {
            n++;
        }
    }
    if (n != (file == bs ? 1 : 2)) {
        return VBP_FAST_SHARED;
    }

    d->fast.write = !bdrv_is_read_only(bs) && !bdrv_is_read_only(file);
    d->fast.direct = file->open_flags & BDRV_O_NOCACHE;
    d->fast.align = MAX(bs->bl.request_alignment,
                        file->bl.request_alignment);
    d->fast.mem_align = bdrv_min_mem_align(file);
    d->fast.regular = !strcmp(file->drv->format_name, "file");
    d->fast.unmap = (bs->open_flags & BDRV_O_UNMAP) &&
                    (file->open_flags & BDRV_O_UNMAP);
    d->fast.discard_align = MAX(MAX(bs->bl.pdiscard_alignment,
                                    bs->bl.request_alignment),
                                MAX(file->bl.pdiscard_alignment,
                                    file->bl.request_alignment));
    /* cache.no-flush=on: FUA is dropped, and a flush reaching it too */
    d->fast.no_flush = (bs->open_flags | file->open_flags) & BDRV_O_NO_FLUSH;
    d->fast.flush_noop = file->open_flags & BDRV_O_NO_FLUSH;
    d->fast.bs = bs;
    d->fast.file = file;
    qatomic_store_release(&d->fast.fd, fd);
    return VBP_FAST_OK;
}

/* Context: BQL held */
void vbp_fast_path_update(VirtIOBlockPoll *d)
{
    VBPFastReason old = d->fast.reason;
    VBPFastReason reason;

    qatomic_set(&d->fast.fd, -1);
    reason = vbp_fast_path_check(d);
    /* Read by the IOThreads (vbp_fast_path_maybe_recheck) */
    qatomic_set(&d->fast.reason, reason);
    if (reason != old) {
        trace_virtio_blk_poll_fast_path(d, vbp_fast_reason_name(d, reason));
    }
}

/*
 * The fd for a fast path request on @q, or -1 if it must take the block
 * layer.  On success the BlockBackend counts the request as in flight, so
 * that drained sections wait for it.
 *
 * Context: the thread that handles the request
 */
static int vbp_fast_path_begin(VirtIOBlockPollQueue *q, bool is_write,
                               const char **why)
{
    VirtIOBlockPoll *d = q->dev;
    VirtIOBlock *s = VIRTIO_BLK(d);
    int fd;

    if (!q->uring || !qatomic_read(&q->active) ||
        qemu_get_current_aio_context() != q->ctx) {
        *why = q->uring ? "not served by the poller" : "no io_uring";
        return -1;
    }
    /* Throttling can be switched on at any time, without a drain */
    if (qatomic_read(d->throttle_state)) {
        *why = "I/O throttling";
        return -1;
    }
    blk_inc_in_flight(s->blk);
    /*
     * A drained section that begins now either sees this request in flight
     * and waits for it, or has detached the queue, which we see here.
     * Pairs with the barrier between detach and the drain's poll.  Only
     * then are the fast_* fields stable: they change only while the
     * queues are detached and nothing is in flight.
     */
    smp_mb();
    if (!qatomic_read(&q->attached)) {
        *why = "queue drained";
        goto fallback;
    }
    fd = qatomic_load_acquire(&d->fast.fd);
    if (fd < 0) {
        *why = vbp_fast_reason_name(d, qatomic_read(&d->fast.reason));
        goto fallback;
    }
    if (is_write && !d->fast.write) {
        *why = "read-only node";
        goto fallback;
    }
    if (is_write && (qatomic_read(&d->fast.bs->write_threshold_offset) ||
                     qatomic_read(&d->fast.file->write_threshold_offset))) {
        /*
         * block-set-write-threshold needs no drain either: the block
         * layer checks each write against it and sends the event.
         */
        *why = "write threshold";
        goto fallback;
    }
    return fd;

fallback:
    blk_dec_in_flight(s->blk);
    return -1;
}

/*
 * Whether a write must be durable when it completes, as the block layer
 * decides it: the write cache is off (cache=writethrough/directsync,
 * write-cache=off, or the guest wrote 0 to the config's wce), so it puts
 * BDRV_REQ_FUA on every write, unless cache.no-flush=on on either node
 * drops it.  The guest may flip wce at any time: asked per request.
 *
 * Context: after a successful vbp_fast_path_begin()
 */
static bool vbp_fast_path_fua(VirtIOBlockPoll *d)
{
    return !blk_enable_write_cache(VIRTIO_BLK(d)->blk) && !d->fast.no_flush;
}

static bool vbp_fast_path_aligned(VirtIOBlockPoll *d, int64_t offset,
                                  QEMUIOVector *qiov)
{
    if (!d->fast.direct) {
        return true;
    }
    if (!QEMU_IS_ALIGNED(offset, d->fast.align) ||
        !QEMU_IS_ALIGNED(qiov->size, d->fast.align)) {
        return false;
    }
    for (int i = 0; i < qiov->niov; i++) {
        if (!QEMU_PTR_IS_ALIGNED(qiov->iov[i].iov_base, d->fast.mem_align) ||
            !QEMU_IS_ALIGNED(qiov->iov[i].iov_len, d->fast.align)) {
            return false;
        }
    }
    return true;
}

/*
 * Whether the image is inactive (after an outgoing migration, or
 * blockdev-set-active): the block layer must not be asked to write to it.
 * The flag changes only in drained sections.
 */
static bool vbp_image_inactive(VirtIOBlockPoll *d)
{
    BlockDriverState *bs = blk_bs(VIRTIO_BLK(d)->blk);

    return bs && (bs->open_flags & BDRV_O_INACTIVE);
}

/*
 * Context: main loop BH.  The IOThreads read the other fast_* fields
 * only after they have seen fast_fd >= 0 (load-acquire, after the
 * request counts as in flight), and fast_fd goes from >= 0 to -1 only
 * in vbp_attach_vq(), in a drained section.  So while fast_fd is -1 no
 * IOThread reads them and no fast path request is in flight: deciding
 * again is safe without a drain, and publishing fast_fd last (release)
 * hands the fields over.  If an attach has decided in the meantime
 * (fast_fd >= 0), there is nothing to do here, and rewriting the
 * fields under the IOThreads' feet would not be safe.
 */
static void vbp_fast_path_recheck_bh(void *opaque)
{
    VirtIOBlockPoll *d = opaque;

    qatomic_set(&d->fast.recheck_pending, false);
    if (d->queues && qatomic_read(&d->fast.fd) < 0) {
        vbp_fast_path_update(d);
    }
    object_unref(OBJECT(d));
}

/*
 * Activating an image again (cont after a failed migration,
 * blockdev-set-active) needs no drained section, so the queues are not
 * attached again: notice it here and decide again in the main loop.
 * Nor do other users of the image always leave in a drained section:
 * block_resize drops its BlockBackend after its drain has ended.  While
 * the image looks shared, look again in the main loop now and then.
 *
 * Context: the queue's IOThread, for a request that took the block layer
 */
#define VBP_RECHECK_SHARED_NS (100 * SCALE_MS)

static void vbp_fast_path_maybe_recheck(VirtIOBlockPoll *d)
{
    VBPFastReason reason = qatomic_read(&d->fast.reason);
    bool again = false;

    if (reason == VBP_FAST_INACTIVE) {
        again = !vbp_image_inactive(d);
    } else if (reason == VBP_FAST_SHARED) {
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        int64_t last = qatomic_read(&d->fast.recheck_ns);

        if (now - last >= VBP_RECHECK_SHARED_NS &&
            qatomic_cmpxchg(&d->fast.recheck_ns, last, now) == last) {
            again = true;
        }
    }
    if (again && !qatomic_xchg(&d->fast.recheck_pending, true)) {
        object_ref(OBJECT(d));
        aio_bh_schedule_oneshot(qemu_get_aio_context(),
                                vbp_fast_path_recheck_bh, d);
    }
}

/*
 * Finish vbp_fast_path_begin() once the request was queued on the ring
 * (@queued), or not: submit it now unless the pass that took it from the
 * avail ring submits its whole batch anyway.  Returns @queued.
 */
static bool vbp_fast_path_end(VirtIOBlockPollQueue *q, bool queued)
{
    if (!queued) {
        blk_dec_in_flight(VIRTIO_BLK(q->dev)->blk);
    } else if (!q->in_pass) {
        vbp_uring_submit(q->uring);
    }
    return queued;
}

/* Context: the queue's IOThread */
bool vbp_submit_rw(VirtIOBlockReq *req, bool is_write, int64_t offset,
                   QEMUIOVector *qiov, BlockCompletionFunc *cb)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(req->dev);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(req->vq)];
    const char *why = "no slot on the ring";
    bool fua;
    int fd;

    if (is_write && vbp_image_inactive(d)) {
        /* An error for the guest, under the werror policy, not an abort */
        STAT_ADD(q, fallback_rw, 1);
        cb(req, -EPERM);
        return true;
    }

    fd = vbp_fast_path_begin(q, is_write, &why);
    if (fd >= 0 && !vbp_fast_path_aligned(d, offset, qiov)) {
        vbp_fast_path_end(q, false);
        why = "unaligned for O_DIRECT";
        fd = -1;
    }
    fua = is_write && fd >= 0 && vbp_fast_path_fua(d);
    if (fd >= 0 &&
        vbp_fast_path_end(q, vbp_uring_queue_rw(q->uring, fd, is_write, fua,
                                                offset, qiov, cb, req))) {
        STAT_ADD(q, fast_rw, 1);
        if (fua) {
            STAT_ADD(q, fast_fua, 1);
        }
        return true;
    }
    trace_virtio_blk_poll_fallback(d, q->index, is_write ? "write" : "read",
                                   why);
    STAT_ADD(q, fallback_rw, 1);
    vbp_fast_path_maybe_recheck(d);
    return false;
}

/* Context: the queue's IOThread */
bool vbp_submit_flush(VirtIOBlockReq *req, BlockCompletionFunc *cb)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(req->dev);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(req->vq)];
    const char *why = "no slot on the ring";
    int fd = vbp_fast_path_begin(q, true, &why);

    if (fd >= 0 && d->fast.flush_noop) {
        /* cache.no-flush=on: the block layer knows what is left to do */
        vbp_fast_path_end(q, false);
        why = "cache.no-flush";
        fd = -1;
    }
    if (fd >= 0 &&
        vbp_fast_path_end(q, vbp_uring_queue_flush(q->uring, fd, cb, req))) {
        STAT_ADD(q, fast_flushes, 1);
        return true;
    }
    trace_virtio_blk_poll_fallback(d, q->index, "flush", why);
    STAT_ADD(q, fallback_flushes, 1);
    return false;
}

/*
 * Discard and write zeroes on a regular file, as file-posix does them:
 * fallocate(PUNCH_HOLE) for a discard (only with discard=unmap, without
 * the unaligned head and tail; a no-op otherwise), fallocate(ZERO_RANGE)
 * for write zeroes, or PUNCH_HOLE when the guest allows unmapping and the
 * image has discard=unmap.  Where the file system refuses, the request
 * is handed to the block layer, which knows the other ways.
 *
 * Context: the queue's IOThread
 */
bool vbp_submit_dwz(VirtIOBlockReq *req, bool write_zeroes, int64_t offset,
                    int64_t bytes, int flags, BlockCompletionFunc *cb)
{
    VirtIOBlockPoll *d = VIRTIO_BLK_POLL(req->dev);
    VirtIOBlockPollQueue *q = &d->queues[virtio_get_queue_index(req->vq)];
    VBPUringKind kind = VBP_URING_WRITE_ZEROES;
    int mode = FALLOC_FL_ZERO_RANGE;
    const char *why = "no slot on the ring";
    int fd;

    if (vbp_image_inactive(d)) {
        STAT_ADD(q, fallback_dwz, 1);
        cb(req, -EPERM);
        return true;
    }
    fd = vbp_fast_path_begin(q, true, &why);
    if (fd < 0) {
        goto fallback;
    }
    /* From here on the fast_* fields are stable */
    if (!d->fast.regular || (write_zeroes && vbp_fast_path_fua(d))) {
        /*
         * A block device, or write-through write zeroes, which the block
         * layer follows with a flush.
         */
        why = d->fast.regular ? "write-through write zeroes" :
              "block device";
        goto fallback_end;
    }
    if (!write_zeroes) {
        int64_t end = QEMU_ALIGN_DOWN(offset + bytes, d->fast.discard_align);

        offset = QEMU_ALIGN_UP(offset, d->fast.discard_align);
        if (!d->fast.unmap || end <= offset) {
            /* what the block layer does: nothing, successfully */
            vbp_fast_path_end(q, false);
            STAT_ADD(q, fast_dwz, 1);
            cb(req, 0);
            return true;
        }
        bytes = end - offset;
        kind = VBP_URING_DISCARD;
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    } else if ((flags & BDRV_REQ_MAY_UNMAP) && d->fast.unmap) {
        kind = VBP_URING_WRITE_ZEROES_UNMAP;
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    }
    if (vbp_fast_path_end(q, vbp_uring_queue_fallocate(q->uring, fd, kind,
                                                       mode, offset, bytes,
                                                       cb, req))) {
        STAT_ADD(q, fast_dwz, 1);
        return true;
    }
    goto fallback;

fallback_end:
    vbp_fast_path_end(q, false);
fallback:
    trace_virtio_blk_poll_fallback(d, q->index, write_zeroes ?
                                   "write zeroes" : "discard", why);
    STAT_ADD(q, fallback_dwz, 1);
    return false;
}

/*
 * A fast path request is done.  For writes, discards and write zeroes let
 * dirty bitmaps, flush bookkeeping and statistics of both nodes know, as
 * bdrv_co_write_req_finish() would.  A discard the file system cannot do
 * succeeds, as in the block layer; a write zeroes it cannot do goes to
 * the block layer.
 *
 * Context: the queue's IOThread
 */
static bool vbp_uring_before_complete(void *opaque, VBPUringKind kind,
                                      int64_t offset, uint64_t bytes, int ret,
                                      BlockCompletionFunc *cb,
                                      void *cb_opaque)
{
    VirtIOBlockPoll *d = opaque;
    BlockDriverState *nodes[] = { d->fast.bs, d->fast.file };
    bool refused = ret == -EOPNOTSUPP || ret == -ENOTSUP ||
                   ret == -EINVAL || ret == -EBUSY;

    switch (kind) {
    case VBP_URING_READ:
    case VBP_URING_FLUSH:
        return false;
    case VBP_URING_DISCARD:
        break;
    case VBP_URING_WRITE_ZEROES:
    case VBP_URING_WRITE_ZEROES_UNMAP:
        if (refused) {
            blk_aio_pwrite_zeroes(VIRTIO_BLK(d)->blk, offset, bytes,
                                  kind == VBP_URING_WRITE_ZEROES_UNMAP ?
                                  BDRV_REQ_MAY_UNMAP : 0, cb, cb_opaque);
            return true;
        }
        break;
    case VBP_URING_WRITE:
        break;
    }
    /*
     * Whatever @ret is, as bdrv_co_write_req_finish() does: a write that
     * failed may have changed some of the bytes (a short write followed
     * by an error), so dirty bitmaps must cover it.
     */
    for (int i = 0; i < (nodes[0] == nodes[1] ? 1 : 2); i++) {
        if (kind != VBP_URING_DISCARD) {
            stat64_max(&nodes[i]->wr_highest_offset, offset + bytes);
        }
        qatomic_inc(&nodes[i]->write_gen);
        bdrv_set_dirty(nodes[i], offset, bytes);
    }
    if (kind == VBP_URING_DISCARD && refused) {
        /* A discard is a hint: the block layer succeeds too */
        cb(cb_opaque, 0);
        return true;
    }
    return false;
}

static void vbp_uring_after_complete(void *opaque)
{
    VirtIOBlockPoll *d = opaque;

    blk_dec_in_flight(VIRTIO_BLK(d)->blk);
}

const VBPUringOps vbp_uring_ops = {
    .before_complete = vbp_uring_before_complete,
    .after_complete = vbp_uring_after_complete,
};
