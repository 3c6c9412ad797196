package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/netstack"
	"github.com/tapstack/tapstack/sim/impair"
)

// iface is a stack brought up on a device, with its wrappers.
type iface struct {
	cfg      ifaceConfig
	stack    *netstack.Stack
	nic      *netstack.NIC
	counters *device.Counters
	impaired *impair.Device // nil without impairments
	pcapFile *os.File
	pcapBuf  *bufio.Writer
	mac      string
}

// openIface opens the device, wraps it (impairments, capture, counters)
// and attaches a new stack to it.
func openIface(c ifaceConfig) (_ *iface, err error) {
	dcfg := device.Config{MAC: c.hw}
	if c.offload {
		if describeImpairments(c.ifaceFlags) != "" {
			// The impairment layer decides per frame; a super-segment
			// is dozens of frames to the peer.
			return nil, usagef("--offload cannot be combined with impairments (--loss, --reorder, --dup, --corrupt, --delay)")
		}
		dcfg.Offloads = device.OffloadAll
	}
	var dev device.Device
	switch c.backend {
	case "tap":
		dev, err = device.OpenTAP(c.dev, dcfg)
	case "raw":
		dev, err = device.OpenRaw(c.dev, dcfg)
	}
	if err != nil {
		return nil, &setupError{err}
	}
	ifc := &iface{cfg: c, mac: dev.LinkAddr().String()}
	defer func() {
		if err != nil {
			dev.Close()
			if ifc.pcapFile != nil {
				ifc.pcapFile.Close()
			}
		}
	}()
	if imp := impairConfig(c.ifaceFlags); describeImpairments(c.ifaceFlags) != "" {
		ifc.impaired, err = impair.WrapDevice(dev, imp, imp, c.seed)
		if err != nil {
			return nil, usagef("impairments: %v", err)
		}
		dev = ifc.impaired
	}
	if c.pcap != "" {
		f, err := os.Create(c.pcap)
		if err != nil {
			return nil, &setupError{fmt.Errorf("--pcap: %w", err)}
		}
		ifc.pcapFile, ifc.pcapBuf = f, bufio.NewWriterSize(f, 1<<16)
		p, err := device.NewPcap(dev, ifc.pcapBuf, time.Now)
		if err != nil {
			return nil, err
		}
		dev = p
	}
	ifc.counters = device.NewCounters(dev)
	ifc.stack = netstack.New(netstack.Config{TCP: c.tcp})
	ifc.nic, err = ifc.stack.AttachDevice(ifc.counters, netstack.NICConfig{
		Name: c.dev, MTU: c.mtu, Addrs: []netip.Prefix{c.prefix}})
	if err != nil {
		ifc.stack.Close()
		return nil, &setupError{err}
	}
	if c.gwAddr.IsValid() {
		if err := ifc.stack.SetDefaultGateway(ifc.nic, c.gwAddr); err != nil {
			ifc.stack.Close()
			return nil, err
		}
	}
	return ifc, nil
}

func impairConfig(f ifaceFlags) impair.Config {
	return impair.Config{Loss: f.loss, Reorder: f.reorder, Duplicate: f.dup, Corrupt: f.corrupt, Delay: f.delay}
}

// close stops the stack (closing the device chain) and finishes the capture.
func (ifc *iface) close() error {
	err := ifc.stack.Close()
	if ifc.pcapFile != nil {
		err = errors.Join(err, ifc.pcapBuf.Flush(), ifc.pcapFile.Close())
	}
	return err
}

func (ifc *iface) describe() string {
	s := fmt.Sprintf("%s (%s) %v MAC %s MTU %d", ifc.cfg.dev, ifc.cfg.backend, ifc.cfg.prefix, ifc.mac, ifc.nic.MTU())
	if ifc.cfg.gwAddr.IsValid() {
		s += " gateway " + ifc.cfg.gwAddr.String()
	}
	return s
}
