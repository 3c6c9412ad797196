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
	plotTop    = 34
	plotBottom = 46
	plotTicks  = 5
)

// WriteSVG draws a time-sequence graph of each flow, one panel below the
// other, as tcptrace's and Wireshark's do: time across, the sequence
// offset up; each segment a vertical tick over the offsets it carries —
// black when sent the first time, red when sent again, grey with a cross
// when the wire dropped it — the acknowledged offset as a green step line,
// and the right edge of the advertised window as a yellow one. Its output
// depends only on the flows: a run replayed from its seed draws the same
// file.
func WriteSVG(w io.Writer, flows []*TCPFlow) error {
	var b bytes.Buffer
	h := len(flows)*plotPanel + 1
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		plotWidth, h, plotWidth, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	for i, f := range flows {
		plotFlow(&b, f, i*plotPanel)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// plotScale maps a flow's time and offsets into a panel.
type plotScale struct {
	t0, t1 mono.Time
	y0, y1 int64
	top    int
}

func (s *plotScale) x(t mono.Time) float64 {
	return plotLeft + float64(t-s.t0)/float64(s.t1-s.t0)*(plotWidth-plotLeft-plotRight)
}

func (s *plotScale) y(v int64) float64 {
	v = min(max(v, s.y0), s.y1)
	inner := float64(plotPanel - plotTop - plotBottom)
	return float64(s.top+plotTop) + inner - float64(v-s.y0)/float64(s.y1-s.y0)*inner
}

// num formats a coordinate: fixed precision, so the file is reproducible.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func plotFlow(b *bytes.Buffer, f *TCPFlow, top int) {
	s := plotScale{t0: f.Stats.First, t1: f.Stats.Last, y0: -1, y1: 0, top: top}
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
	plotAxes(b, &s)

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
		fmt.Fprintf(b, `<polyline fill="none" stroke="#d4b000" stroke-width="1" points="%s"/>`+"\n", wnd.String())
		fmt.Fprintf(b, `<polyline fill="none" stroke="#1a9850" stroke-width="1" points="%s"/>`+"\n", ack.String())
	}
	for _, p := range []struct {
		d      *bytes.Buffer
		stroke string
	}{{&normal, "black"}, {&again, "#d73027"}, {&lost, "#999999"}} {
		if p.d.Len() > 0 {
			fmt.Fprintf(b, `<path fill="none" stroke="%s" stroke-width="1.5" d="%s"/>`+"\n", p.stroke, p.d.String())
		}
	}
	b.WriteString("</g>\n")
}

// plotAxes draws the frame, tick labels and axis names of a panel.
func plotAxes(b *bytes.Buffer, s *plotScale) {
	x0, x1 := float64(plotLeft), float64(plotWidth-plotRight)
	yTop, yBot := float64(s.top+plotTop), float64(s.top+plotPanel-plotBottom)
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
	fmt.Fprintf(b, `<text transform="translate(14 %s) rotate(-90)" text-anchor="middle">sequence offset</text>`+"\n", num((yTop+yBot)/2))
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
