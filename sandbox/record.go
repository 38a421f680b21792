package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/katafs/katafs/metastore"
)

// record is the mutable part of a sandbox saved next to its Config.
// StateCreating marks a sandbox whose create has not finished: a daemon
// that finds one on start cleans it up rather than serving a half VM.
type record struct {
	State   State   `json:"state"`
	Pid     int     `json:"pid,omitempty"`
	Accel   string  `json:"accel,omitempty"`
	RunDir  string  `json:"run_dir,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	Started string  `json:"started,omitempty"`
	HW      hwState `json:"hw"`
}

const stateCreating State = "creating"

func configKey(id string) string  { return "sandboxes/" + id + "/config" }
func recordKey(id string) string  { return "sandboxes/" + id + "/state" }
func sandboxKey(id string) string { return "sandboxes/" + id }

func saveJSON(st metastore.Store, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return st.Save(key, append(b, '\n'))
}

func loadJSON(st metastore.Store, key string, v any) error {
	b, err := st.Load(key)
	if errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("metadata %s is corrupt: %v", key, err)
	}
	return nil
}

// jsonUnmarshalStrict refuses unknown fields, so a typo in a process
// object is an error rather than silently ignored.
func jsonUnmarshalStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
