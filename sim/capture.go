package sim

import (
	"errors"
	"io"

	"github.com/tapstack/tapstack/device"
)

// CaptureConfig says what a World's capture records. Timestamps are
// virtual (World.Time), so a capture replays byte for byte with its seed.
type CaptureConfig struct {
	// Delivered, if set, receives a pcap of every frame delivered to a
	// host, as delivered (a corrupted copy with its flipped bit), stamped
	// with its delivery time.
	Delivered io.Writer
	// Switches adds the frames arriving at switch ports to Delivered, so a
	// frame crossing a switch appears on both hops.
	Switches bool
	// Dropped, if set, receives a pcap of every frame a wire dropped,
	// stamped with the time it was sent. (Classic pcap has no per-frame
	// marks: being in this file is the mark; the reasons are counted in
	// each Dir's impair.Stats.)
	Dropped io.Writer
}

type capture struct {
	delivered, dropped *device.PcapWriter
	switches           bool
	err                error
}

// Capture starts recording frames as cfg says; the pcap file headers are
// written at once. A capture failure does not stop the run: the first one
// stops the capture and is kept for CaptureErr.
func (w *World) Capture(cfg CaptureConfig) error {
	if w.capture != nil {
		return errors.New("sim: capture already started")
	}
	c := &capture{switches: cfg.Switches}
	var err error
	if cfg.Delivered != nil {
		if c.delivered, err = device.NewPcapWriter(cfg.Delivered, device.LinkTypeEthernet, 0); err != nil {
			return err
		}
	}
	if cfg.Dropped != nil {
		if c.dropped, err = device.NewPcapWriter(cfg.Dropped, device.LinkTypeEthernet, 0); err != nil {
			return err
		}
	}
	w.capture = c
	return nil
}

// CaptureErr returns the error that stopped the capture, if any.
func (w *World) CaptureErr() error {
	if w.capture == nil {
		return nil
	}
	return w.capture.err
}

func (c *capture) deliver(w *World, d *Dir, frame []byte) {
	if c.delivered == nil || c.err != nil || (!c.switches && !d.to.isHost()) {
		return
	}
	c.err = c.delivered.WriteFrame(w.Time(w.now), frame)
}

func (c *capture) drop(w *World, frame []byte) {
	if c.dropped == nil || c.err != nil {
		return
	}
	c.err = c.dropped.WriteFrame(w.Time(w.now), frame)
}
