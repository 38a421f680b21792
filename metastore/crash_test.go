package metastore

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashEnv makes the test binary run crashHelper instead of the tests:
// "<kind> <state dir> <first seq>".
const crashEnv = "METASTORE_CRASH_HELPER"

// crashRecord is a value that carries a checksum of itself, so half a value
// or a mix of two values does not parse or does not check.
type crashRecord struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
	Pad string `json:"pad"`
	Sum string `json:"sum"`
}

func (r crashRecord) sum() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%s", r.Key, r.Seq, r.Pad)))
	return hex.EncodeToString(h[:])
}

// TestCrashHelper is the process that gets killed; it only runs when
// started by TestCrash.
func TestCrashHelper(t *testing.T) {
	arg := os.Getenv(crashEnv)
	if arg == "" {
		t.Skip("helper process for TestCrash")
	}
	f := strings.Fields(arg)
	seq, _ := strconv.Atoi(f[2])
	st, _, err := Open(f[1], f[0])
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	for ; ; seq++ {
		r := crashRecord{
			Key: fmt.Sprintf("sandboxes/s%d/containers/c%d/state", seq%5, seq%3),
			Seq: seq,
			// Up to 40 KiB: LevelDB writes such a record to its journal in
			// more than one piece.
			Pad: strings.Repeat(strconv.Itoa(seq%10), rand.IntN(40<<10)),
		}
		r.Sum = r.sum()
		v, _ := json.Marshal(r)
		if err := st.Save(r.Key, v); err != nil {
			fmt.Println("save:", err)
			os.Exit(2)
		}
		// One write per line, so a kill never tears an acknowledgement.
		fmt.Printf("ack %s %d\n", r.Key, r.Seq)
	}
}

// TestCrash SIGKILLs a process that Saves in a loop at random points, then
// checks that the store reopens, that every key loads a whole value, and
// that no acknowledged Save was lost.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills helper processes; skipped with -short")
	}
	for _, kind := range Kinds {
		// Not parallel: a fork for one kind's helper briefly holds a copy
		// of every fd of this process, the other kind's lock among them
		// (close-on-exec acts only at exec), so its next helper would find
		// the state directory locked.
		t.Run(kind, func(t *testing.T) {
			sd := t.TempDir()
			acked := map[string]int{}
			total := 0
			for round := range 20 {
				total += crashRound(t, kind, sd, round*1_000_000, acked)
				checkAfterCrash(t, kind, sd, acked)
			}
			if total == 0 {
				t.Fatal("the helper never acknowledged a Save: the test tested nothing")
			}
			t.Logf("%d acknowledged saves over 20 kills", total)
		})
	}
}

// crashRound runs the helper, kills it 1-30 ms after it opened the store,
// and records what it acknowledged. It returns the number of acks.
func crashRound(t *testing.T, kind, sd string, seq int, acked map[string]int) int {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", crashEnv, kind, sd, seq))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	ready, err := r.ReadString('\n')
	if ready != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v", ready, err)
	}
	time.Sleep(time.Duration(1+rand.IntN(30)) * time.Millisecond)
	cmd.Process.Kill()
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // EOF; a line without its newline was never acknowledged
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "ack" {
			t.Fatalf("helper: %q", line)
		}
		s, _ := strconv.Atoi(f[2])
		acked[f[1]] = s
		n++
	}
	cmd.Wait()
	return n
}

func checkAfterCrash(t *testing.T, kind, sd string, acked map[string]int) {
	t.Helper()
	st, closeFn, err := Open(sd, kind)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer closeFn()
	keys, err := walk(st, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, err := st.Load(k)
		if err != nil {
			t.Fatalf("Load(%s): %v", k, err)
		}
		var r crashRecord
		if err := json.Unmarshal(v, &r); err != nil {
			t.Fatalf("%s holds %d bytes that do not parse: %v", k, len(v), err)
		}
		if r.Key != k || r.Sum != r.sum() {
			t.Fatalf("%s holds a record of %s that fails its checksum", k, r.Key)
		}
	}
	for k, seq := range acked {
		v, err := st.Load(k)
		if err != nil {
			t.Fatalf("acknowledged key %s lost: %v", k, err)
		}
		var r crashRecord
		json.Unmarshal(v, &r)
		// Newer is fine: written but killed before the ack.
		if r.Seq < seq {
			t.Fatalf("%s: seq %d was acknowledged, store has %d", k, seq, r.Seq)
		}
	}
}
