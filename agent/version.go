package agent

const (
	// ProtocolVersion is bumped on any incompatible change of agent.proto.
	ProtocolVersion = "1"
	// PortName is the name of the virtio-serial port the agent serves on
	// (QEMU: -device virtserialport,name=agent.channel.0).
	PortName = "agent.channel.0"
	// BootMarker is the line the agent prints on the console right after
	// it starts; the host waits for it in the serial log.
	BootMarker = "katafs-agent: started"
)

// AgentVersion is reported by Version; release builds set it with
// -ldflags "-X github.com/katafs/katafs/agent.AgentVersion=...".
var AgentVersion = "0.1.0-dev"
