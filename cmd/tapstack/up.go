package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/netstack"
)

func cmdUp(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	var f ifaceFlags
	f.register(fs, true)
	serve := fs.String("serve", "", "services to offer, NAME=PORT,...: "+strings.Join(serviceNames(), ", "))
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tapstack up --dev DEV --addr A.B.C.D/N [--gw G] [--mac MAC] [--mtu N] [--backend tap|raw] [--serve echo=7,discard=9,chargen=19] [--pcap FILE] [--loss P] [--reorder P] [--dup P] [--corrupt P] [--delay DUR] [--seed N]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("up takes no arguments, only flags (got %q)", pos[0])
	}
	svcs, err := parseServices(*serve)
	if err != nil {
		return err
	}
	c, err := f.check()
	if err != nil {
		return err
	}
	ifc, err := openIface(c)
	if err != nil {
		return err
	}
	defer ifc.close()
	run, err := startServices(ifc.stack, svcs)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tapstack: up on %s\n", ifc.describe())
	for _, sv := range svcs {
		fmt.Fprintf(stdout, "tapstack: serving %s on udp/%d\n", sv.name, sv.port)
	}
	if d := describeImpairments(c.ifaceFlags); d != "" {
		fmt.Fprintf(stdout, "tapstack: impairments: %s\n", d)
	}
	if c.pcap != "" {
		fmt.Fprintf(stdout, "tapstack: capturing to %s\n", c.pcap)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	var status <-chan time.Time
	term := isTerminal(stdout)
	if term {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		status = t.C
	}
	var last netstack.Stats
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			if term {
				fmt.Fprintln(stdout)
			}
			fmt.Fprintln(stdout, "tapstack: shutting down")
			run.close()
			return ifc.close()
		case <-usr1:
			printCounters(stdout, ifc)
		case now := <-status:
			st := ifc.stack.Stats()
			secs := now.Sub(lastAt).Seconds()
			fmt.Fprintf(stdout, "\r\x1b[Krx %.0f frames/s  tx %.0f frames/s  drops %d",
				float64(st.Link.FramesReceived-last.Link.FramesReceived)/secs,
				float64(st.Link.FramesSent-last.Link.FramesSent)/secs, drops(st))
			last, lastAt = st, now
		}
	}
}

// drops adds up every counted drop.
func drops(st netstack.Stats) uint64 {
	var n uint64
	l := st.Link
	n += l.Malformed + l.VLANTagged + l.UnknownEtherType + l.RxErrors + l.TxErrors
	a := st.ARP
	n += a.Malformed + a.PendingDropped + a.CacheFull
	i := st.IPv4
	n += i.Truncated + i.Malformed + i.BadChecksum + i.BadSource + i.UnknownProtocol +
		i.FragmentsMalformed + i.FragmentsOverlapping + i.ReassemblyTimeouts + i.ReassemblyEvicted
	c := st.ICMP
	n += c.Malformed + c.BadChecksum
	u := st.UDP
	n += u.Malformed + u.BadChecksum + u.NoPort + u.ReceiveBufferErrors
	return n
}

// printCounters prints every counter of the stack and the device, one per
// line, as "layer.Name value".
func printCounters(w io.Writer, ifc *iface) {
	st := ifc.stack.Stats()
	v := reflect.ValueOf(st)
	for i := range v.NumField() {
		layer := v.Type().Field(i).Name
		lv := v.Field(i)
		for j := range lv.NumField() {
			fmt.Fprintf(w, "%s.%s %d\n", strings.ToLower(layer), lv.Type().Field(j).Name, lv.Field(j).Uint())
		}
	}
	d := ifc.counters.Stats()
	fmt.Fprintf(w, "device.RxFrames %d\ndevice.TxFrames %d\ndevice.RxBytes %d\ndevice.TxBytes %d\n",
		d.RxFrames, d.TxFrames, d.RxBytes, d.TxBytes)
	if ifc.impaired != nil {
		fmt.Fprintf(w, "impair %+v\n", ifc.impaired.Stats())
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
