// Package hotplug will attach block devices and NICs to running sandboxes:
// QMP device plumbing (blockdev-add, device_add on the pcie-root-ports qmp
// reserves, getfd + netdev_add for taps) plus host netlink. It is empty
// until the hotplug issue; the root ports are already reserved at launch.
package hotplug
