package sandbox

// DeviceConfig is `add block PATH [ro] [id=NAME]` on the devices file.
type DeviceConfig struct {
	ID       string `json:"id"` // "" = a fresh name (disk0, disk1, ...)
	Kind     string `json:"kind"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"ro,omitempty"`
}

// Device is one line of the devices file.
type Device struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"` // block
	Path     string `json:"path"`
	ReadOnly bool   `json:"ro"`
	Format   string `json:"format"` // raw | qcow2
	Guest    string `json:"guest"`  // /dev/vdb
	Port     string `json:"port"`   // the PCIe root port it sits on
}

// NICConfig is `add NAME [addr=CIDR]... [mac=MAC] [mtu=N]` on interfaces.
type NICConfig struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs,omitempty"`
	MAC   string   `json:"mac,omitempty"`
	MTU   int      `json:"mtu,omitempty"`
}

// NIC is one line of the interfaces file: the guest's view plus the tap.
type NIC struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac"`
	MTU   int      `json:"mtu"`
	Addrs []string `json:"addrs"`
	Tap   string   `json:"tap"` // host tap in the sandbox's netns; "" for a NIC katafs did not add
}

// Route is one line of the routes file and what `add` takes.
type Route struct {
	Dest string `json:"dest"` // CIDR or "default"
	Via  string `json:"via,omitempty"`
	Dev  string `json:"dev"`
}
