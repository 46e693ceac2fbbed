/*
 * virtio-blk-poll PCI bindings
 *
 * Copyright (c) 2026 The virtio-blk-poll developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The same PCI identity and properties as virtio-blk-pci, so that the
 * stock guest driver binds and a management tool can switch a disk to
 * this device by changing nothing but the driver name.
 */

#include "qemu/osdep.h"

#include "hw/qdev-properties.h"
#include "hw/virtio/virtio-blk-poll.h"
#include "hw/virtio/virtio-pci.h"
#include "qapi/error.h"
#include "qemu/module.h"
#include "qom/object.h"

typedef struct VirtIOBlkPollPCI VirtIOBlkPollPCI;

#define TYPE_VIRTIO_BLK_POLL_PCI "virtio-blk-poll-pci-base"
DECLARE_INSTANCE_CHECKER(VirtIOBlkPollPCI, VIRTIO_BLK_POLL_PCI,
                         TYPE_VIRTIO_BLK_POLL_PCI)

struct VirtIOBlkPollPCI {
    VirtIOPCIProxy parent_obj;
    VirtIOBlockPoll vdev;
};

/* Those of virtio-blk-pci, with the same defaults */
static const Property virtio_blk_poll_pci_properties[] = {
    DEFINE_PROP_UINT32("class", VirtIOPCIProxy, class_code, 0),
    DEFINE_PROP_BIT("ioeventfd", VirtIOPCIProxy, flags,
                    VIRTIO_PCI_FLAG_USE_IOEVENTFD_BIT, true),
    DEFINE_PROP_UINT32("vectors", VirtIOPCIProxy, nvectors,
                       DEV_NVECTORS_UNSPECIFIED),
};

static void virtio_blk_poll_pci_realize(VirtIOPCIProxy *vpci_dev,
                                        Error **errp)
{
    VirtIOBlkPollPCI *dev = VIRTIO_BLK_POLL_PCI(vpci_dev);
    DeviceState *vdev = DEVICE(&dev->vdev);
    VirtIOBlkConf *conf = &dev->vdev.parent_obj.conf;

    if (conf->num_queues == VIRTIO_BLK_AUTO_NUM_QUEUES) {
        conf->num_queues = virtio_pci_optimal_num_queues(0);
    }

    if (vpci_dev->nvectors == DEV_NVECTORS_UNSPECIFIED) {
        vpci_dev->nvectors = conf->num_queues + 1;
    }

    qdev_realize(vdev, BUS(&vpci_dev->bus), errp);
}

static void virtio_blk_poll_pci_class_init(ObjectClass *klass,
                                           const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioPCIClass *k = VIRTIO_PCI_CLASS(klass);
    PCIDeviceClass *pcidev_k = PCI_DEVICE_CLASS(klass);

    set_bit(DEVICE_CATEGORY_STORAGE, dc->categories);
    dc->desc = "virtio-blk disk served by polling IOThreads";
    device_class_set_props(dc, virtio_blk_poll_pci_properties);
    k->realize = virtio_blk_poll_pci_realize;
    pcidev_k->vendor_id = PCI_VENDOR_ID_REDHAT_QUMRANET;
    pcidev_k->device_id = PCI_DEVICE_ID_VIRTIO_BLOCK;
    pcidev_k->revision = VIRTIO_PCI_ABI_VERSION;
    pcidev_k->class_id = PCI_CLASS_STORAGE_SCSI;
}

static void virtio_blk_poll_pci_instance_init(Object *obj)
{
    VirtIOBlkPollPCI *dev = VIRTIO_BLK_POLL_PCI(obj);

    virtio_instance_init_common(obj, &dev->vdev, sizeof(dev->vdev),
                                TYPE_VIRTIO_BLK_POLL);
    object_property_add_alias(obj, "bootindex", OBJECT(&dev->vdev),
                              "bootindex");
}

static const VirtioPCIDeviceTypeInfo virtio_blk_poll_pci_info = {
    .base_name              = TYPE_VIRTIO_BLK_POLL_PCI,
    .generic_name           = "virtio-blk-poll-pci",
    .transitional_name      = "virtio-blk-poll-pci-transitional",
    .non_transitional_name  = "virtio-blk-poll-pci-non-transitional",
    .instance_size = sizeof(VirtIOBlkPollPCI),
    .instance_init = virtio_blk_poll_pci_instance_init,
    .class_init    = virtio_blk_poll_pci_class_init,
};

static void virtio_blk_poll_pci_register(void)
{
    virtio_pci_types_register(&virtio_blk_poll_pci_info);
}

type_init(virtio_blk_poll_pci_register)
