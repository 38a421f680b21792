package fs

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/katafs/katafs/sandbox"
)

// List files: one object per line, its name first, then key=value
// fields. Fields with an empty value are left out. A value that holds a
// blank or a quote is single-quoted as sh does, so the line splits back
// into the same words with the ctl tokenizer (and with sh).

// kv is one key=value field of a list line.
type kv struct{ k, v string }

// writeListLine renders one list line.
func writeListLine(buf *bytes.Buffer, name string, fields []kv) {
	buf.WriteString(listWord(name))
	for _, f := range fields {
		if f.v == "" {
			continue
		}
		buf.WriteByte(' ')
		buf.WriteString(f.k)
		buf.WriteByte('=')
		buf.WriteString(listWord(f.v))
	}
	buf.WriteByte('\n')
}

// listWord quotes s if the tokenizer would not read it back as one word.
func listWord(s string) string {
	s = oneLine(s)
	if s != "" && !strings.ContainsAny(s, " \t'\"\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeDevices renders devices:
// `ID kind=block path=PATH ro=BOOL format=raw guest=/dev/vdb port=rp0`.
func writeDevices(buf *bytes.Buffer, ds []sandbox.Device) {
	for _, d := range ds {
		writeListLine(buf, d.ID, []kv{
			{"kind", d.Kind},
			{"path", d.Path},
			{"ro", strconv.FormatBool(d.ReadOnly)},
			{"format", d.Format},
			{"guest", d.Guest},
			{"port", d.Port},
		})
	}
}

// writeInterfaces renders NICs:
// `NAME mac=MAC mtu=N addr=CIDR... tap=TAP`.
func writeInterfaces(buf *bytes.Buffer, ns []sandbox.NIC) {
	for _, n := range ns {
		fields := []kv{{"mac", n.MAC}}
		if n.MTU != 0 {
			fields = append(fields, kv{"mtu", strconv.Itoa(n.MTU)})
		}
		for _, a := range n.Addrs {
			fields = append(fields, kv{"addr", a})
		}
		fields = append(fields, kv{"tap", n.Tap})
		writeListLine(buf, n.Name, fields)
	}
}

// writeRoutes renders routes: `DEST [via=GW] dev=NAME`.
func writeRoutes(buf *bytes.Buffer, rs []sandbox.Route) {
	for _, r := range rs {
		writeListLine(buf, r.Dest, []kv{{"via", r.Via}, {"dev", r.Dev}})
	}
}

// devicesFile is what reading sandboxes/ID/devices shows.
type devicesFile struct{ sandboxFile }

func (f devicesFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	s, err := f.b.Sandbox(ctx, f.id)
	if err != nil {
		return err
	}
	ds, err := s.Devices(ctx)
	if err != nil {
		return err
	}
	writeDevices(buf, ds)
	return nil
}

// interfacesFile is what reading sandboxes/ID/interfaces shows.
type interfacesFile struct{ sandboxFile }

func (f interfacesFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	s, err := f.b.Sandbox(ctx, f.id)
	if err != nil {
		return err
	}
	ns, err := s.Interfaces(ctx)
	if err != nil {
		return err
	}
	writeInterfaces(buf, ns)
	return nil
}

// routesFile is what reading sandboxes/ID/routes shows.
type routesFile struct{ sandboxFile }

func (f routesFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	s, err := f.b.Sandbox(ctx, f.id)
	if err != nil {
		return err
	}
	rs, err := s.Routes(ctx)
	if err != nil {
		return err
	}
	writeRoutes(buf, rs)
	return nil
}
