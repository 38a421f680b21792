package agent

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// depmod output of linux-image-6.1.0-57-cloud-amd64, trimmed: here virtio
// depends on virtio_ring.
const modulesDep57 = `kernel/fs/overlayfs/overlay.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
`

func base(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, ModuleName(p))
	}
	return out
}

func order(t *testing.T, dep string, wanted ...string) (names, missing []string) {
	t.Helper()
	md, err := ParseModulesDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	o, missing, err := md.LoadOrder(wanted)
	if err != nil {
		t.Fatal(err)
	}
	return base(o), missing
}

func TestLoadOrderFromModulesDep(t *testing.T) {
	got, missing := order(t, modulesDep57,
		"virtio", "virtio_pci", "virtio_console", "virtio_net", "vmw_vsock_virtio_transport", "overlay")
	if len(missing) != 0 {
		t.Fatalf("missing %v", missing)
	}
	want := []string{
		"virtio_ring", "virtio", // virtio needs virtio_ring first in 6.1.0-57
		"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
		"virtio_console",
		"failover", "net_failover", "virtio_net",
		"vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
		"overlay",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order\n got %v\nwant %v", got, want)
	}
}

func TestLoadOrderFollowsKernelVersion(t *testing.T) {
	// In 6.1.0-53 virtio did not depend on virtio_ring: the same wanted
	// list must give an order without that edge.
	dep53 := strings.Replace(modulesDep57,
		"kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko:", 1)
	got, _ := order(t, dep53, "virtio", "virtio_ring")
	if want := []string{"virtio", "virtio_ring"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("6.1.0-53 order %v, want %v", got, want)
	}
	got, _ = order(t, modulesDep57, "virtio", "virtio_ring")
	if want := []string{"virtio_ring", "virtio"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("6.1.0-57 order %v, want %v", got, want)
	}
}

func TestLoadOrderRecursesThroughIncompleteLines(t *testing.T) {
	// A dependency's own dependencies are loaded first even when a line
	// lists only direct ones (hand-written or reduced modules.dep).
	dep := "c.ko: b.ko\nb.ko: a.ko\na.ko:\n"
	got, _ := order(t, dep, "c", "a", "c")
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v (each once)", got, want)
	}
}

func TestLoadOrderMissingAndErrors(t *testing.T) {
	got, missing := order(t, modulesDep57, "overlay", "9p", "virtio-blk")
	if want := []string{"overlay", "virtio_ring", "virtio", "virtio_blk"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if !reflect.DeepEqual(missing, []string{"9p"}) {
		t.Errorf("missing %v, want [9p]", missing)
	}

	md, _ := ParseModulesDep(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if _, _, err := md.LoadOrder([]string{"a"}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	md, _ = ParseModulesDep(strings.NewReader("a.ko: gone.ko\n"))
	if _, _, err := md.LoadOrder([]string{"a"}); err == nil || !strings.Contains(err.Error(), "gone.ko") {
		t.Errorf("dangling dependency: %v", err)
	}
	if _, err := ParseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("malformed line accepted")
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/virtio/virtio_pci.ko":             "virtio_pci",
		"kernel/fs/overlayfs/overlay.ko.xz":               "overlay",
		"kernel/drivers/char/hw_random/virtio-rng.ko.zst": "virtio_rng",
		"vmw-vsock-virtio-transport":                      "vmw_vsock_virtio_transport",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadModules(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(modulesDep57), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "modules")
	if err := os.WriteFile(list, []byte("# wanted\nvirtio_console\n\nbuiltin_thing\noverlay # fs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names, err := ReadModuleList(list)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"virtio_console", "builtin_thing", "overlay"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("module list %v, want %v", names, want)
	}
	var loaded []string
	ml, err := NewModuleLoader(dir, func(p string) error {
		if !strings.HasPrefix(p, dir+"/kernel/") {
			t.Errorf("load of %s, outside the module dir", p)
		}
		loaded = append(loaded, ModuleName(p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// As RunInit: what the port needs first, then the whole list; nothing
	// is loaded twice.
	if err := ml.Load([]string{"virtio_console"}); err != nil {
		t.Fatal(err)
	}
	if err := ml.Load(names); err != nil {
		t.Fatal(err)
	}
	if want := []string{"virtio_ring", "virtio", "virtio_console", "overlay"}; !reflect.DeepEqual(loaded, want) {
		t.Fatalf("loaded %v, want %v", loaded, want)
	}

	boom := errors.New("boom")
	ml, err = NewModuleLoader(dir, func(p string) error {
		if ModuleName(p) == "virtio" {
			return boom
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = ml.Load(names)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "virtio") {
		t.Fatalf("load failure: %v", err)
	}
}
