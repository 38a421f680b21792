// Command katafs serves the Kata Containers sandbox API as a file tree.
//
//	katafs mount [flags] [MOUNTPOINT]   serve the tree in the foreground (default /kata)
//	katafs check [flags]                what this host can do; non-zero if katafs cannot run
//	katafs store migrate --to fs|leveldb [--state-dir DIR]
//	katafs version
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  katafs mount [flags] [MOUNTPOINT]  serve the tree in the foreground (default /kata)
  katafs check [flags]               report what this host can do
  katafs store migrate --to KIND     convert the metadata store (fs, leveldb); no daemon may run
  katafs version

run 'katafs mount -h' for the flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "mount":
		err = runMount(os.Args[2:])
	case "check":
		err = runCheck(os.Args[2:])
	case "store":
		err = runStore(os.Args[2:])
	case "version", "--version":
		err = runVersion(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "katafs: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "katafs %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
