package hotplug

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbeFormat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"qcow2", append([]byte("QFI\xfb\x00\x00\x00\x03"), make([]byte, 100)...), FormatQcow2},
		{"raw", make([]byte, 4096), FormatRaw},
		{"empty", nil, FormatRaw},
		{"short", []byte("QF"), FormatRaw},
		{"near-magic", []byte("QFI\xfa"), FormatRaw},
	} {
		got, err := ProbeFormat(writeFile(t, tc.name, tc.content))
		if err != nil || got != tc.want {
			t.Errorf("%s: ProbeFormat = %q, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := ProbeFormat("/nonexistent/x.img"); !errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v, want ErrInvalid", err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAddBlockSequence(t *testing.T) {
	f := newFake()
	ports := NewPorts([]string{"rp0", "rp1"})
	img := writeFile(t, "a.img", append([]byte("QFI\xfb"), make([]byte, 508)...))
	b := &Block{ID: "vdb", Path: img, ReadOnly: true}
	if err := AddBlock(ctxT(t), f, ports, b); err != nil {
		t.Fatal(err)
	}
	want := `blockdev-add {"driver":"qcow2","file":{"driver":"file","filename":"` + img + `"},"node-name":"drv-vdb","read-only":true}
device_add {"bus":"rp0","drive":"drv-vdb","driver":"virtio-blk-pci","id":"vdb","serial":"vdb"}`
	if got := f.callsString(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	if b.Port != "rp0" || b.Format != FormatQcow2 {
		t.Errorf("filled Port %q Format %q", b.Port, b.Format)
	}

	f.reset()
	if err := RemoveBlock(ctxT(t), f, ports, b); err != nil {
		t.Fatal(err)
	}
	want = `device_del {"id":"vdb"}
blockdev-del {"node-name":"drv-vdb"}`
	if got := f.callsString(); got != want {
		t.Errorf("remove commands:\n%s\nwant:\n%s", got, want)
	}
	f.empty(t)
	if ports.InUse() != 0 {
		t.Errorf("port not freed")
	}
}

func TestAddBlockRollback(t *testing.T) {
	img := writeFile(t, "a.img", make([]byte, 512))
	for _, tc := range []struct {
		fail string
		want []string
	}{
		{"blockdev-add", []string{"blockdev-add"}},
		{"device_add", []string{"blockdev-add", "device_add", "blockdev-del"}},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			f := newFake()
			f.fail[tc.fail] = errors.New("qmp " + tc.fail + ": GenericError: boom")
			ports := NewPorts([]string{"rp0"})
			b := &Block{ID: "vdb", Path: img}
			err := AddBlock(ctxT(t), f, ports, b)
			if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), tc.fail) {
				t.Fatalf("AddBlock: %v", err)
			}
			if got := f.seq(); !slices.Equal(got, tc.want) {
				t.Errorf("commands %v, want %v", got, tc.want)
			}
			f.empty(t)
			if ports.InUse() != 0 || b.Port != "" {
				t.Errorf("port not given back (%q)", b.Port)
			}
		})
	}
}

// An add interrupted between two steps undoes what it did and reports the
// context's error.
func TestAddBlockInterrupted(t *testing.T) {
	img := writeFile(t, "a.img", make([]byte, 512))
	f := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.onCall = func(cmd string) {
		if cmd == "blockdev-add" {
			cancel()
		}
	}
	ports := NewPorts([]string{"rp0"})
	err := AddBlock(ctx, f, ports, &Block{ID: "vdb", Path: img})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AddBlock: %v, want context.Canceled", err)
	}
	if got, want := f.seq(), []string{"blockdev-add", "blockdev-del"}; !slices.Equal(got, want) {
		t.Errorf("commands %v, want %v", got, want)
	}
	f.empty(t)
	if ports.InUse() != 0 {
		t.Error("port kept")
	}
}

