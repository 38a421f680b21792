package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// hotplugBench times a block hot-add until the guest sees the disk (the
// devices write returns only then) and a NIC hot-add until the guest
// pings the host side of its tap. Traffic stays in netns, which the
// bench script made for this run.
func hotplugBench(mnt, netns, dir string, rounds int) error {
	id := fmt.Sprintf("bench-hp-%d", os.Getpid())
	if err := writeFile(filepath.Join(mnt, "ctl"), "create "+id+" netns=/var/run/netns/"+netns+"\n"); err != nil {
		return err
	}
	sb := filepath.Join(mnt, "sandboxes", id)
	defer writeFile(filepath.Join(sb, "ctl"), "delete\n")
	if err := writeFile(filepath.Join(sb, "containers", "ctl"), "create n -- sleep 1000000\n"); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(sb, "containers", "n", "ctl"), "start\n"); err != nil {
		return err
	}
	img := filepath.Join(dir, "hp.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o600); err != nil {
		return err
	}
	var blk, nic []time.Duration
	for i := 0; i < rounds; i++ {
		t := time.Now()
		if err := writeFile(filepath.Join(sb, "devices"), fmt.Sprintf("add block %s id=b%d\n", img, i)); err != nil {
			return fmt.Errorf("block add: %w", err)
		}
		blk = append(blk, time.Since(t))
		if err := writeFile(filepath.Join(sb, "devices"), fmt.Sprintf("remove b%d\n", i)); err != nil {
			return fmt.Errorf("block remove: %w", err)
		}
		d, err := nicRound(sb, netns, i)
		if err != nil {
			return fmt.Errorf("nic: %w", err)
		}
		nic = append(nic, d)
		fmt.Printf("round %d: block hot-add until the guest sees it %v, NIC hot-add until the guest pings the host %v\n",
			i+1, blk[i].Round(time.Millisecond), nic[i].Round(time.Millisecond))
	}
	fmt.Printf("hotplug          median block %v, NIC to first ping %v\n",
		median(blk).Round(time.Millisecond), median(nic).Round(time.Millisecond))
	return nil
}

func nicRound(sb, netns string, i int) (time.Duration, error) {
	name := fmt.Sprintf("eth%d", i+1)
	guest, host := fmt.Sprintf("192.168.%d.2/24", 90+i), fmt.Sprintf("192.168.%d.1", 90+i)
	t := time.Now()
	if err := writeFile(filepath.Join(sb, "interfaces"), "add "+name+" addr="+guest+"\n"); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(sb, "interfaces"))
	if err != nil {
		return 0, err
	}
	var tap string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			for _, kv := range f {
				if strings.HasPrefix(kv, "tap=") {
					tap = strings.TrimPrefix(kv, "tap=")
				}
			}
		}
	}
	for _, args := range [][]string{{"addr", "add", host + "/24", "dev", tap}, {"link", "set", tap, "up"}} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", netns, "ip"}, args...)...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	procs := filepath.Join(sb, "containers", "n", "procs")
	pid := fmt.Sprintf("ping%d", i)
	if err := writeFile(filepath.Join(procs, "ctl"), "exec "+pid+" -- ping -c 1 -W 10 "+host+"\n"); err != nil {
		return 0, err
	}
	w, err := os.ReadFile(filepath.Join(procs, pid, "wait"))
	if err != nil {
		return 0, err
	}
	d := time.Since(t)
	if strings.TrimSpace(string(w)) != "exit 0" {
		return 0, fmt.Errorf("ping: %s", w)
	}
	return d, writeFile(filepath.Join(sb, "interfaces"), "remove "+name+"\n")
}
