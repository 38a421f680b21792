// Package agent is the katafs agent protocol: the host client that
// katafs uses to drive a sandbox VM, and the guest side that runs as PID 1
// inside it.
//
// # Wire
//
// One byte stream joins host and guest: a virtio-serial port named
// PortName (QEMU exposes its host end as a unix socket) or, where the host
// has /dev/vhost-vsock, a vsock connection. yamux multiplexes that stream;
// the first yamux stream carries ttrpc (service katafs.agent.v1.AgentService,
// see proto/agent.proto). Every later stream the host opens is one stdio
// stream of one process: it starts with a header naming (container, exec
// id, stdin|stdout|stderr) and the guest's one-byte status (stdio.go). Keepalives are off on
// both ends: a paused VM must not look dead.
//
// The guest end of a virtio-serial port outlives host connections: when the
// host hangs up, guest reads return EOF at once and the port reports
// POLLHUP until a host connects again. The guest therefore runs one yamux
// session per host on the same fd (see Port and ServePort), and the host's
// Connect retries until the agent answers Check.
//
// EOF alone does not mark where one host ends and the next begins: a host
// that reconnects within milliseconds may show no EOF at all, or an EOF
// after its first bytes (virtio-console handles open/close messages in a
// work queue and data in the interrupt). So the guest also ends a session
// when
//   - the host closes its control stream (Client.Close does, and then waits
//     for the guest's FIN before hanging up: a goodbye), after which one
//     late hang-up is skipped if a host is connected again; and
//   - a second SYN for yamux stream 1 arrives: a yamux client opens stream
//     1 first and once, so that is a new host (sessionSplitter); its bytes
//     start the next session.
//
// Measured on TCG: reconnects after Close take 2-30 ms, after a killed
// host 2-7 ms.
//
// # Host side
//
// Connect, Client, Dialer (UnixDialer, VsockDialer). A Client is safe for
// concurrent use; Done is closed when its session dies.
//
// # Guest side
//
// Service implements the ttrpc service and is tested in-process. ServePort
// serves it on a Port. RunInit does the PID 1 duties (mounts, console,
// kernel modules, loopback, zombie reaping) and then serves on the
// virtio-serial port; it never returns and powers the VM off on a fatal
// error, printing the reason on the console first.
//
// # Containers
//
// Runtime (runtime_linux.go) runs each container under an exec server:
// the agent binary re-executed (IsContainerInit, RunContainerInit) as PID
// 1 of new pid, mount, uts and ipc namespaces, chrooted into the
// container's root (default: a tmpfs with the guest's busybox). It starts
// init and exec'd processes as its children on the agent's request over a
// socketpair (stdio fds passed with SCM_RIGHTS) and reports their exits.
// Output waits in the process's pipe (or pty) until a host stream is
// attached; a stream that dies keeps nothing back: the next attach gets
// the rest (outPump).
//
// A root on a block device (spec.Root.Path under /dev/) is mounted
// read-only by the exec server in the container's mount namespace, with
// an overlay (upper layer on a tmpfs) on top as the root (imageroot_linux.go);
// the mounts end with that namespace.
//
// # Devices and network
//
// The host hot-plugs disks and NICs over QMP; the agent waits for the
// guest to see them (Devices, blockdev_linux.go): a disk by its virtio-blk
// serial (WaitBlockDevice), a NIC by its MAC (AddInterface, which then
// names and configures it with netlink, netif_linux.go). Waiting is
// event-driven: subscribe to kernel uevents, scan (sysfs, the link list),
// and scan again on each uevent, with a slow poll as a backstop; never a
// fixed sleep. It first waits for the modules RunInit loads in the
// background (virtio_blk, virtio_net, overlay), as do roots on block
// devices. The wait ends at the request's deadline (ttrpc carries it),
// at most maxDeviceWait without one, as NotFound.
//
// # Locks
//
// Each type has at most one mutex and no method holds it while calling
// another package, so there is no lock order to keep. Reaper.mu is held
// across wait4 and across Spawn's start function on purpose (see reaper).
//
// # Errors
//
// Returned errors are wrapped with the step that failed ("agent: connect:
// ..."). Errors from the agent keep their ttrpc status, so callers can use
// status.Code from google.golang.org/grpc/status, or IsNotFound,
// IsAlreadyExists, IsFailedPrecondition and IsInvalidArgument. ErrVsockUnavailable is the
// one sentinel: Connect does not retry it.
package agent
