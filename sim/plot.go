package sim

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"strconv"
	"time"

	"github.com/tapstack/tapstack/mono"
)

// Plot geometry, in SVG user units.
const (
	plotWidth  = 960
	plotPanel  = 320 // height of one flow's panel
	plotLeft   = 90
	plotRight  = 40
	plotTop    = 48 // a title line and a legend line
	plotBottom = 46
	plotTicks  = 5
	// plotCwnd is the height of the panel under a flow whose sender was
	// sampled: its congestion window over the same time axis.
	plotCwnd = 200
)

// Colours of the plot, named for what they draw.
const (
	colourSent    = "black"
	colourAgain   = "#d73027"
	colourDropped = "#999999"
	colourAck     = "#1a9850"
	colourWindow  = "#d4b000"
	colourSACK    = "#7b3294"
	colourDSACK   = "#f46d43"
	colourCwnd    = "#2166ac"
	colourSsth    = "#e08214"
	colourFlight  = "#7f7f7f"
	colourRecov   = "#fde0dd"
)

// WriteSVG draws a time-sequence graph of each flow, one panel below the
// other, as tcptrace's and Wireshark's do: time across, the sequence
// offset up; each segment a vertical tick over the offsets it carries —
// black when sent the first time, red when sent again, grey with a cross
// when the wire dropped it — the acknowledged offset as a green step line,
// the right edge of the advertised window as a yellow one, and the ranges
// SACK options reported held as purple ticks at the ACK's arrival (orange
// for D-SACKs). Under a flow whose Sender was sampled, a second panel on
// the same time axis draws the sending stack's congestion window (blue)
// and slow-start threshold (orange, dashed, once set), the data in flight
// as the wire saw it (grey), fast recoveries as shaded spans and
// retransmission timeouts as red marks. Its output depends only on the
// flows: a run replayed from its seed draws the same file.
func WriteSVG(w io.Writer, flows []*TCPFlow) error {
	var b bytes.Buffer
	h := 1
	for _, f := range flows {
		h += flowHeight(f)
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		plotWidth, h, plotWidth, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	top := 0
	for _, f := range flows {
		plotFlow(&b, f, top)
		top += flowHeight(f)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func flowHeight(f *TCPFlow) int {
	if f.Sender != nil && len(f.Sender.Samples) > 0 {
		return plotPanel + plotCwnd
	}
	return plotPanel
}

// plotScale maps a flow's time and offsets into a panel.
type plotScale struct {
	t0, t1 mono.Time
	y0, y1 int64
	top    int
	height int // of the panel, axes and labels included
}

func (s *plotScale) x(t mono.Time) float64 {
	return plotLeft + float64(t-s.t0)/float64(s.t1-s.t0)*(plotWidth-plotLeft-plotRight)
}

func (s *plotScale) y(v int64) float64 {
	v = min(max(v, s.y0), s.y1)
	inner := float64(s.height - plotTop - plotBottom)
	return float64(s.top+plotTop) + inner - float64(v-s.y0)/float64(s.y1-s.y0)*inner
}

// num formats a coordinate: fixed precision, so the file is reproducible.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func plotFlow(b *bytes.Buffer, f *TCPFlow, top int) {
	s := plotScale{t0: f.Stats.First, t1: f.Stats.Last, y0: -1, y1: 0, top: top, height: plotPanel}
	for _, seg := range f.Segments {
		s.y1 = max(s.y1, seg.End)
	}
	for _, a := range f.Acks {
		s.t1 = max(s.t1, a.At)
	}
	if s.t1 <= s.t0 {
		s.t1 = s.t0 + 1
	}
	s.y1 += (s.y1-s.y0)/20 + 1 // room above the last segment
	fmt.Fprintf(b, `<g><text x="%d" y="%d" font-size="13">%s</text>`+"\n", plotLeft, top+20,
		html.EscapeString(fmt.Sprintf("%v → %v: %d bytes, %d segments, %d sent again, %d dropped by the wire",
			f.Src, f.Dst, f.Stats.Bytes, f.Stats.Segments, f.Stats.Retransmits, f.Stats.Dropped)))
	plotAxes(b, &s, "sequence offset")
	plotLegend(b, top, []legendItem{{colourSent, "sent"}, {colourAgain, "sent again"}, {colourDropped, "dropped"},
		{colourAck, "ACK"}, {colourWindow, "window"}, {colourSACK, "SACK"}, {colourDSACK, "D-SACK"}})

	var normal, again, lost bytes.Buffer
	for _, seg := range f.Segments {
		x, y0, y1 := num(s.x(seg.At)), num(s.y(seg.Seq)), num(s.y(seg.End))
		switch {
		case seg.Dropped:
			fmt.Fprintf(&lost, "M%s %sV%s", x, y0, y1)
			xx, yy := s.x(seg.At), s.y(seg.End)
			fmt.Fprintf(&lost, "M%s %sl5 5m0 -5l-5 5", num(xx-2.5), num(yy-2.5))
		case seg.Retransmit:
			fmt.Fprintf(&again, "M%s %sV%s", x, y0, y1)
		default:
			fmt.Fprintf(&normal, "M%s %sV%s", x, y0, y1)
		}
	}
	var ack, wnd bytes.Buffer
	prev, prevWnd := int64(-1), int64(-1)
	for i, a := range f.Acks {
		x := num(s.x(a.At))
		if i == 0 {
			fmt.Fprintf(&ack, "%s,%s", x, num(s.y(a.Ack)))
			fmt.Fprintf(&wnd, "%s,%s", x, num(s.y(a.Ack+a.Window)))
		} else {
			fmt.Fprintf(&ack, " %s,%s %s,%s", x, num(s.y(prev)), x, num(s.y(a.Ack)))
			fmt.Fprintf(&wnd, " %s,%s %s,%s", x, num(s.y(prevWnd)), x, num(s.y(a.Ack+a.Window)))
		}
		prev, prevWnd = a.Ack, a.Ack+a.Window
	}
	if len(f.Acks) > 0 {
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1" points="%s"/>`+"\n", colourWindow, wnd.String())
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1" points="%s"/>`+"\n", colourAck, ack.String())
	}
	var sack, dsack bytes.Buffer
	for _, r := range f.SACKs {
		d := &sack
		if r.DSACK {
			d = &dsack
		}
		fmt.Fprintf(d, "M%s %sV%s", num(s.x(r.At)), num(s.y(r.Start)), num(s.y(r.End)))
	}
	for _, p := range []struct {
		d      *bytes.Buffer
		stroke string
	}{{&sack, colourSACK}, {&dsack, colourDSACK}, {&normal, colourSent}, {&again, colourAgain}, {&lost, colourDropped}} {
		if p.d.Len() > 0 {
			fmt.Fprintf(b, `<path fill="none" stroke="%s" stroke-width="1.5" d="%s"/>`+"\n", p.stroke, p.d.String())
		}
	}
	if f.Sender != nil && len(f.Sender.Samples) > 0 {
		plotCwndPanel(b, f, s.t0, s.t1, top+plotPanel)
	}
	b.WriteString("</g>\n")
}

// noSsthresh is a slow-start threshold not set yet: tcp starts it at 2^30.
const noSsthresh = 1 << 30

// plotCwndPanel draws the sender's congestion window, slow-start
// threshold, recoveries and timeouts, and the wire's data in flight,
// between t0 and t1.
func plotCwndPanel(b *bytes.Buffer, f *TCPFlow, t0, t1 mono.Time, top int) {
	ss := f.Sender.Samples
	s := plotScale{t0: t0, t1: t1, y0: 0, y1: 1, top: top, height: plotCwnd}
	for _, x := range ss {
		s.y1 = max(s.y1, int64(x.Cwnd))
		if x.Ssthresh < noSsthresh {
			s.y1 = max(s.y1, int64(x.Ssthresh))
		}
	}
	for _, x := range f.Flight {
		s.y1 = max(s.y1, x.Bytes)
	}
	s.y1 += s.y1 / 20
	plotAxes(b, &s, "bytes")
	plotLegend(b, top, []legendItem{{colourCwnd, "cwnd (" + f.Sender.Name + ")"}, {colourSsth, "ssthresh"},
		{colourFlight, "in flight (wire)"}, {colourRecov, "fast recovery"}, {colourAgain, "timeout"}})
	clamp := func(t mono.Time) mono.Time { return min(max(t, t0), t1) }

	// Recoveries: spans where InRecovery holds.
	var recov bytes.Buffer
	yTop, yBot := s.y(s.y1), s.y(0)
	for i := 0; i < len(ss); i++ {
		if !ss[i].InRecovery {
			continue
		}
		j := i
		for j < len(ss) && ss[j].InRecovery {
			j++
		}
		end := t1
		if j < len(ss) {
			end = ss[j].At
		}
		x0, x1 := s.x(clamp(ss[i].At)), s.x(clamp(end))
		fmt.Fprintf(&recov, "M%s %sH%sV%sH%sZ", num(x0), num(yTop), num(x1), num(yBot), num(x0))
		i = j
	}
	if recov.Len() > 0 {
		fmt.Fprintf(b, `<path fill="%s" stroke="none" d="%s"/>`+"\n", colourRecov, recov.String())
	}

	var flight bytes.Buffer
	for i, x := range f.Flight {
		if i == 0 {
			fmt.Fprintf(&flight, "M%s %s", num(s.x(clamp(x.At))), num(s.y(x.Bytes)))
		} else {
			fmt.Fprintf(&flight, "H%sV%s", num(s.x(clamp(x.At))), num(s.y(x.Bytes)))
		}
	}
	if flight.Len() > 0 {
		fmt.Fprintf(b, `<path fill="none" stroke="%s" stroke-width="1" d="%s"/>`+"\n", colourFlight, flight.String())
	}

	// The windows as step lines; ssthresh only where it is set.
	var cwnd, ssth, rto bytes.Buffer
	ssOn := false
	for i, x := range ss {
		px := num(s.x(clamp(x.At)))
		if i == 0 {
			fmt.Fprintf(&cwnd, "M%s %s", px, num(s.y(int64(x.Cwnd))))
		} else {
			fmt.Fprintf(&cwnd, "H%sV%s", px, num(s.y(int64(x.Cwnd))))
		}
		switch on := x.Ssthresh < noSsthresh; {
		case on && ssOn:
			fmt.Fprintf(&ssth, "H%sV%s", px, num(s.y(int64(x.Ssthresh))))
		case on:
			fmt.Fprintf(&ssth, "M%s %s", px, num(s.y(int64(x.Ssthresh))))
		case ssOn:
			fmt.Fprintf(&ssth, "H%s", px)
		}
		ssOn = x.Ssthresh < noSsthresh
		if i > 0 && x.Timeouts > ss[i-1].Timeouts && x.At >= t0 && x.At <= t1 {
			fmt.Fprintf(&rto, "M%s %sv8m-4 -4h8", px, num(yTop))
		}
	}
	end := num(s.x(t1))
	cwnd.WriteString("H" + end)
	if ssOn {
		ssth.WriteString("H" + end)
	}
	if ssth.Len() > 0 {
		fmt.Fprintf(b, `<path fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="5 3" d="%s"/>`+"\n", colourSsth, ssth.String())
	}
	fmt.Fprintf(b, `<path fill="none" stroke="%s" stroke-width="1.5" d="%s"/>`+"\n", colourCwnd, cwnd.String())
	if rto.Len() > 0 {
		fmt.Fprintf(b, `<path fill="none" stroke="%s" stroke-width="2" d="%s"/>`+"\n", colourAgain, rto.String())
	}
}

type legendItem struct{ colour, label string }

// plotLegend writes a row of colour keys at the top right of a panel.
func plotLegend(b *bytes.Buffer, top int, items []legendItem) {
	b.WriteString(`<g font-size="10">`)
	x := float64(plotWidth - plotRight)
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		x -= float64(7*len([]rune(it.label)) + 22)
		fmt.Fprintf(b, `<rect x="%s" y="%d" width="10" height="10" fill="%s"/><text x="%s" y="%d">%s</text>`,
			num(x), top+plotTop-17, it.colour, num(x+13), top+plotTop-8, html.EscapeString(it.label))
	}
	b.WriteString("</g>\n")
}

// plotAxes draws the frame, tick labels and axis names of a panel.
func plotAxes(b *bytes.Buffer, s *plotScale, yName string) {
	x0, x1 := float64(plotLeft), float64(plotWidth-plotRight)
	yTop, yBot := float64(s.top+plotTop), float64(s.top+s.height-plotBottom)
	fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#444"/>`+"\n",
		num(x0), num(yTop), num(x1-x0), num(yBot-yTop))
	for i := 0; i <= plotTicks; i++ {
		t := s.t0 + mono.Time(int64(s.t1-s.t0)*int64(i)/plotTicks)
		x := num(s.x(t))
		fmt.Fprintf(b, `<path stroke="#ddd" d="M%s %sV%s"/><text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n",
			x, num(yTop), num(yBot), x, num(yBot+15), html.EscapeString(plotTime(t-s.t0)))
		v := s.y0 + (s.y1-s.y0)*int64(i)/plotTicks
		y := num(s.y(v))
		fmt.Fprintf(b, `<path stroke="#ddd" d="M%s %sH%s"/><text x="%s" y="%s" text-anchor="end">%s</text>`+"\n",
			num(x0), y, num(x1), num(x0-6), y, plotBytes(v))
	}
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle">time since %s</text>`+"\n", num((x0+x1)/2), num(yBot+32), html.EscapeString(plotTime(s.t0)))
	fmt.Fprintf(b, `<text transform="translate(14 %s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", num((yTop+yBot)/2), yName)
}

func plotTime(t mono.Time) string { return time.Duration(t).Round(time.Microsecond).String() }

func plotBytes(v int64) string {
	switch {
	case v >= 10<<20 || v <= -10<<20:
		return strconv.FormatInt(v>>20, 10) + " MiB"
	case v >= 10<<10 || v <= -10<<10:
		return strconv.FormatInt(v>>10, 10) + " KiB"
	}
	return strconv.FormatInt(v, 10)
}
