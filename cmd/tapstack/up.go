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

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/netstack"
)

// rate formats a byte rate.
func rate(bytes uint64, secs float64) string {
	r := float64(bytes) / secs
	switch {
	case r >= 1e9:
		return fmt.Sprintf("%.1f GB", r/1e9)
	case r >= 1e6:
		return fmt.Sprintf("%.1f MB", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1f kB", r/1e3)
	}
	return fmt.Sprintf("%.0f B", r)
}

func cmdUp(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	var f ifaceFlags
	f.register(fs, true)
	serve := fs.String("serve", "", "services to offer, NAME=PORT,...: "+strings.Join(serviceNames(), ", "))
	httpRoot := fs.String("http-root", ".", "directory the http service serves")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tapstack up --dev DEV --addr A.B.C.D/N [--gw G] [--mac MAC] [--mtu N] [--backend tap|raw] [--serve echo=7,discard=9,chargen=19,http=80] [--http-root DIR] [--pcap FILE] [--loss P] [--reorder P] [--dup P] [--corrupt P] [--delay DUR] [--seed N]")
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
	if st, err := os.Stat(*httpRoot); err != nil || !st.IsDir() {
		return usagef("--http-root %q is not a directory", *httpRoot)
	}
	ifc, err := openIface(c)
	if err != nil {
		return err
	}
	defer ifc.close()
	run, err := startServices(ifc.stack, svcs, *httpRoot)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tapstack: up on %s\n", ifc.describe())
	for _, sv := range svcs {
		fmt.Fprintf(stdout, "tapstack: serving %s on %s\n", sv.name, sv.protocols())
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
	var lastDev device.Stats
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
			d := ifc.counters.Stats()
			fmt.Fprintf(stdout, "\r\x1b[Kconns %d  rx %s/s  tx %s/s  drops %d",
				run.active(), rate(d.RxBytes-lastDev.RxBytes, secs), rate(d.TxBytes-lastDev.TxBytes, secs), drops(st)+deviceDrops(ifc))
			lastDev = d
			lastAt = now
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
	t := st.TCP
	n += t.Malformed + t.BadChecksum + t.NotUnicast + t.ListenOverflows
	return n
}

// deviceDrops counts frames the device layer dropped before the stack.
func deviceDrops(ifc *iface) uint64 {
	rx, tx := ifc.counters.Drops()
	return rx + tx
}

// printCounters prints every counter of the stack and the device, one per
// line, as "layer.Name value".
func printCounters(w io.Writer, ifc *iface) {
	v := reflect.ValueOf(ifc.stack.Stats())
	for i := range v.NumField() {
		printFields(w, strings.ToLower(v.Type().Field(i).Name), v.Field(i))
	}
	d := ifc.counters.Stats()
	fmt.Fprintf(w, "device.RxFrames %d\ndevice.TxFrames %d\ndevice.RxBytes %d\ndevice.TxBytes %d\n",
		d.RxFrames, d.TxFrames, d.RxBytes, d.TxBytes)
	rxDrop, txDrop := ifc.counters.Drops()
	fmt.Fprintf(w, "device.RxDropped %d\ndevice.TxDropped %d\n", rxDrop, txDrop)
	if ifc.impaired != nil {
		fmt.Fprintf(w, "impair %+v\n", ifc.impaired.Stats())
	}
}

// printFields prints the unsigned counters of struct v, descending into
// embedded and nested structs.
func printFields(w io.Writer, prefix string, v reflect.Value) {
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		switch {
		case !f.IsExported():
		case fv.Kind() == reflect.Struct && f.Anonymous:
			printFields(w, prefix, fv)
		case fv.Kind() == reflect.Struct:
			printFields(w, prefix+"."+f.Name, fv)
		case fv.CanUint():
			fmt.Fprintf(w, "%s.%s %d\n", prefix, f.Name, fv.Uint())
		}
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
