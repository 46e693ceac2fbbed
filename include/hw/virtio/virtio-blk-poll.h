/*
 * virtio-blk-poll: virtio-blk with virtqueues served by polling IOThreads
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_VIRTIO_BLK_POLL_H
#define QEMU_VIRTIO_BLK_POLL_H

#include "hw/virtio/virtio-blk.h"
#include "qom/object.h"

#define TYPE_VIRTIO_BLK_POLL "virtio-blk-poll-device"
OBJECT_DECLARE_TYPE(VirtIOBlockPoll, VirtIOBlockPollClass, VIRTIO_BLK_POLL)

/* Default for the poll-idle-ns property */
#define VIRTIO_BLK_POLL_DEFAULT_IDLE_NS (200 * SCALE_US)
/* Upper bound of poll-idle-ns; busy-poll=on polls for ever */
#define VIRTIO_BLK_POLL_MAX_IDLE_NS     NANOSECONDS_PER_SECOND
/* Default and bound of poll-doze-ns (a guest that polls: no kicks) */
#define VIRTIO_BLK_POLL_DEFAULT_DOZE_NS (10 * SCALE_MS)
#define VIRTIO_BLK_POLL_MAX_DOZE_NS     (60 * NANOSECONDS_PER_SECOND)
/* Default for the batch-max property */
#define VIRTIO_BLK_POLL_DEFAULT_BATCH   64
/* Defaults and bounds of the coalesce-max and coalesce-max-ns properties */
#define VIRTIO_BLK_POLL_DEFAULT_COALESCE     16
#define VIRTIO_BLK_POLL_DEFAULT_COALESCE_NS  (500 * SCALE_US)
#define VIRTIO_BLK_POLL_MIN_COALESCE_NS      SCALE_US
#define VIRTIO_BLK_POLL_MAX_COALESCE_NS      NANOSECONDS_PER_SECOND

/* Defaults and bounds of the uring-batch and uring-batch-ns properties */
#define VIRTIO_BLK_POLL_DEFAULT_URING_BATCH     8
#define VIRTIO_BLK_POLL_DEFAULT_URING_BATCH_NS  (100 * SCALE_US)
#define VIRTIO_BLK_POLL_MAX_URING_BATCH_NS      (10 * SCALE_MS)

typedef struct VirtIOBlockPollQueue VirtIOBlockPollQueue;

/* Why requests take the block layer rather than the raw fast path */
typedef enum VBPFastReason {
    VBP_FAST_OK,                /* they do not: io_uring */
    VBP_FAST_NOT_STARTED,       /* no decision yet */
    VBP_FAST_DISABLED,          /* fast-path=off */
    VBP_FAST_NO_URING,          /* io_uring unavailable (uring_error) */
    VBP_FAST_NO_MEDIUM,
    VBP_FAST_PROTOCOL,          /* rbd, nbd, ...: no file descriptor */
    VBP_FAST_NOT_RAW,           /* a format other than raw */
    VBP_FAST_RAW_OFFSET,        /* raw with offset or size */
    VBP_FAST_NOT_FILE,          /* raw over something else than a file */
    VBP_FAST_THROTTLE,          /* I/O throttling */
    VBP_FAST_INACTIVE,          /* image inactive (migration) */
    VBP_FAST_ZONED,             /* zoned device */
    VBP_FAST_DETECT_ZEROES,     /* detect-zeroes */
    VBP_FAST_SHARED,            /* another user: block job, export, ... */
    VBP_FAST__MAX,
} VBPFastReason;

/*
 * The raw fast path, decided with the BQL whenever the queues are
 * (re)attached, i.e. after every drained section, and when an inactive
 * image becomes active again; read by the IOThreads.  @fd is -1 while
 * requests must take the block layer, and @reason says why; the other
 * fields are valid while @fd >= 0 (vbp_fast_path_begin()).
 */
typedef struct VBPFastPath {
    int fd;
    bool write;                 /* writes too, not only reads */
    bool direct;                /* O_DIRECT: alignment matters */
    bool regular;               /* a regular file, not a block device */
    bool unmap;                 /* discard=unmap on both nodes */
    uint32_t discard_align;     /* discards skip unaligned head and tail */
    bool no_flush;              /* cache.no-flush on a node: no FUA */
    bool flush_noop;            /* cache.no-flush on the file node */
    uint32_t align;             /* offset and length alignment */
    size_t mem_align;           /* buffer alignment */
    BlockDriverState *bs;       /* the raw node, or the file node alone */
    BlockDriverState *file;     /* the file or host_device node */
    VBPFastReason reason;
    bool recheck_pending;       /* a new decision is scheduled */
    int64_t recheck_ns;         /* when a shared image was last looked at */
} VBPFastPath;

struct VirtIOBlockPoll {
    VirtIOBlock parent_obj;

    /* Properties */
    uint64_t poll_idle_ns;      /* idle time before a queue goes to sleep */
    bool busy_poll;             /* never sleep */
    bool poll_adaptive;         /* window from the guest's pace */
    bool poll_hybrid;           /* lone requests: sleep until one is due */
    uint64_t poll_doze_ns;      /* guest polls: look on a timer this long */
    uint32_t batch_max;         /* requests taken from the ring per pass */
    char *poll_cpus;            /* host CPUs for the serving IOThreads */
    bool fast_path;             /* io_uring path for raw images allowed */
    bool uring_sqpoll;          /* kernel SQ polling thread per ring */
    uint32_t uring_batch;       /* SQEs held for one submission, at most */
    uint64_t uring_batch_ns;    /* longest an SQE waits for its submission */
    bool coalesce;              /* hold completion interrupts */
    uint32_t coalesce_max;      /* most completions per interrupt */
    uint64_t coalesce_max_ns;   /* longest a completion is held */
    uint64_t coalesce_idle_ns;  /* fixed idle window, 0: adaptive */
    bool drain_during_stop;     /* testing: x-drain-during-stop */
    bool iothread_poll;         /* measuring: x-iothread-poll */

    /* The raw fast path, see VBPFastPath */
    VBPFastPath fast;
    /* The BlockBackend's throttle state, set or cleared at any time */
    ThrottleState **throttle_state;
    char *uring_error;          /* why io_uring cannot be used, if so */

    /* IOThread created for the device when the user named none */
    IOThread *own_iothread;
    /* One per virtqueue, from realize to unrealize */
    VirtIOBlockPollQueue *queues;
};

struct VirtIOBlockPollClass {
    VirtIOBlkClass parent_class;

    DeviceRealize parent_realize;
    DeviceUnrealize parent_unrealize;
};

#endif
