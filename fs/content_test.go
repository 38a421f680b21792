package fs

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/katafs/katafs/sandbox"
)

func generate(t *testing.T, g generator) string {
	t.Helper()
	var buf bytes.Buffer
	if err := g.Generate(t.Context(), &buf); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return buf.String()
}

func fakeWithSandbox(t *testing.T) *fakeBackend {
	b := newFakeBackend(t.TempDir())
	if err := b.Create(t.Context(), sandbox.Config{ID: "s1", MemoryMiB: 512}); err != nil {
		t.Fatal(err)
	}
	return b
}

const wantStatus = `id s1
state ready
pid 4242
created 2025-03-01T12:00:00Z
factory new
proxy builtin
shim builtin
agent ok
memory 512
cpus 1
containers 0
`

func TestStatusGenerate(t *testing.T) {
	b := fakeWithSandbox(t)
	if got := generate(t, statusFile{sandboxFile: sandboxFile{b, "s1"}}); got != wantStatus {
		t.Errorf("status =\n%s\nwant\n%s", got, wantStatus)
	}
}

func TestStatusReasonAndEmpty(t *testing.T) {
	var buf bytes.Buffer
	writeText(&buf, statusFields(sandbox.Status{ID: "x", State: sandbox.StateStopped, Reason: "qemu exited:\nsignal 9"}))
	want := "id x\nstate stopped\npid 0\ncreated -\nfactory -\nproxy -\nshim -\nagent -\nmemory 0\ncpus 0\ncontainers 0\nreason qemu exited: signal 9\n"
	if buf.String() != want {
		t.Errorf("status =\n%s\nwant\n%s", buf.String(), want)
	}
}

// status.json has exactly the keys of status, in the same order.
func TestStatusJSONSameKeys(t *testing.T) {
	b := fakeWithSandbox(t)
	js := generate(t, statusFile{sandboxFile: sandboxFile{b, "s1"}, asJSON: true})
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("status.json %q: %v", js, err)
	}
	dec := json.NewDecoder(strings.NewReader(js))
	dec.Token()
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v any
		dec.Decode(&v)
	}
	var textKeys []string
	for _, l := range strings.Split(strings.TrimSpace(wantStatus), "\n") {
		textKeys = append(textKeys, strings.Fields(l)[0])
	}
	if !reflect.DeepEqual(keys, textKeys) {
		t.Errorf("json keys %v; text keys %v", keys, textKeys)
	}
	if m["id"] != "s1" || m["memory"] != 512.0 || m["created"] != "2025-03-01T12:00:00Z" {
		t.Errorf("status.json = %v", m)
	}
}

func TestConfigGenerate(t *testing.T) {
	b := fakeWithSandbox(t)
	got := generate(t, configFile{sandboxFile{b, "s1"}})
	var cfg sandbox.Config
	if err := json.Unmarshal([]byte(got), &cfg); err != nil {
		t.Fatal(err)
	}
	want := sandbox.Config{ID: "s1", MemoryMiB: 512, CPUs: 1, Factory: "new", Proxy: "builtin", Shim: "builtin", Created: fakeCreated}
	if !cfg.Created.Equal(want.Created) || cfg.ID != want.ID || cfg.MemoryMiB != 512 || !strings.Contains(got, "\n  \"memory_mib\": 512,") {
		t.Errorf("config = %s", got)
	}
}

func TestSandboxFileNotFound(t *testing.T) {
	b := newFakeBackend(t.TempDir())
	var buf bytes.Buffer
	err := statusFile{sandboxFile: sandboxFile{b, "nope"}}.Generate(t.Context(), &buf)
	if !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("status of a missing sandbox: %v", err)
	}
}

func TestVersionGenerate(t *testing.T) {
	got := generate(t, versionFile{newFakeBackend(t.TempDir())})
	if want := "katafs 0.1.0\nagent-protocol 1\nqemu 9.2.0\n"; got != want {
		t.Errorf("version = %q; want %q", got, want)
	}
}

func TestCloneGenerate(t *testing.T) {
	b := newFakeBackend(t.TempDir())
	tr := &tree{backend: b, log: testLog(t), errs: newErrorLogs(0), now: time.Now}
	if got := generate(t, cloneFile{tr}); got != "sb1\n" {
		t.Errorf("clone = %q", got)
	}
	if got := generate(t, cloneFile{tr}); got != "sb2\n" {
		t.Errorf("clone = %q", got)
	}
	if ids, _ := b.List(t.Context()); len(ids) != 2 {
		t.Errorf("sandboxes %v", ids)
	}
}
