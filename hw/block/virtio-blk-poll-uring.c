/*
 * virtio-blk-poll: per-virtqueue io_uring for the raw fast path
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One ring per virtqueue, owned by the queue's IOThread.  The poller
 * queues the reads, writes and flushes of one pass, submits them with one
 * io_uring_enter() and at once reaps what already completed ("early
 * completion"); what completes later is reaped by the next pass or, when
 * the queue sleeps, by the ring's fd handler in the IOThread's event loop.
 * Requests come from a pool sized to the ring, so the hot path does not
 * allocate.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "block/aio-wait.h"
#include "hw/virtio/virtio-blk-poll-uring.h"
#include "trace.h"

#ifdef CONFIG_LINUX_IO_URING
#include <liburing.h>

typedef struct VBPUringReq {
    VBPUring *ur;
    BlockCompletionFunc *cb;
    void *opaque;
    int fd;
    uint8_t op;                 /* IORING_OP_READV/WRITEV/FSYNC/FALLOCATE */
    int rw_flags;               /* RWF_DSYNC for a write-through write */
    int error;                  /* why it failed before reaching the kernel */
    VBPUringKind kind;
    int mode;                   /* of fallocate */
    int64_t offset;             /* of the whole request */
    int64_t bytes;              /* of a fallocate */
    QEMUIOVector *qiov;         /* the caller's, whole request */
    size_t done;                /* bytes transferred so far */
    QEMUIOVector rest;          /* the part still to do, after a short one */
    struct VBPUringReq *next_free;  /* in @free or in @failed */
} VBPUringReq;

/* Owned by the thread of @ctx while attached, by the BQL holder otherwise */
struct VBPUring {
    struct io_uring ring;
    AioContext *ctx;
    unsigned entries;
    unsigned inflight;          /* queued or in the kernel */
    unsigned queued;            /* SQEs not yet submitted (no-ops too) */
    unsigned in_kernel;         /* SQEs submitted whose CQE is not seen */
    /*
     * SQEs are left queued and nothing else submits them: the last
     * submission got -EAGAIN/-EBUSY, or took fewer than it was given.
     * The reap of the next CQE (there is one: in_kernel) submits them.
     */
    bool busy;
    bool sqpoll;                /* a kernel thread consumes the SQ */
    int submit_error;           /* of the last submission, 0 if it worked */
    VBPUringReq *reqs;          /* the pool, @entries of them */
    VBPUringReq *free;
    /*
     * Requests whose submission failed, completed with their error by
     * the next reap (fail_bh), never from inside the call that queued
     * or submitted them.
     */
    VBPUringReq *failed;
    QEMUBH *fail_bh;
    int fail_next;              /* test hook, any thread: next submit fails */
    int short_next;             /* test hook, any thread: next submit short */
    const VBPUringOps *ops;
    void *ops_opaque;
    VBPUringStats stats;
};

#define URING_STAT_ADD(ur, field, n) \
    qatomic_set(&(ur)->stats.field, qatomic_read(&(ur)->stats.field) + (n))

VBPUring *vbp_uring_new(unsigned entries, bool sqpoll,
                        const VBPUringOps *ops, void *opaque, Error **errp)
{
    VBPUring *ur = g_new0(VBPUring, 1);
    struct io_uring_params params = {
        .flags = sqpoll ? IORING_SETUP_SQPOLL : 0,
        .sq_thread_idle = VBP_URING_SQ_IDLE_MS,
    };
    int ret;

    ret = io_uring_queue_init_params(entries, &ur->ring, &params);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot set up an io_uring");
        g_free(ur);
        return NULL;
    }
    ur->entries = entries;
    ur->sqpoll = sqpoll;
    ur->short_next = -1;
    ur->ops = ops;
    ur->ops_opaque = opaque;
    ur->reqs = g_new0(VBPUringReq, entries);
    for (unsigned i = 0; i < entries; i++) {
        ur->reqs[i].ur = ur;
        ur->reqs[i].next_free = ur->free;
        ur->free = &ur->reqs[i];
    }
    return ur;
}

void vbp_uring_free(VBPUring *ur)
{
    if (!ur) {
        return;
    }
    assert(!ur->ctx && !ur->inflight);
    io_uring_queue_exit(&ur->ring);
    g_free(ur->reqs);
    g_free(ur);
}

