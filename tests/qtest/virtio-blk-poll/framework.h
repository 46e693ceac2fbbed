/*
 * virtio-blk-poll qtests: their framework
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Booting a PC machine with one virtio-blk-poll-pci, building requests in
 * the rings as a guest driver does, reading the device's stats.
 */

#ifndef VIRTIO_BLK_POLL_TEST_FRAMEWORK_H
#define VIRTIO_BLK_POLL_TEST_FRAMEWORK_H

#include <sys/mount.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "standard-headers/linux/virtio_pci.h"
#include "libqos/libqos-pc.h"
#include "libqos/qgraph.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"

#define IMAGE_SIZE      (8 * 1024 * 1024)
#define TIMEOUT_US      (30 * 1000 * 1000)
#define DEV_SLOT        4
/* Request layout: header, data at DATA_OFS (page aligned), status after */
#define DATA_OFS        4096

extern const char *vbp_driver;
extern const char *vbp_iothread_opts;

typedef struct VbpTest {
    QOSState *qs;
    QTestState *qts;
    QVirtioPCIDevice *pdev;
    QVirtioDevice *dev;
    QVirtQueue *vq[2];
    int nvqs;
    char *img;
} VbpTest;

char *vbp_image_create(void);

VbpTest *vbp_boot_args(const char *blockdev_fmt, bool msix,
                       const char *devopts, int nvqs,
                       uint64_t drop_features);

VbpTest *vbp_boot(const char *devopts, int nvqs, uint64_t drop_features);

void vbp_setup_again(VbpTest *t, bool msix);

void vbp_shutdown(VbpTest *t);

uint32_t vbp_add_req_seg(VbpTest *t, QVirtQueue *vq, uint32_t type,
                         uint64_t sector, const void *data, size_t len,
                         int nseg, uint64_t *addr);

uint32_t vbp_add_req(VbpTest *t, QVirtQueue *vq, uint32_t type,
                     uint64_t sector, const void *data, size_t len,
                     uint64_t *addr);

uint8_t vbp_status(VbpTest *t, uint64_t addr, size_t len);

void vbp_publish(VbpTest *t, QVirtQueue *vq, uint32_t head);

void vbp_publish_n(VbpTest *t, QVirtQueue *vq, uint32_t head,
                   int i, int count);

uint16_t vbp_used_idx(VbpTest *t, QVirtQueue *vq);

void vbp_wait_used(VbpTest *t, QVirtQueue *vq, uint16_t idx);

QDict *vbp_stats(QTestState *qts, const char *id, int queue);

uint64_t vbp_stat(QTestState *qts, int queue, const char *name);

void vbp_write_read(VbpTest *t, QVirtQueue *vq, uint64_t sector,
                    uint8_t pattern, bool kick);

void vbp_assert_alive(VbpTest *t);

void vbp_reset_descs(QVirtQueue *vq);

void vbp_reads_at_once(VbpTest *t, QVirtQueue *vq, int n,
                       uint64_t stride, size_t len, uint64_t *addr);

char *vbp_stat_str(QTestState *qts, const char *name);

void vbp_assert_path(VbpTest *t, const char *expect);

uint8_t vbp_do(VbpTest *t, QVirtQueue *vq, uint32_t type,
               uint64_t sector, void *buf, size_t len, int nseg);

void vbp_host_read(const char *path, int64_t offset, void *buf,
                   size_t len);

/*
 * Writes of several sizes and segment counts land in the host file, byte
 * for byte, and read back; then a flush.
 */
typedef enum {
    PATH_FAST,          /* every request on the io_uring path */
    PATH_FALLBACK,      /* every request through the block layer */
    PATH_ANY,
} VbpPath;

void vbp_check_data(VbpTest *t, VbpPath path);

int64_t vbp_bitmap_count(VbpTest *t, const char *node_name);

VbpTest *vbp_boot_bitmap(const char *devopts);

/* The thread ids of process @pid (/proc/PID/task); the caller frees */
GArray *vbp_thread_ids(pid_t pid);

void vbp_register_polling_tests(void);
void vbp_register_coalescing_tests(void);
void vbp_register_fast_path_tests(void);
void vbp_register_hostile_tests(void);
void vbp_register_errors_tests(void);
void vbp_register_host_cost_tests(void);

#endif
