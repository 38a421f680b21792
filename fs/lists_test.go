package fs

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/katafs/katafs/sandbox"
)

func TestWriteLists(t *testing.T) {
	var buf bytes.Buffer
	writeDevices(&buf, []sandbox.Device{
		{ID: "disk0", Kind: "block", Path: "/img/a.raw", Format: "raw", Guest: "/dev/vdb", Port: "rp0"},
		{ID: "data", Kind: "block", Path: "/img/my disk's.img", ReadOnly: true, Format: "qcow2", Guest: "/dev/vdc", Port: "rp1"},
	})
	want := "disk0 kind=block path=/img/a.raw ro=false format=raw guest=/dev/vdb port=rp0\n" +
		`data kind=block path='/img/my disk'\''s.img' ro=true format=qcow2 guest=/dev/vdc port=rp1` + "\n"
	if buf.String() != want {
		t.Errorf("devices:\n%s\nwant\n%s", buf.String(), want)
	}

	buf.Reset()
	writeInterfaces(&buf, []sandbox.NIC{
		{Name: "eth0", MAC: "02:00:00:00:00:00", MTU: 1500, Addrs: []string{"10.0.2.15/24"}},
		{Name: "eth1", MAC: "02:00:00:00:00:01", MTU: 1500, Addrs: []string{"192.168.77.2/24", "fd00::2/64"}, Tap: "kt-ab12"},
		{Name: "eth2", MAC: "02:00:00:00:00:02", Tap: "kt-ab13"},
	})
	want = "eth0 mac=02:00:00:00:00:00 mtu=1500 addr=10.0.2.15/24\n" +
		"eth1 mac=02:00:00:00:00:01 mtu=1500 addr=192.168.77.2/24 addr=fd00::2/64 tap=kt-ab12\n" +
		"eth2 mac=02:00:00:00:00:02 tap=kt-ab13\n"
	if buf.String() != want {
		t.Errorf("interfaces:\n%s\nwant\n%s", buf.String(), want)
	}

	buf.Reset()
	writeRoutes(&buf, []sandbox.Route{
		{Dest: "default", Via: "192.168.77.1", Dev: "eth1"},
		{Dest: "10.1.0.0/16", Dev: "eth1"},
	})
	want = "default via=192.168.77.1 dev=eth1\n10.1.0.0/16 dev=eth1\n"
	if buf.String() != want {
		t.Errorf("routes:\n%s\nwant\n%s", buf.String(), want)
	}
}

// A list line splits back into its words with the ctl tokenizer,
// whatever the values hold.
func TestListWordRoundTrip(t *testing.T) {
	for _, v := range []string{"plain", "", "a b", "it's", `say "hi"`, `back\slash`, "tab\there", "''", "x=y"} {
		var buf bytes.Buffer
		writeListLine(&buf, v, []kv{{"path", v + "!"}})
		got, err := tokenize(string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
		want := []string{v, "path=" + v + "!"}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: line %q splits into %q, %v; want %q", v, buf.String(), got, err, want)
		}
	}
}

func TestListsGenerate(t *testing.T) {
	b := fakeWithSandbox(t)
	s, _ := b.get("s1")
	ctx := t.Context()
	if err := s.AddDevice(ctx, sandbox.DeviceConfig{Kind: "block", Path: "/img/a.raw", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddInterface(ctx, sandbox.NICConfig{Name: "eth1", Addrs: []string{"192.168.77.2/24"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRoute(ctx, sandbox.Route{Dest: "default", Via: "192.168.77.1", Dev: "eth1"}); err != nil {
		t.Fatal(err)
	}
	sf := sandboxFile{b, "s1"}
	for _, tc := range []struct {
		gen  generator
		want string
	}{
		{devicesFile{sf}, "disk0 kind=block path=/img/a.raw ro=true format=raw guest=/dev/vdb port=rp0\n"},
		{interfacesFile{sf}, "eth0 mac=02:00:00:00:00:00 mtu=1500 addr=10.0.2.15/24\neth1 mac=02:00:00:00:00:01 mtu=1500 addr=192.168.77.2/24 tap=kt-0001\n"},
		{routesFile{sf}, "default via=192.168.77.1 dev=eth1\n"},
	} {
		if got := generate(t, tc.gen); got != tc.want {
			t.Errorf("%T:\n%s\nwant\n%s", tc.gen, got, tc.want)
		}
	}
	gone := sandboxFile{b, "nope"}
	for _, g := range []generator{devicesFile{gone}, interfacesFile{gone}, routesFile{gone}} {
		if err := g.Generate(ctx, new(bytes.Buffer)); !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("%T of a missing sandbox: %v", g, err)
		}
	}
}