static void vbp_uring_completion_cb(void *opaque)
{
    vbp_uring_reap(opaque, false);
}

static void vbp_uring_fail_bh(void *opaque)
{
    vbp_uring_reap(opaque, false);
}

static bool vbp_uring_poll_cb(void *opaque)
{
    VBPUring *ur = opaque;

    return io_uring_cq_ready(&ur->ring);
}

void vbp_uring_attach(VBPUring *ur, AioContext *ctx)
{
    /*
     * Attached again after every drained section, to the same context,
     * whose thread may be reaping the ring right now (its fd handler
     * stays): then there is nothing to change.
     */
    if (ur->fail_bh && ur->ctx == ctx) {
        return;
    }
    if (ur->fail_bh) {
        assert(!ur->failed);
        qemu_bh_delete(ur->fail_bh);
    }
    ur->fail_bh = aio_bh_new(ctx, vbp_uring_fail_bh, ur);
    ur->ctx = ctx;
    aio_set_fd_handler(ctx, ur->ring.ring_fd, vbp_uring_completion_cb, NULL,
                       vbp_uring_poll_cb, vbp_uring_completion_cb, ur);
}

/* Context: the thread of ur->ctx */
static void vbp_uring_detach_bh(void *opaque)
{
    VBPUring *ur = opaque;

    aio_set_fd_handler(ur->ctx, ur->ring.ring_fd, NULL, NULL, NULL, NULL,
                       NULL);
    /* Nothing failed is left: the drain before detach reaped it all */
    assert(!ur->failed);
    qemu_bh_delete(ur->fail_bh);
    ur->fail_bh = NULL;
    ur->ctx = NULL;
}

void vbp_uring_detach(VBPUring *ur)
{
    if (!ur->ctx) {
        return;
    }
    /*
     * The context's thread may be inside our handlers right now (its
     * adaptive polling calls vbp_uring_poll_cb(), which reads the ring's
     * memory), and a handler removed from another thread is only marked
     * deleted.  Remove them in that thread, between two iterations of
     * its event loop: once this returns nothing of ours runs there, and
     * the ring may be freed.
     */
    if (qemu_get_current_aio_context() == ur->ctx) {
        vbp_uring_detach_bh(ur);
    } else {
        aio_wait_bh_oneshot(ur->ctx, vbp_uring_detach_bh, ur);
    }
}

static struct io_uring_sqe *vbp_uring_get_sqe(VBPUring *ur)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ur->ring);

    if (!sqe) {
        /* The SQ is full of queued entries: hand them over first */
        vbp_uring_submit(ur);
        sqe = io_uring_get_sqe(&ur->ring);
    }
    return sqe;
}

/* @req failed with @err before the kernel saw it; complete it soon */
static void vbp_uring_fail(VBPUringReq *req, int err)
{
    VBPUring *ur = req->ur;

    req->error = err;
    req->next_free = ur->failed;
    ur->failed = req;
    qemu_bh_schedule(ur->fail_bh);
}

/* Queue (again) what is left of @req */
static void vbp_uring_prep(VBPUringReq *req)
{
    VBPUring *ur = req->ur;
    struct io_uring_sqe *sqe = vbp_uring_get_sqe(ur);
    QEMUIOVector *qiov = req->done ? &req->rest : req->qiov;

    if (!sqe) {
        /*
         * The ring has as many SQEs as the pool has requests, but SQEs
         * made no-ops after a failed submission take room until the
         * kernel accepts a submission again.
         */
        vbp_uring_fail(req, ur->submit_error ? ur->submit_error : -EAGAIN);
        return;
    }
    switch (req->op) {
    case IORING_OP_READV:
        io_uring_prep_readv(sqe, req->fd, qiov->iov, qiov->niov,
                            req->offset + req->done);
        break;
    case IORING_OP_WRITEV:
        io_uring_prep_writev(sqe, req->fd, qiov->iov, qiov->niov,
                             req->offset + req->done);
        sqe->rw_flags = req->rw_flags;
        break;
    case IORING_OP_FSYNC:
        /*
         * No IOSQE_IO_DRAIN: a virtio flush must cover the writes the
         * guest saw complete before it sent the flush, and fdatasync()
         * covers every write the kernel completed before it.  Writes
         * still in flight need not be covered (the guest has not seen
         * them done); file-posix's flushes do not wait for them either.
         */
        io_uring_prep_fsync(sqe, req->fd, IORING_FSYNC_DATASYNC);
        break;
    case IORING_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, req->fd, req->mode, req->offset,
                                req->bytes);
        break;
    default:
        g_assert_not_reached();
    }
    io_uring_sqe_set_data(sqe, req);
    ur->queued++;
    URING_STAT_ADD(ur, sqes, 1);
}