func TestAddBlockErrors(t *testing.T) {
	img := writeFile(t, "a.img", make([]byte, 512))
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		b    Block
		want error
		msg  string
	}{
		{"missing", Block{ID: "vdb", Path: "/nonexistent/a.img"}, ErrInvalid, "does not exist"},
		{"directory", Block{ID: "vdb", Path: dir}, ErrInvalid, "is a directory"},
		{"relative", Block{ID: "vdb", Path: "a.img"}, ErrInvalid, "not absolute"},
		{"no path", Block{ID: "vdb"}, ErrInvalid, "no image"},
		{"device node", Block{ID: "vdb", Path: "/dev/null"}, ErrInvalid, "not a regular file"},
		{"bad id", Block{ID: "1x", Path: img}, ErrInvalid, "id"},
		{"id with comma", Block{ID: "a,b", Path: img}, ErrInvalid, "id"},
		{"long id", Block{ID: strings.Repeat("a", 21), Path: img}, ErrInvalid, "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			ports := NewPorts([]string{"rp0"})
			b := tc.b
			err := AddBlock(ctxT(t), f, ports, &b)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("AddBlock: %v, want %v with %q", err, tc.want, tc.msg)
			}
			if len(f.seq()) != 0 || ports.InUse() != 0 {
				t.Errorf("commands %v, ports used %d", f.seq(), ports.InUse())
			}
		})
	}

	t.Run("no space", func(t *testing.T) {
		f := newFake()
		ports := NewPorts([]string{"rp0"})
		if err := AddBlock(ctxT(t), f, ports, &Block{ID: "a", Path: img, ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
		f.reset()
		if err := AddBlock(ctxT(t), f, ports, &Block{ID: "b", Path: img, ReadOnly: true}); !errors.Is(err, ErrNoSpace) {
			t.Errorf("AddBlock: %v, want ErrNoSpace", err)
		}
		if len(f.seq()) != 0 {
			t.Errorf("commands %v", f.seq())
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		f := newFake()
		ports := NewPorts([]string{"rp0", "rp1"})
		if err := AddBlock(ctxT(t), f, ports, &Block{ID: "a", Path: img, ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
		if err := AddBlock(ctxT(t), f, ports, &Block{ID: "a", Path: img, ReadOnly: true}); !errors.Is(err, ErrExists) {
			t.Errorf("AddBlock: %v, want ErrExists", err)
		}
		if ports.InUse() != 1 {
			t.Errorf("ports in use %d, want 1", ports.InUse())
		}
	})
}

func TestRemoveBlock(t *testing.T) {
	img := writeFile(t, "a.img", make([]byte, 512))
	setup := func(t *testing.T) (*fakeMonitor, *Ports, *Block) {
		f := newFake()
		ports := NewPorts([]string{"rp0"})
		b := &Block{ID: "vdb", Path: img}
		if err := AddBlock(ctxT(t), f, ports, b); err != nil {
			t.Fatal(err)
		}
		f.reset()
		return f, ports, b
	}
	t.Run("busy guest", func(t *testing.T) {
		f, ports, b := setup(t)
		f.busy = 2
		if err := RemoveBlock(ctxT(t), f, ports, b); err != nil {
			t.Fatal(err)
		}
		if got, want := f.seq(), []string{"device_del", "device_del", "device_del", "blockdev-del"}; !slices.Equal(got, want) {
			t.Errorf("commands %v, want %v", got, want)
		}
		f.empty(t)
	})
	t.Run("guest never releases", func(t *testing.T) {
		f, ports, b := setup(t)
		f.noEvent = true
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := RemoveBlock(ctx, f, ports, b)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RemoveBlock: %v, want DeadlineExceeded", err)
		}
		if got := f.seq(); !slices.Equal(got, []string{"device_del"}) {
			t.Errorf("commands %v: nothing may follow an unfinished device_del", got)
		}
		if ports.InUse() != 1 {
			t.Error("port freed while the device may still be there")
		}
		// The guest lets go later; a second remove finishes the job.
		f.mu.Lock()
		delete(f.devices, "vdb")
		f.mu.Unlock()
		f.reset()
		if err := RemoveBlock(ctxT(t), f, ports, b); err != nil {
			t.Fatal(err)
		}
		if got := f.seq(); !slices.Equal(got, []string{"device_del", "blockdev-del"}) {
			t.Errorf("commands %v", got)
		}
		f.empty(t)
		if ports.InUse() != 0 {
			t.Error("port not freed")
		}
	})
	t.Run("not there", func(t *testing.T) {
		f := newFake()
		ports := NewPorts([]string{"rp0"})
		ports.Reserve("rp0")
		err := RemoveBlock(ctxT(t), f, ports, &Block{ID: "vdx", Port: "rp0"})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("RemoveBlock: %v, want ErrNotFound", err)
		}
		if ports.InUse() != 0 {
			t.Error("port of a vanished device not freed")
		}
	})
}
