package agent

import "encoding/binary"

// yamux framing (hashicorp/yamux spec.md): a 12-byte header of version,
// type, flags, stream id and length; only data frames are followed by
// length bytes of payload.
const (
	yamuxHeaderLen = 12
	yamuxTypeData  = 0
	yamuxFlagSYN   = 1
)

// sessionSplitter finds where the next host's yamux session starts in the
// byte stream of a virtio-serial port, which does not reliably show host
// reconnects as EOF. A yamux client opens stream 1 first and only once, so
// a second SYN for stream 1 is a new host. It only reads headers: bytes
// pass through unchanged.
type sessionSplitter struct {
	pass     int  // bytes of the current frame already vetted
	seenSYN1 bool // this session has had its stream 1
	off      bool // not yamux (bad version): stop looking
}

// vet returns how many bytes at the start of buf may go to this session
// (at most max), and whether buf starts with the next session's first
// frame. It keeps back a header until it is whole.
func (s *sessionSplitter) vet(buf []byte, max int) (n int, next bool) {
	if s.off {
		return min(len(buf), max), false
	}
	for n < len(buf) && n < max {
		if s.pass > 0 {
			k := min(s.pass, len(buf)-n, max-n)
			n += k
			s.pass -= k
			continue
		}
		if len(buf)-n < yamuxHeaderLen {
			break
		}
		h := buf[n : n+yamuxHeaderLen]
		if h[0] != 0 {
			s.off = true
			return min(len(buf), max), false
		}
		flags := binary.BigEndian.Uint16(h[2:4])
		id := binary.BigEndian.Uint32(h[4:8])
		if id == 1 && flags&yamuxFlagSYN != 0 {
			if s.seenSYN1 {
				return n, n == 0
			}
			s.seenSYN1 = true
		}
		s.pass = yamuxHeaderLen
		if h[1] == yamuxTypeData {
			s.pass += int(binary.BigEndian.Uint32(h[8:12]))
		}
	}
	return n, false
}
