package sim

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
)

// Ping describes ping(8) from one host: Count echo requests, Interval
// apart, then a wait for the last replies.
type Ping struct {
	Dst      netip.Addr
	Count    int           // at most 65536
	Interval time.Duration // 0 means 1s
	Size     int           // ICMP payload bytes; 0 means 56
	Wait     time.Duration // after the last request; 0 means 1s
}

// Pinger runs a Ping. Its counters are final once its task is done.
type Pinger struct {
	Ping       Ping
	task       *Task
	conn       *netstack.PingConn
	done       context.Context // always cancelled: RecvEcho without blocking
	sentAt     []mono.Time
	seen       []bool
	next       mono.Time
	Sent       int
	Received   int // distinct replies
	Duplicates int
	RTT        RTTStats
}

// StartPing starts p on h; the first request goes out now.
func (w *World) StartPing(h *Host, p Ping) (*Pinger, error) {
	if p.Interval == 0 {
		p.Interval = time.Second
	}
	if p.Size == 0 {
		p.Size = 56
	}
	if p.Wait == 0 {
		p.Wait = time.Second
	}
	if p.Count < 0 || p.Count > 1<<16 || p.Interval < 0 || p.Wait < 0 {
		return nil, fmt.Errorf("sim: ping %v: bad Count, Interval or Wait", p.Dst)
	}
	c, err := h.stack.DialPing(p.Dst)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pg := &Pinger{Ping: p, conn: c, done: ctx, sentAt: make([]mono.Time, p.Count),
		seen: make([]bool, p.Count), next: w.now}
	pg.task = w.Spawn(fmt.Sprintf("ping/%s>%v", h.name, p.Dst), pg.step)
	return pg, nil
}

// Task returns the pinger's task.
func (pg *Pinger) Task() *Task { return pg.task }

// PingConn has no readiness callback, so the task looks for replies when
// its timer wakes it: each reply carries the instant the stack received
// it, so the round-trip times are exact all the same.
func (pg *Pinger) step(t *Task) {
	for {
		e, err := pg.conn.RecvEcho(pg.done)
		if err != nil {
			break
		}
		seq := int(e.Seq)
		if seq >= pg.Sent {
			t.Exit(integrityf("echo reply %d before its request", seq))
			return
		}
		if pg.seen[seq] {
			pg.Duplicates++
			continue
		}
		pg.seen[seq] = true
		pg.Received++
		pg.RTT.add(e.At.Sub(pg.sentAt[seq]))
	}
	p := &pg.Ping
	for pg.Sent < p.Count && pg.next <= t.Now() {
		pg.sentAt[pg.Sent] = t.Now()
		_ = pg.conn.SendEcho(uint16(pg.Sent), p.Size) // an error is a lost request
		pg.Sent++
		pg.next = pg.next.Add(p.Interval)
	}
	if pg.Sent == p.Count {
		end := pg.sentAt[max(p.Count-1, 0)].Add(p.Wait)
		if p.Count == 0 || pg.Received == p.Count || t.Now() >= end {
			pg.conn.Close()
			t.Exit(nil)
			return
		}
		// Look again every interval until the wait is over.
		t.WakeAt(min(t.Now().Add(p.Interval), end))
		return
	}
	t.WakeAt(pg.next)
}
