package agent

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClientServerCalls(t *testing.T) {
	h, d := unixServer(t)
	ctx := testCtx(t, 20*time.Second)
	c, err := Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	want := VersionInfo{Agent: AgentVersion, Protocol: ProtocolVersion, Kernel: "6.1.0-test"}
	if v != want {
		t.Fatalf("Version = %+v, want %+v", v, want)
	}

	if err := c.CreateSandbox(ctx, "", "h"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateSandbox with empty id: %v, want InvalidArgument", err)
	}
	if err := c.CreateSandbox(ctx, "sb1", "sb1-host"); err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	if got := h.svc.SandboxID(); got != "sb1" {
		t.Fatalf("SandboxID = %q, want sb1", got)
	}
	if got := h.gotHostname(); got != "sb1-host" {
		t.Fatalf("hostname = %q, want sb1-host", got)
	}
	if err := c.CreateSandbox(ctx, "sb2", ""); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second CreateSandbox: %v, want AlreadyExists", err)
	}

	select {
	case <-h.svc.Destroyed():
		t.Fatal("Destroyed closed before DestroySandbox")
	default:
	}
	if err := c.DestroySandbox(ctx); err != nil {
		t.Fatalf("DestroySandbox: %v", err)
	}
	select {
	case <-h.svc.Destroyed():
	case <-ctx.Done():
		t.Fatal("Destroyed not closed after DestroySandbox")
	}
	// After a destroy, the server stops once the host hangs up.
	c.Close()
	select {
	case <-h.done:
		if h.err != nil {
			t.Fatalf("ServePort after destroy: %v", h.err)
		}
	case <-ctx.Done():
		t.Fatal("ServePort did not return after destroy and hang-up")
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after Close")
	}
}

func TestClientDoneWhenGuestGoes(t *testing.T) {
	path := sockPath(t, "a.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(ServiceConfig{})
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServePort(sctx, NewListenerPort(l), svc) }()
	defer func() { stop(); <-served }()

	ctx := testCtx(t, 20*time.Second)
	c, err := Connect(ctx, UnixDialer{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Done():
		t.Fatal("Done closed while the session lives")
	default:
	}
	stop() // the guest side ends the session
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the guest ended the session")
	}
	if err := c.Check(ctx); err == nil {
		t.Fatal("Check after the guest left succeeded")
	}
}

func TestOpenStream(t *testing.T) {
	_, d := unixServer(t)
	ctx := testCtx(t, 20*time.Second)
	c, err := Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	s.Close()
	// The ttrpc stream still works beside it.
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.OpenStream(ctx); err == nil {
		t.Fatal("OpenStream on a closed client succeeded")
	}
	if err := c.Check(ctx); err == nil {
		t.Fatal("Check on a closed client succeeded")
	} else if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
		t.Fatalf("Check on a closed client hung until ctx: %v", err)
	}
}
