package metastore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// conformance is run against every backend.
var conformance = map[string]func(t *testing.T, s Store){
	"SaveLoad": func(t *testing.T, s Store) {
		if err := s.Save("sandboxes/a/config", []byte("v1")); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load("sandboxes/a/config")
		if err != nil || string(got) != "v1" {
			t.Fatalf("Load = %q, %v", got, err)
		}
	},
	"Overwrite": func(t *testing.T, s Store) {
		for _, v := range []string{"one", "two-longer", "3"} {
			if err := s.Save("k", []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.Load("k")
		if string(got) != "3" {
			t.Fatalf("Load = %q, want 3", got)
		}
	},
	"LoadMissing": func(t *testing.T, s Store) {
		if _, err := s.Load("nope/x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	},
	"DeleteSubtree": func(t *testing.T, s Store) {
		s.Save("sandboxes/a/config", []byte("1"))
		s.Save("sandboxes/a/state", []byte("2"))
		s.Save("sandboxes/b/config", []byte("3"))
		if err := s.Delete("sandboxes/a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load("sandboxes/a/state"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("state survived delete: %v", err)
		}
		names, err := s.List("sandboxes")
		if err != nil || !reflect.DeepEqual(names, []string{"b"}) {
			t.Fatalf("List = %v, %v", names, err)
		}
		if err := s.Delete("sandboxes/never"); err != nil {
			t.Fatalf("delete of missing key: %v", err)
		}
	},
	"ListEmpty": func(t *testing.T, s Store) {
		names, err := s.List("sandboxes")
		if err != nil || len(names) != 0 {
			t.Fatalf("List = %v, %v", names, err)
		}
	},
	"BadKeys": func(t *testing.T, s Store) {
		for _, k := range []string{"", "../x", "a//b", "a/./b", "/abs", "a/.tmp-x"} {
			if err := s.Save(k, nil); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Save(%q) = %v, want ErrInvalidKey", k, err)
			}
		}
	},
	"Binary": func(t *testing.T, s Store) {
		v := bytes.Repeat([]byte{0, 1, 2, 255}, 4096)
		s.Save("bin", v)
		got, err := s.Load("bin")
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("binary value changed: %v", err)
		}
	},
	"ListSortedDirectChildren": func(t *testing.T, s Store) {
		// '-' sorts before '/' and '0' after it: a backend that lists in raw
		// key order gets this wrong.
		for _, k := range []string{"d/a0", "d/a/x", "d/a/y/z", "d/a-b", "d/c"} {
			if err := s.Save(k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"a", "a-b", "a0", "c"}
		for _, p := range []string{"d", "d/"} {
			names, err := s.List(p)
			if err != nil || !reflect.DeepEqual(names, want) {
				t.Fatalf("List(%q) = %v, %v; want %v", p, names, err, want)
			}
		}
		if names, err := s.List(""); err != nil || !reflect.DeepEqual(names, []string{"d"}) {
			t.Fatalf("List top = %v, %v", names, err)
		}
		if names, err := s.List("d/c"); err != nil || len(names) != 0 {
			t.Fatalf("List of a value = %v, %v", names, err)
		}
		if _, err := s.List("../x"); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("List(../x) = %v, want ErrInvalidKey", err)
		}
	},
	"ValueOrParent": func(t *testing.T, s Store) {
		s.Save("a", []byte("1"))
		if err := s.Save("a/b", nil); !errors.Is(err, ErrConflict) {
			t.Fatalf("Save below a value = %v, want ErrConflict", err)
		}
		s.Save("p/c", []byte("2"))
		if err := s.Save("p", nil); !errors.Is(err, ErrConflict) {
			t.Fatalf("Save above a key = %v, want ErrConflict", err)
		}
		if _, err := s.Load("p"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load of a parent = %v, want ErrNotFound", err)
		}
		// Once the keys below are gone the name is free for a value.
		s.Delete("p/c")
		if err := s.Save("p", []byte("3")); err != nil {
			t.Fatalf("Save after Delete of the keys below: %v", err)
		}
		if got, err := s.Load("p"); err != nil || string(got) != "3" {
			t.Fatalf("Load = %q, %v", got, err)
		}
	},
}

func runConformance(t *testing.T, mk func(t *testing.T) Store) {
	for name, f := range conformance {
		t.Run(name, func(t *testing.T) { f(t, mk(t)) })
	}
}

func TestFSConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) Store {
		s, err := NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFSMirrorsKeysAsFilesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewFS(dir)
	s.Save("sandboxes/s1/config", []byte(`{"id":"s1"}`))
	b, err := os.ReadFile(filepath.Join(dir, "sandboxes", "s1", "config"))
	if err != nil || string(b) != `{"id":"s1"}` {
		t.Fatalf("file = %q, %v", b, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "sandboxes", "s1"))
	if len(ents) != 1 {
		t.Fatalf("leftover files: %v", ents)
	}
}
