package qmp

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitPortOpen(t *testing.T) {
	ch := make(chan Event, 4)
	ch <- Event{Name: "RESUME"}
	ch <- Event{Name: "VSERPORT_CHANGE", Data: map[string]any{"id": "other", "open": true}}
	ch <- Event{Name: "VSERPORT_CHANGE", Data: map[string]any{"id": "agentport", "open": false}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := WaitPortOpen(ctx, ch, "agentport"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("opened on the wrong events: %v", err)
	}
	ch <- Event{Name: "VSERPORT_CHANGE", Data: map[string]any{"id": "agentport", "open": true}}
	if err := WaitPortOpen(context.Background(), ch, "agentport"); err != nil {
		t.Fatal(err)
	}
	close(ch)
	if err := WaitPortOpen(context.Background(), ch, "agentport"); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed monitor: %v", err)
	}
}
