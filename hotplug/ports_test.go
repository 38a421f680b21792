package hotplug

import (
	"errors"
	"testing"
)

func TestPorts(t *testing.T) {
	p := NewPorts([]string{"rp0", "rp1", "rp1", "", "rp2"})
	for _, want := range []string{"rp0", "rp1", "rp2"} {
		if got, err := p.Take(); err != nil || got != want {
			t.Fatalf("Take = %q, %v; want %s", got, err, want)
		}
	}
	if got, err := p.Take(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Take on a full set = %q, %v; want ErrNoSpace", got, err)
	}
	p.Free("rp1")
	p.Free("rp1")  // twice: no effect
	p.Free("nope") // unknown: no effect
	if got, err := p.Take(); err != nil || got != "rp1" {
		t.Fatalf("Take after Free(rp1) = %q, %v", got, err)
	}
	if n := p.InUse(); n != 3 {
		t.Errorf("InUse = %d, want 3", n)
	}

	q := NewPorts([]string{"rp0", "rp1"})
	if err := q.Reserve("rp1"); err != nil {
		t.Fatal(err)
	}
	if err := q.Reserve("rp1"); !errors.Is(err, ErrExists) {
		t.Errorf("Reserve of a taken port: %v, want ErrExists", err)
	}
	if err := q.Reserve("rp9"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reserve of an unknown port: %v, want ErrInvalid", err)
	}
	if got, _ := q.Take(); got != "rp0" {
		t.Errorf("Take after Reserve(rp1) = %q, want rp0", got)
	}
	if _, err := q.Take(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Take: %v, want ErrNoSpace", err)
	}
}