static VBPUringReq *vbp_uring_req_get(VBPUring *ur, int fd, uint8_t op,
                                      VBPUringKind kind,
                                      BlockCompletionFunc *cb, void *opaque)
{
    VBPUringReq *req = ur->free;

    if (!req) {
        return NULL;
    }
    ur->free = req->next_free;
    req->fd = fd;
    req->op = op;
    req->kind = kind;
    req->cb = cb;
    req->opaque = opaque;
    req->done = 0;
    req->rw_flags = 0;
    req->error = 0;
    req->qiov = NULL;
    req->offset = 0;
    req->bytes = 0;
    ur->inflight++;
    return req;
}

bool vbp_uring_queue_rw(VBPUring *ur, int fd, bool is_write, bool fua,
                        int64_t offset, QEMUIOVector *qiov,
                        BlockCompletionFunc *cb, void *opaque)
{
    VBPUringReq *req = vbp_uring_req_get(ur, fd, is_write ? IORING_OP_WRITEV :
                                         IORING_OP_READV, is_write ?
                                         VBP_URING_WRITE : VBP_URING_READ,
                                         cb, opaque);

    if (!req) {
        return false;
    }
    req->offset = offset;
    req->qiov = qiov;
    /* What file-posix does for BDRV_REQ_FUA with aio=io_uring */
    req->rw_flags = is_write && fua ? RWF_DSYNC : 0;
    vbp_uring_prep(req);
    return true;
}

bool vbp_uring_queue_flush(VBPUring *ur, int fd, BlockCompletionFunc *cb,
                           void *opaque)
{
    VBPUringReq *req = vbp_uring_req_get(ur, fd, IORING_OP_FSYNC,
                                         VBP_URING_FLUSH, cb, opaque);

    if (!req) {
        return false;
    }
    vbp_uring_prep(req);
    return true;
}

bool vbp_uring_queue_fallocate(VBPUring *ur, int fd, VBPUringKind kind,
                               int mode, int64_t offset, int64_t bytes,
                               BlockCompletionFunc *cb, void *opaque)
{
    VBPUringReq *req = vbp_uring_req_get(ur, fd, IORING_OP_FALLOCATE, kind,
                                         cb, opaque);

    if (!req) {
        return false;
    }
    req->mode = mode;
    req->offset = offset;
    req->bytes = bytes;
    vbp_uring_prep(req);
    return true;
}

void vbp_uring_fail_next_submit(VBPUring *ur, int err)
{
    qatomic_set(&ur->fail_next, err);
}

void vbp_uring_short_next_submit(VBPUring *ur, unsigned max)
{
    qatomic_set(&ur->short_next, MIN(max, INT_MAX));
}

/*
 * What io_uring_submit() does, but the kernel is asked to consume at most
 * @max SQEs: the others stay in the SQ, visible to the kernel and not
 * consumed, as after a short submission (the kernel ran out of memory
 * for one, or stopped at an SQE it could not prepare).
 */
static int vbp_uring_submit_at_most(VBPUring *ur, unsigned max)
{
    struct io_uring_sq *sq = &ur->ring.sq;

    io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
    sq->sqe_head = sq->sqe_tail;
    return io_uring_enter(ur->ring.ring_fd, max, 0, 0, NULL);
}

/*
 * The kernel refused a submission with @err: every SQE it has not
 * consumed becomes a no-op (so that a later submission cannot start a
 * request that has been completed), and its request fails with @err,
 * to be completed through the normal error path (werror/rerror).
 */
static void vbp_uring_fail_queued(VBPUring *ur, int err)
{
    struct io_uring_sq *sq = &ur->ring.sq;
    unsigned mask = *sq->kring_mask;
    unsigned head = io_uring_smp_load_acquire(sq->khead);

    for (unsigned i = head; i != sq->sqe_tail; i++) {
        struct io_uring_sqe *sqe = &sq->sqes[i & mask];
        VBPUringReq *req = (VBPUringReq *)(uintptr_t)sqe->user_data;

        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, NULL);
        if (req) {
            vbp_uring_fail(req, err);
        }
    }
}

