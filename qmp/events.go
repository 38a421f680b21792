package qmp

import (
	"time"

	gqmp "github.com/digitalocean/go-qemu/qmp"
)

// subscriberBuffer is how many events a subscriber may fall behind before
// it loses some.
const subscriberBuffer = 256

// Event is an asynchronous QMP event (STOP, RESUME, SHUTDOWN, ...).
type Event struct {
	Name string
	Data map[string]any
	Time time.Time // QEMU's timestamp
}

type subscriber struct {
	ch      chan Event
	dropped uint64 // guarded by Monitor.mu
}

// Subscribe returns a channel of every event from now on, and a function
// that ends the subscription (and closes the channel). The channel is also
// closed when the monitor is done. A subscriber that falls more than
// subscriberBuffer events behind loses the newest ones: they are counted
// in Dropped, and never make the monitor wait.
func (m *Monitor) Subscribe() (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, subscriberBuffer)}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		close(s.ch)
		return s.ch, func() {}
	default:
	}
	m.subs[s] = struct{}{}
	return s.ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[s]; ok {
			delete(m.subs, s)
			close(s.ch)
		}
	}
}

// Dropped is how many events were lost to full subscribers so far.
func (m *Monitor) Dropped() uint64 { return m.dropped.Load() }

// drain consumes go-qemu's event channel until it closes (connection gone),
// then closes every subscriber and Done.
func (m *Monitor) drain(events <-chan gqmp.Event) {
	for e := range events {
		m.publish(toEvent(e))
	}
	m.finish()
}

// finish ends the monitor once: subscribers' channels close, then Done.
func (m *Monitor) finish() {
	m.finished.Do(func() {
		m.mu.Lock()
		for s := range m.subs {
			delete(m.subs, s)
			close(s.ch)
		}
		close(m.done)
		m.mu.Unlock()
	})
}

func (m *Monitor) publish(e Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped++
			m.dropped.Add(1)
			if s.dropped == 1 || s.dropped%1000 == 0 {
				m.log.WithField("event", e.Name).Warnf("slow QMP event subscriber: %d events dropped", s.dropped)
			}
		}
	}
}

func toEvent(e gqmp.Event) Event {
	t := time.Now()
	if e.Timestamp.Seconds > 0 {
		t = time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
	}
	return Event{Name: e.Event, Data: e.Data, Time: t}
}
