package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/katafs/katafs/fs"
	"github.com/katafs/katafs/metastore"
	"github.com/katafs/katafs/sandbox"
)

func runMount(args []string) error {
	s, fl, err := parseFlags("mount", args)
	if err != nil {
		return err
	}
	mnt := "/kata"
	if fl.NArg() > 1 {
		return fmt.Errorf("one mount point, got %v", fl.Args())
	} else if fl.NArg() == 1 {
		mnt = fl.Arg(0)
	}
	log := logrus.NewEntry(logrus.StandardLogger())
	if err := os.MkdirAll(s.StateDir, 0o700); err != nil {
		return err
	}
	unlock, err := lockStateDir(s.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := prepareMountpoint(mnt); err != nil {
		return err
	}
	store, closeStore, err := metastore.Open(s.StateDir, s.Store)
	if err != nil {
		return err
	}
	defer closeStore()
	opts := s.managerOptions()
	opts.Store = store
	mgr, err := sandbox.NewManager(opts)
	if err != nil {
		return err
	}
	mgr.Recover(context.Background())
	srv, err := fs.Mount(context.Background(), mnt, backend{mgr}, fs.Options{Log: log, Debug: s.FuseDebug})
	if err != nil {
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	log.WithFields(logrus.Fields{"mountpoint": mnt, "state_dir": s.StateDir}).Info("katafs serving")

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()
	select {
	case sig := <-sigs:
		log.Infof("%v: unmounting, sandboxes keep running", sig)
		if err := srv.Unmount(); err != nil {
			log.WithError(err).Warn("unmount busy, detaching lazily")
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		<-served
	case <-served:
		log.Info("unmounted from outside")
	}
	mgr.ReleaseAll(context.Background())
	log.Info("katafs stopped")
	return nil
}

// lockStateDir makes sure one daemon owns a state directory at a time.
func lockStateDir(dir string) (func(), error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another katafs (lock %s)", dir, path)
		}
		return nil, err
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { f.Close() }, nil
}

// prepareMountpoint creates the mount point, and detaches the dead mount
// a killed daemon left there (stat then fails with ENOTCONN).
func prepareMountpoint(mnt string) error {
	_, err := os.Stat(mnt)
	if errors.Is(err, syscall.ENOTCONN) {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("%s: stale mount of a dead daemon, and detaching it failed: %v", mnt, err)
		}
		_, err = os.Stat(mnt)
	}
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(mnt, 0o755)
	}
	return err
}