unsigned vbp_uring_submit(VBPUring *ur)
{
    unsigned n = ur->queued;
    int ret, max;

    if (!n) {
        return 0;
    }
    ret = qatomic_xchg(&ur->fail_next, 0);
    max = qatomic_read(&ur->short_next);
    if (!ret && max >= 0 && !ur->sqpoll) {
        qatomic_set(&ur->short_next, -1);
        ret = vbp_uring_submit_at_most(ur, max);
    } else if (!ret) {
        do {
            ret = io_uring_submit(&ur->ring);
        } while (ret == -EINTR);
    }
    URING_STAT_ADD(ur, submit_calls, 1);
    trace_virtio_blk_poll_uring_submit(ur, n, ret);
    /*
     * With SQPOLL liburing enters the kernel only to wake the SQ thread;
     * submit_calls then counts submissions, not system calls.
     */
    ur->busy = false;
    if (ret >= 0) {
        unsigned done = MIN((unsigned)ret, ur->queued);

        ur->queued -= done;
        ur->in_kernel += done;
        ur->submit_error = 0;
        if (!ur->queued || ur->sqpoll) {
            return n;
        }
        /*
         * A short submission: the kernel took the first SQEs and left the
         * others in the SQ.  Nothing would submit them again (a sleeping
         * queue makes no pass, the stop of a queue waits for them), and
         * the SQEs taken may all be no-ops of a failed submission, whose
         * completions complete nothing: the reap of the next CQE submits
         * them.  If there is none to come, it is as if the kernel had
         * answered -EAGAIN.
         */
        if (ur->in_kernel) {
            ur->busy = true;
            trace_virtio_blk_poll_uring_busy(ur, ur->queued, ur->in_kernel);
            return n;
        }
        ret = -EAGAIN;
    } else if (ur->sqpoll ||
               ((ret == -EAGAIN || ret == -EBUSY) && ur->in_kernel)) {
        /*
         * -EAGAIN/-EBUSY: the kernel is short of resources or the CQ is
         * full.  While SQEs are in the kernel, the others stay in the SQ
         * and go with the next submission, which the reap of the next CQE
         * makes.  Otherwise nothing would submit them again: like any
         * other error, they fail.  With SQPOLL the kernel thread consumes
         * the SQ by itself, so the SQEs are left to it.
         */
        ur->busy = !ur->sqpoll;
        return n;
    }
    ur->submit_error = ret;
    vbp_uring_fail_queued(ur, ret);
    /* The no-ops stay queued: they go with the next submission */
    return n;
}

/* @req is finished with @ret: 0 or a negative errno */
static void vbp_uring_complete(VBPUringReq *req, int ret)
{
    VBPUring *ur = req->ur;
    BlockCompletionFunc *cb = req->cb;
    void *opaque = req->opaque;
    bool taken;

    taken = ur->ops->before_complete(ur->ops_opaque, req->kind, req->offset,
                                     req->qiov ? req->qiov->size : req->bytes,
                                     ret, cb, opaque);
    if (req->qiov && req->done) {
        qemu_iovec_destroy(&req->rest);
    }
    req->next_free = ur->free;
    ur->free = req;
    ur->inflight--;
    URING_STAT_ADD(ur, completions, 1);
    if (!taken) {
        cb(opaque, ret);
    }
    ur->ops->after_complete(ur->ops_opaque);
}

/* A short transfer: queue what is left, or finish the request */
static void vbp_uring_short(VBPUringReq *req, int res)
{
    if (req->op == IORING_OP_READV && res == 0) {
        /* End of file: the rest reads as zeroes, as file-posix does */
        qemu_iovec_memset(req->qiov, req->done, 0, req->qiov->size - req->done);
        vbp_uring_complete(req, 0);
        return;
    }
    if (req->op == IORING_OP_WRITEV && res == 0) {
        vbp_uring_complete(req, -ENOSPC);
        return;
    }
    if (req->done) {
        qemu_iovec_destroy(&req->rest);
    }
    req->done += res;
    qemu_iovec_init(&req->rest, req->qiov->niov);
    qemu_iovec_concat(&req->rest, req->qiov, req->done,
                      req->qiov->size - req->done);
    URING_STAT_ADD(req->ur, resubmits, 1);
    vbp_uring_prep(req);
}

