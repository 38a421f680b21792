package main

import (
	"flag"
	"fmt"

	"github.com/katafs/katafs/metastore"
)

// runStore is `katafs store migrate --to KIND`: it converts the state
// directory's metadata from one backend to the other.
func runStore(args []string) error {
	if len(args) == 0 || args[0] != "migrate" {
		return fmt.Errorf("usage: katafs store migrate --to fs|leveldb [--state-dir DIR]")
	}
	fl := flag.NewFlagSet("katafs store migrate", flag.ContinueOnError)
	dir := fl.String("state-dir", "/var/lib/katafs", "the state directory")
	to := fl.String("to", "", "the backend to convert to: fs or leveldb")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("--to is required: fs or leveldb")
	}
	n, err := metastore.Migrate(*dir, *to)
	if err != nil {
		return err
	}
	fmt.Printf("migrated %d keys of %s to %s\n", n, *dir, *to)
	return nil
}
