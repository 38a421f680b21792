package agent

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// yamuxFrame is a header; data frames get length bytes of payload.
func yamuxFrame(typ byte, flags uint16, id, length uint32) []byte {
	h := make([]byte, yamuxHeaderLen)
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	if typ == yamuxTypeData {
		h = append(h, bytes.Repeat([]byte{0xab}, int(length))...)
	}
	return h
}

func TestSessionSplitter(t *testing.T) {
	syn1 := yamuxFrame(1, yamuxFlagSYN, 1, 0)
	// A payload holding what looks like a SYN for stream 1 must not split.
	data1 := append(yamuxFrame(0, 0, 1, 0), syn1...)
	binary.BigEndian.PutUint32(data1[8:], uint32(len(syn1)))
	first := bytes.Join([][]byte{syn1, data1, yamuxFrame(2, 1, 0, 9), yamuxFrame(1, yamuxFlagSYN, 3, 0)}, nil)
	second := append(append([]byte{}, syn1...), yamuxFrame(0, 0, 1, 5)...)
	stream := append(append([]byte{}, first...), second...)

	var s sessionSplitter
	// Fed in small reads: whole frames pass, the split is exact.
	passed := 0
	for passed < len(stream) {
		n, next := s.vet(stream[passed:], 5)
		if next {
			break
		}
		if n == 0 {
			t.Fatalf("stuck at %d", passed)
		}
		passed += n
	}
	if passed != len(first) {
		t.Fatalf("split at %d, want %d", passed, len(first))
	}

	// A partial header is held back.
	var s2 sessionSplitter
	if n, next := s2.vet(syn1[:7], 100); n != 0 || next {
		t.Fatalf("partial header: %d, %v", n, next)
	}
	// Not yamux: pass everything.
	var s3 sessionSplitter
	if n, _ := s3.vet([]byte("hello, world"), 100); n != 12 {
		t.Fatalf("non-yamux bytes: passed %d", n)
	}
}

// A host that vanishes and is replaced before the guest reads its EOF (a
// killed katafs restarted at once, or virtio-serial not showing the
// hang-up at all) leaves a session with open streams: the next host's
// stream 1 must start a fresh session at once, not after a Connect retry.
func TestReconnectWithoutEOF(t *testing.T) {
	shrinkConnectTiming(t, 10*time.Second)
	dev := &fakeVport{silentReconnect: true}
	serveTest(t, &devicePort{dev: dev})
	ctx := testCtx(t, 30*time.Second)
	for i := 1; i <= 3; i++ {
		conn, err := dev.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := newClient(conn)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(ctx); err != nil {
			t.Fatalf("host %d: Check: %v", i, err)
		}
		conn.Close() // killed: no FIN, no goodbye, and the guest sees no EOF
		c.close(0)
	}
	start := time.Now()
	c, err := Connect(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Connect took %v: the stale session was not split off", el)
	}
	if dev.eofReads.Load() != 0 {
		t.Fatalf("the guest saw %d EOFs; this test wants none", dev.eofReads.Load())
	}
}