unsigned vbp_uring_reap(VBPUring *ur, bool early)
{
    struct io_uring_cqe *cqe;
    uint64_t resubmits = ur->stats.resubmits;
    unsigned n = 0;

    while (ur->failed) {
        VBPUringReq *req = ur->failed;

        ur->failed = req->next_free;
        vbp_uring_complete(req, req->error);
        n++;
    }
    while (!io_uring_peek_cqe(&ur->ring, &cqe)) {
        VBPUringReq *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&ur->ring, cqe);
        ur->in_kernel -= !!ur->in_kernel;
        if (!req) {
            /* An SQE made a no-op by vbp_uring_fail_queued() */
            continue;
        }
        if (res == -EAGAIN || res == -EINTR) {
            URING_STAT_ADD(ur, resubmits, 1);
            vbp_uring_prep(req);
            continue;
        }
        if (res < 0 || !req->qiov) {
            vbp_uring_complete(req, MIN(res, 0));
        } else if (req->done + res < req->qiov->size) {
            vbp_uring_short(req, res);
            continue;
        } else {
            vbp_uring_complete(req, 0);
        }
        n++;
    }
    if (early && n) {
        URING_STAT_ADD(ur, early_completions, n);
    }
    /*
     * Resubmissions, and SQEs that the kernel was too busy to take: they
     * go now.  Others may wait for the caller's next submission (the
     * poller batches them across passes).
     */
    if (ur->stats.resubmits != resubmits || ur->busy) {
        vbp_uring_submit(ur);
    }
    return n;
}

unsigned vbp_uring_queued(VBPUring *ur)
{
    return ur->queued;
}

unsigned vbp_uring_inflight(VBPUring *ur)
{
    return ur->inflight;
}

void vbp_uring_get_stats(VBPUring *ur, VBPUringStats *stats)
{
    stats->sqes = qatomic_read(&ur->stats.sqes);
    stats->submit_calls = qatomic_read(&ur->stats.submit_calls);
    stats->completions = qatomic_read(&ur->stats.completions);
    stats->early_completions = qatomic_read(&ur->stats.early_completions);
    stats->resubmits = qatomic_read(&ur->stats.resubmits);
}

#else /* !CONFIG_LINUX_IO_URING */

/* Without io_uring every request takes the block layer */
VBPUring *vbp_uring_new(unsigned entries, bool sqpoll,
                        const VBPUringOps *ops, void *opaque, Error **errp)
{
    error_setg(errp, "QEMU was built without io_uring support");
    return NULL;
}

void vbp_uring_free(VBPUring *ur)
{
}

void vbp_uring_attach(VBPUring *ur, AioContext *ctx)
{
    g_assert_not_reached();
}

void vbp_uring_detach(VBPUring *ur)
{
    g_assert_not_reached();
}

bool vbp_uring_queue_rw(VBPUring *ur, int fd, bool is_write, bool fua,
                        int64_t offset, QEMUIOVector *qiov,
                        BlockCompletionFunc *cb, void *opaque)
{
    g_assert_not_reached();
}

bool vbp_uring_queue_flush(VBPUring *ur, int fd, BlockCompletionFunc *cb,
                           void *opaque)
{
    g_assert_not_reached();
}

bool vbp_uring_queue_fallocate(VBPUring *ur, int fd, VBPUringKind kind,
                               int mode, int64_t offset, int64_t bytes,
                               BlockCompletionFunc *cb, void *opaque)
{
    g_assert_not_reached();
}

unsigned vbp_uring_submit(VBPUring *ur)
{
    g_assert_not_reached();
}

void vbp_uring_fail_next_submit(VBPUring *ur, int err)
{
    g_assert_not_reached();
}

void vbp_uring_short_next_submit(VBPUring *ur, unsigned max)
{
    g_assert_not_reached();
}

unsigned vbp_uring_reap(VBPUring *ur, bool early)
{
    g_assert_not_reached();
}

unsigned vbp_uring_queued(VBPUring *ur)
{
    g_assert_not_reached();
}

unsigned vbp_uring_inflight(VBPUring *ur)
{
    g_assert_not_reached();
}

void vbp_uring_get_stats(VBPUring *ur, VBPUringStats *stats)
{
    g_assert_not_reached();
}

#endif /* CONFIG_LINUX_IO_URING */
