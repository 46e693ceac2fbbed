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
#include "hw/virtio/virtio-blk-poll-uring.h"

#ifdef CONFIG_LINUX_IO_URING
#include <liburing.h>

typedef struct VBPUringReq {
    VBPUring *ur;
    BlockCompletionFunc *cb;
    void *opaque;
    int fd;
    uint8_t op;                 /* IORING_OP_READV/WRITEV/FSYNC/FALLOCATE */
    VBPUringKind kind;
    int mode;                   /* of fallocate */
    int64_t offset;             /* of the whole request */
    int64_t bytes;              /* of a fallocate */
    QEMUIOVector *qiov;         /* the caller's, whole request */
    size_t done;                /* bytes transferred so far */
    QEMUIOVector rest;          /* the part still to do, after a short one */
    struct VBPUringReq *next_free;
} VBPUringReq;

/* Owned by the thread of @ctx while attached, by the BQL holder otherwise */
struct VBPUring {
    struct io_uring ring;
    AioContext *ctx;
    unsigned entries;
    unsigned inflight;          /* queued or in the kernel */
    unsigned queued;            /* SQEs not yet submitted */
    VBPUringReq *reqs;          /* the pool, @entries of them */
    VBPUringReq *free;
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

static bool vbp_uring_poll_cb(void *opaque)
{
    VBPUring *ur = opaque;

    return io_uring_cq_ready(&ur->ring);
}

void vbp_uring_attach(VBPUring *ur, AioContext *ctx)
{
    ur->ctx = ctx;
    aio_set_fd_handler(ctx, ur->ring.ring_fd, vbp_uring_completion_cb, NULL,
                       vbp_uring_poll_cb, vbp_uring_completion_cb, ur);
}

void vbp_uring_detach(VBPUring *ur)
{
    if (ur->ctx) {
        aio_set_fd_handler(ur->ctx, ur->ring.ring_fd, NULL, NULL, NULL, NULL,
                           NULL);
        ur->ctx = NULL;
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

/* Queue (again) what is left of @req */
static void vbp_uring_prep(VBPUringReq *req)
{
    VBPUring *ur = req->ur;
    struct io_uring_sqe *sqe = vbp_uring_get_sqe(ur);
    QEMUIOVector *qiov = req->done ? &req->rest : req->qiov;

    /* The ring has as many SQEs as the pool has requests */
    assert(sqe);
    switch (req->op) {
    case IORING_OP_READV:
        io_uring_prep_readv(sqe, req->fd, qiov->iov, qiov->niov,
                            req->offset + req->done);
        break;
    case IORING_OP_WRITEV:
        io_uring_prep_writev(sqe, req->fd, qiov->iov, qiov->niov,
                             req->offset + req->done);
        break;
    case IORING_OP_FSYNC:
        io_uring_prep_fsync(sqe, req->fd, IORING_FSYNC_DATASYNC);
        /* only after everything queued before it has completed */
        sqe->flags |= IOSQE_IO_DRAIN;
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
    req->qiov = NULL;
    req->offset = 0;
    req->bytes = 0;
    ur->inflight++;
    return req;
}

bool vbp_uring_queue_rw(VBPUring *ur, int fd, bool is_write, int64_t offset,
                        QEMUIOVector *qiov, BlockCompletionFunc *cb,
                        void *opaque)
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

unsigned vbp_uring_submit(VBPUring *ur)
{
    unsigned n = ur->queued;
    int ret;

    if (!n) {
        return 0;
    }
    do {
        ret = io_uring_submit(&ur->ring);
    } while (ret == -EINTR);
    URING_STAT_ADD(ur, submit_calls, 1);
    /*
     * With SQPOLL liburing enters the kernel only to wake the SQ thread;
     * submit_calls then counts submissions, not system calls.
     */
    /*
     * -EAGAIN/-EBUSY: the kernel is short of resources or the CQ is full.
     * The SQEs stay in the SQ and go with the next submission, which the
     * next reap makes room for.
     */
    if (ret > 0) {
        ur->queued -= MIN((unsigned)ret, ur->queued);
    }
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
    unsigned n = 0;

    while (!io_uring_peek_cqe(&ur->ring, &cqe)) {
        VBPUringReq *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&ur->ring, cqe);
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
    /* Resubmissions */
    vbp_uring_submit(ur);
    return n;
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

bool vbp_uring_queue_rw(VBPUring *ur, int fd, bool is_write, int64_t offset,
                        QEMUIOVector *qiov, BlockCompletionFunc *cb,
                        void *opaque)
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

unsigned vbp_uring_reap(VBPUring *ur, bool early)
{
    g_assert_not_reached();
}

void vbp_uring_get_stats(VBPUring *ur, VBPUringStats *stats)
{
    g_assert_not_reached();
}

#endif /* CONFIG_LINUX_IO_URING */
