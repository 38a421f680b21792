package fs

import (
	"context"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"
)

// Options configures the tree and its mount.
type Options struct {
	// Log receives failed commands (fields sandbox, command, errno) and,
	// with Debug, the FUSE protocol trace. Nil: the logrus standard logger.
	Log *logrus.Entry
	// Debug logs every FUSE request and reply at debug level.
	Debug bool
	// ErrorsMax is how many lines each errors file keeps; 0 means 200.
	ErrorsMax int
	// AllowOther lets users other than the mounter use the tree.
	AllowOther bool
}

func (o Options) logger() *logrus.Entry {
	if o.Log != nil {
		return o.Log
	}
	return logrus.NewEntry(logrus.StandardLogger())
}

// NewRoot returns the root node of the tree, for go-fuse's own mount
// helpers; Mount uses it too.
func NewRoot(b Backend, opts Options) fusefs.InodeEmbedder {
	return newTree(b, opts).root()
}

func newTree(b Backend, opts Options) *tree {
	return &tree{
		backend:  b,
		log:      opts.logger(),
		errs:     newErrorLogs(opts.ErrorsMax),
		now:      time.Now,
		mounted:  time.Now(),
		stopping: make(chan struct{}),
	}
}

func (t *tree) root() fusefs.InodeEmbedder {
	return &tableDir{t: t, path: "", entries: rootEntries(t)}
}

// Mount serves the tree at mountpoint and returns once the kernel has the
// mount. When ctx is done it ends the reads waiting on streams (EIO), so
// that a `cat console` does not hold the mount, and unmounts; if the
// mount is still busy (a shell's working directory) it detaches it
// lazily. server.Wait returns once the kernel lets go of the tree, however
// the unmount came.
func Mount(ctx context.Context, mountpoint string, b Backend, opts Options) (*fuse.Server, error) {
	lg := opts.logger()
	w := lg.WriterLevel(logrus.DebugLevel)
	fo := &fusefs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      "katafs",
			Name:        "katafs",
			Debug:       opts.Debug,
			AllowOther:  opts.AllowOther,
			DirectMount: true,
			Logger:      log.New(w, "", 0),
		},
		Logger: log.New(w, "", 0),
		// Timeouts are set per node (tree.go); nil here means 0, not the
		// go-fuse default of one second.
	}
	t := newTree(b, opts)
	server, err := fusefs.Mount(mountpoint, t.root(), fo)
	if err != nil {
		w.Close()
		return nil, err
	}
	closeFuseOnExec(lg)
	served := make(chan struct{})
	go func() {
		server.Wait()
		close(served)
		w.Close()
	}()
	go func() {
		select {
		case <-ctx.Done():
			close(t.stopping)
			if err := server.Unmount(); err != nil {
				lg.WithError(err).WithField("mountpoint", mountpoint).Warn("unmount failed, detaching")
				if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
					lg.WithError(err).WithField("mountpoint", mountpoint).Error("detach")
				}
			}
		case <-served:
		}
	}()
	return server, nil
}

// closeFuseOnExec marks this process's /dev/fuse descriptors close-on-exec.
// go-fuse v2.12.1's direct mount opens /dev/fuse without O_CLOEXEC, so
// every process the daemon starts (QEMU, shells in tests) would inherit
// the FUSE connection and keep it open after the daemon dies: the mount
// then hangs its users instead of failing with ENOTCONN, and such a child
// blocked in the mount waits for itself forever.
func closeFuseOnExec(lg *logrus.Entry) {
	dir := "/proc/self/fd"
	fds, err := os.ReadDir(dir)
	if err != nil {
		lg.WithError(err).Warn("cannot mark /dev/fuse close-on-exec")
		return
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == "/dev/fuse" {
			syscall.CloseOnExec(fd)
		}
	}
}
