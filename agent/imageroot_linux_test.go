package agent

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// imageHello is /hello.txt of the test image.
const imageHello = "hello from the image\n"

// makeRootImage writes an ext4 image holding /hello.txt and the host's
// static busybox as /bin/busybox, with /bin/sh and a few applets linked
// to it, and returns its path.
func makeRootImage(t *testing.T) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte(imageHello), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "echo", "grep", "ls", "mount", "wc"} {
		if err := os.Symlink("busybox", filepath.Join(src, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "root.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-d", src, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	return img
}

// attachLoop attaches img read-only to a loop device, detached when the
// test ends.
func attachLoop(t *testing.T, img string) string {
	t.Helper()
	losetup, err := exec.LookPath("losetup")
	if err != nil {
		t.Skip("losetup not installed")
	}
	out, err := exec.Command(losetup, "-f", "--show", "-r", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestContainerImageRoot runs a container whose root is an ext4 image on
// a (loop) block device: the image's own sh runs, / is writable through
// the overlay, the image stays as it was, and RemoveContainer lets go of
// the device.
func TestContainerImageRoot(t *testing.T) {
	c, _ := containerClient(t)
	img := makeRootImage(t)
	before := fileSum(t, img)
	dev := attachLoop(t, img)
	ctx := testCtx(t, 60*time.Second)

	spec := shSpec("cat /hello.txt; echo written > /new.txt && cat /new.txt; echo more >> /hello.txt; " +
		"grep -c busybox /proc/mounts; ls /usr 2>&1 | wc -l")
	spec.Root = &specs.Root{Path: dev}
	if err := c.CreateContainer(ctx, "img1", spec, false); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	out := readStream(t, c, "img1", "init", StdioStdout)
	errs := readStream(t, c, "img1", "init", StdioStderr)
	if _, err := c.StartContainer(ctx, "img1"); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	st, err := c.WaitProcess(ctx, "img1", "init")
	if err != nil {
		t.Fatal(err)
	}
	// No busybox bind-mount: the image's own /bin/sh ran. /usr is not in
	// the image (the guest's default root has it): ls fails, 1 line.
	want := imageHello + "written\n0\n1\n"
	if got := string(recvBytes(t, out)); got != want || st.Code != 0 {
		t.Errorf("output %q, %v (stderr %q); want %q, exit 0", got, st, recvBytes(t, errs), want)
	}
	if err := c.RemoveContainer(ctx, "img1"); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	// Nothing holds the device any more: an exclusive open works only
	// when no file system is mounted from it.
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Errorf("%s still busy after RemoveContainer: %v", dev, err)
	} else {
		unix.Close(fd)
	}
	if after := fileSum(t, img); !bytes.Equal(before[:], after[:]) {
		t.Error("the image changed")
	}
}

func TestContainerImageRootErrors(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, 30*time.Second)
	for _, p := range []string{"/dev/null", "/dev/nosuchdisk"} {
		spec := shSpec("true")
		spec.Root = &specs.Root{Path: p}
		if err := c.CreateContainer(ctx, "bad", spec, false); !IsInvalidArgument(err) {
			t.Errorf("root %s: CreateContainer = %v, want InvalidArgument", p, err)
		}
	}
	// A block device without a file system on it.
	img := filepath.Join(t.TempDir(), "empty.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := shSpec("true")
	spec.Root = &specs.Root{Path: attachLoop(t, img)}
	err := c.CreateContainer(ctx, "nofs", spec, false)
	if err == nil || !strings.Contains(err.Error(), "ext4") {
		t.Errorf("root on an empty device: CreateContainer = %v, want a mount error", err)
	}
}
