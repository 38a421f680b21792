package fs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/katafs/katafs/sandbox"
	"github.com/sirupsen/logrus"
)

// field is one `key value` line of a status file and one key of its JSON
// twin; both are rendered from the same list so their keys agree.
type field struct {
	key   string
	value any // string, int, int64 or bool
}

// statusFields is the status file's content, in its stable order.
func statusFields(st sandbox.Status) []field {
	fs := []field{
		{"id", st.ID},
		{"state", string(st.State)},
		{"pid", st.Pid},
		{"created", rfc3339(st.Created)},
		{"factory", st.Factory},
		{"proxy", st.Proxy},
		{"shim", st.Shim},
		{"agent", st.Agent},
		{"memory", st.MemoryMiB},
		{"cpus", st.CPUs},
		{"containers", st.Containers},
	}
	if st.Reason != "" {
		fs = append(fs, field{"reason", st.Reason})
	}
	return fs
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// writeText renders fields as `key value` lines; an empty value is "-" so
// that every line has two words.
func writeText(buf *bytes.Buffer, fs []field) {
	for _, f := range fs {
		v := ""
		switch x := f.value.(type) {
		case int:
			v = strconv.Itoa(x)
		case int64:
			v = strconv.FormatInt(x, 10)
		case bool:
			v = strconv.FormatBool(x)
		case string:
			v = oneLine(x)
		}
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(buf, "%s %s\n", f.key, v)
	}
}

// writeJSON renders fields as one JSON object, keys in order.
func writeJSON(buf *bytes.Buffer, fs []field) error {
	buf.WriteString("{\n")
	for i, f := range fs {
		v, err := json.Marshal(f.value)
		if err != nil {
			return err
		}
		sep := ","
		if i == len(fs)-1 {
			sep = ""
		}
		fmt.Fprintf(buf, "  %q: %s%s\n", f.key, v, sep)
	}
	buf.WriteString("}\n")
	return nil
}

// sandboxFile fetches the sandbox a sandbox directory's file is about.
type sandboxFile struct {
	b  Backend
	id string
}

// statusFile is sandboxes/ID/status, or status.json when asJSON.
type statusFile struct {
	sandboxFile
	asJSON bool
}

func (f statusFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	s, err := f.b.Sandbox(ctx, f.id)
	if err != nil {
		return err
	}
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	if f.asJSON {
		return writeJSON(buf, statusFields(st))
	}
	writeText(buf, statusFields(st))
	return nil
}

// configFile is sandboxes/ID/config: the Config as indented JSON.
type configFile struct{ sandboxFile }

func (f configFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	s, err := f.b.Sandbox(ctx, f.id)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(s.Config(), "", "  ")
	if err != nil {
		return err
	}
	buf.Write(js)
	buf.WriteByte('\n')
	return nil
}

// versionFile is /kata/version.
type versionFile struct{ b Backend }

func (f versionFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	v := f.b.Version(ctx)
	writeText(buf, []field{
		{"katafs", v.Katafs},
		{"agent-protocol", v.AgentProtocol},
		{"qemu", v.QEMU},
	})
	return nil
}

// cloneFile is /kata/clone: generating it creates a sandbox with a fresh
// ID and defaults, and yields the ID.
type cloneFile struct{ t *tree }

func (f cloneFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	ctx, stop := callerContext(ctx)
	defer stop()
	id := f.t.backend.NewID()
	if err := f.t.backend.Create(ctx, sandbox.Config{ID: id}); err != nil {
		f.t.report("", logrus.Fields{"sandbox": id}, "clone", err)
		return err
	}
	buf.WriteString(id + "\n")
	return nil
}

// errorsFile is a directory's errors file.
type errorsFile struct {
	t   *tree
	dir string
}

func (f errorsFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	return f.t.errs.get(f.dir).Generate(ctx, buf)
}

// containerStatusFields is a container's status file, in its stable order.
func containerStatusFields(st sandbox.ContainerStatus) []field {
	return []field{
		{"id", st.ID},
		{"state", string(st.State)},
		{"pid", st.Pid},
		{"exit", st.Exit},
	}
}

// procStatusFields is a process's status file, in its stable order.
func procStatusFields(st sandbox.ProcessStatus) []field {
	return []field{
		{"id", st.ID},
		{"state", st.State},
		{"pid", st.Pid},
		{"exit", st.Exit},
		{"tty", st.TTY},
		{"stdout_bytes", st.StdoutBytes},
		{"stderr_bytes", st.StderrBytes},
		{"stdout_dropped", st.StdoutDropped},
		{"stderr_dropped", st.StderrDropped},
	}
}

// renderFields writes fields as text, or as JSON when asJSON.
func renderFields(buf *bytes.Buffer, fs []field, asJSON bool) error {
	if asJSON {
		return writeJSON(buf, fs)
	}
	writeText(buf, fs)
	return nil
}

// containerStatusFile is containers/CID/status, or status.json.
type containerStatusFile struct {
	b      Backend
	at     ref
	asJSON bool
}

func (f containerStatusFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	c, err := f.at.container(ctx, f.b)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	return renderFields(buf, containerStatusFields(st), f.asJSON)
}

// procStatusFile is procs/PID/status, or status.json.
type procStatusFile struct {
	b      Backend
	at     ref
	asJSON bool
}

func (f procStatusFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	p, err := f.at.process(ctx, f.b)
	if err != nil {
		return err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return err
	}
	return renderFields(buf, procStatusFields(st), f.asJSON)
}

// specFile is containers/CID/config: the OCI runtime spec as the backend
// has it, ending in a newline.
type specFile struct {
	b  Backend
	at ref
}

func (f specFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	c, err := f.at.container(ctx, f.b)
	if err != nil {
		return err
	}
	spec := c.Spec()
	buf.Write(spec)
	if len(spec) > 0 && spec[len(spec)-1] != '\n' {
		buf.WriteByte('\n')
	}
	return nil
}
