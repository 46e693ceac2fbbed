/*
 * virtio-blk-poll: per-virtqueue io_uring for the raw fast path
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_VIRTIO_BLK_POLL_URING_H
#define QEMU_VIRTIO_BLK_POLL_URING_H

#include "block/aio.h"
#include "block/block-common.h"
#include "qemu/iov.h"

typedef struct VBPUring VBPUring;

#define VBP_URING_SQ_IDLE_MS 10

/* Counters; written by the owning thread only, read with relaxed atomics */
typedef struct VBPUringStats {
    uint64_t sqes;              /* requests submitted, resubmissions included */
    uint64_t submit_calls;      /* io_uring_enter() calls that submitted */
    uint64_t completions;       /* requests completed */
    uint64_t early_completions; /* completed in the pass that submitted them */
    uint64_t resubmits;         /* short transfers and -EAGAIN/-EINTR */
} VBPUringStats;

typedef enum VBPUringKind {
    VBP_URING_READ,
    VBP_URING_WRITE,
    VBP_URING_FLUSH,
    VBP_URING_WRITE_ZEROES,     /* fallocate(), see vbp_uring_queue_fallocate */
    VBP_URING_WRITE_ZEROES_UNMAP,
    VBP_URING_DISCARD,
} VBPUringKind;

/* What the ring's user learns of each finished request */
typedef struct VBPUringOps {
    /*
     * Before the request's own callback; @bytes is its whole length.
     * Returning true takes the request over: its callback is not called
     * (the user resubmitted it elsewhere and will complete it).
     */
    bool (*before_complete)(void *opaque, VBPUringKind kind, int64_t offset,
                            uint64_t bytes, int ret,
                            BlockCompletionFunc *cb, void *cb_opaque);
    /* After it */
    void (*after_complete)(void *opaque);
} VBPUringOps;

/*
 * A ring of @entries requests.  With @sqpoll a kernel thread polls its
 * submission queue, so that submitting needs no system call while that
 * thread is awake (it sleeps after VBP_URING_SQ_IDLE_MS without work).
 * Created and freed with the BQL; between
 * vbp_uring_attach() and vbp_uring_detach() every other call must come
 * from the thread of the AioContext it is attached to.
 */
VBPUring *vbp_uring_new(unsigned entries, bool sqpoll,
                        const VBPUringOps *ops, void *opaque, Error **errp);
void vbp_uring_free(VBPUring *ur);
void vbp_uring_attach(VBPUring *ur, AioContext *ctx);
/* With the BQL, or from the context's thread; waits for that thread */
void vbp_uring_detach(VBPUring *ur);

/*
 * Queue a read, write (with @fua: RWF_DSYNC, durable when it completes)
 * or flush (fdatasync: covers every write completed before it, not the
 * ones still in flight).  @cb(@opaque, ret) runs when it is done, with 0
 * or a negative errno, as for blk_aio_preadv(), never from inside this
 * call or vbp_uring_submit().  Reads past the end of a file are
 * completed with zeroes.  Return false, queuing nothing, if no slot is
 * free.  Nothing reaches the kernel before vbp_uring_submit().
 */
bool vbp_uring_queue_rw(VBPUring *ur, int fd, bool is_write, bool fua,
                        int64_t offset, QEMUIOVector *qiov,
                        BlockCompletionFunc *cb, void *opaque);
bool vbp_uring_queue_flush(VBPUring *ur, int fd, BlockCompletionFunc *cb,
                           void *opaque);
/* fallocate(@mode) of @bytes at @offset, as @kind (write zeroes, discard) */
bool vbp_uring_queue_fallocate(VBPUring *ur, int fd, VBPUringKind kind,
                               int mode, int64_t offset, int64_t bytes,
                               BlockCompletionFunc *cb, void *opaque);

/*
 * Hand everything queued to the kernel in one call; returns how many.
 * If the kernel refuses the submission, the queued requests fail with
 * its error (completed by the next reap, which is scheduled).
 */
unsigned vbp_uring_submit(VBPUring *ur);
/* Testing: the next submission fails with @err (negative errno) */
void vbp_uring_fail_next_submit(VBPUring *ur, int err);
/*
 * Testing: the kernel consumes at most @max SQEs of the next submission,
 * as if it had stopped short (not with SQPOLL)
 */
void vbp_uring_short_next_submit(VBPUring *ur, unsigned max);
/*
 * Complete what the kernel has finished.  @early marks completions reaped
 * right after their submission, for the counters.  Returns how many.
 */
unsigned vbp_uring_reap(VBPUring *ur, bool early);
/* SQEs queued but not yet submitted */
unsigned vbp_uring_queued(VBPUring *ur);
/* Requests queued or in the kernel */
unsigned vbp_uring_inflight(VBPUring *ur);
void vbp_uring_get_stats(VBPUring *ur, VBPUringStats *stats);

#endif
