package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
)

// report gathers the children's results and renders the tables: one per
// group of cases that share columns (see tableOf).
type report struct {
	specs   []spec
	stacks  []string // the stacks selected (-stacks)
	results []result
	by      map[string]map[string][]result // case -> stack -> runs

	machine machine
	load    [2]string // 1-minute load average before and after
	command string
	date    string
}

func newReport(specs []spec, stackSel []string) *report {
	return &report{specs: specs, stacks: stackSel, by: map[string]map[string][]result{}}
}

func (r *report) add(res result) {
	r.results = append(r.results, res)
	if r.by[res.Case] == nil {
		r.by[res.Case] = map[string][]result{}
	}
	r.by[res.Case][res.Stack] = append(r.by[res.Case][res.Stack], res)
}

func (r *report) failures() int {
	n := 0
	for _, res := range r.results {
		if res.Error != "" {
			n++
		}
	}
	return n
}

// cell is one stack's figure for one metric over the runs.
type cell struct {
	Values        []float64 `json:"values,omitempty"`
	Min, Med, Max float64   `json:"-"`
	Unavailable   string    `json:"unavailable,omitempty"`
	Failed        int       `json:"failed,omitempty"`
}

func (c cell) String() string {
	switch {
	case len(c.Values) > 0 && c.Failed > 0:
		return fmt.Sprintf("%s (%d failed)", c.triple(), c.Failed)
	case len(c.Values) > 0:
		return c.triple()
	case c.Failed > 0:
		return "FAILED"
	case c.Unavailable != "":
		return "not available"
	}
	return "-"
}

func (c cell) triple() string {
	if len(c.Values) == 1 {
		return fmtValue(c.Med)
	}
	return fmt.Sprintf("%s / %s / %s", fmtValue(c.Min), fmtValue(c.Med), fmtValue(c.Max))
}

// row is one line of the table.
type row struct {
	Case   string          `json:"case"`
	Metric string          `json:"metric"`
	Unit   string          `json:"unit"`
	Better string          `json:"better"`
	Cells  map[string]cell `json:"stacks"`
	Ratio  float64         `json:"ratio"` // tapstack median / gVisor median; NaN when either is missing
	// Ratios are the table's ratio columns beyond Ratio, keyed
	// "tapstack/kernel" and so on; NaN when either median is missing.
	Ratios map[string]float64 `json:"ratios,omitempty"`
}

func ratioString(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func (w row) ratioString() string { return ratioString(w.Ratio) }

// table is a group of cases shown with the same columns: its stacks, then
// ratios of their medians.
type table struct {
	stacks []string
	ratios [][2]string // numerator and denominator stacks
}

var (
	pairTable   = table{stacks: stacks, ratios: [][2]string{{"tapstack", "gvisor"}}}
	kernelTable = table{stacks: kernelStacks,
		ratios: [][2]string{{"tapstack", "gvisor"}, {"tapstack-gso", "gvisor-gso"}, {"tapstack-gso", "kernel"}}}
)

// tableOf is the table a case kind belongs to.
func tableOf(kind string) *table {
	if kind == "kernel" {
		return &kernelTable
	}
	return &pairTable
}

// stacksFor is the stacks a case runs on: those of selected (in its
// order) that its table has.
func stacksFor(sp spec, selected []string) []string {
	var out []string
	for _, st := range selected {
		if slices.Contains(tableOf(sp.Kind).stacks, st) {
			out = append(out, st)
		}
	}
	return out
}

// tables returns the report's tables that have cases, in the order their
// first case was planned, each with its cases.
func (r *report) tables() []*table {
	var out []*table
	for _, sp := range r.specs {
		if t := tableOf(sp.Kind); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// columns are a table's stack columns under the selection.
func (r *report) columns(t *table) []string {
	var out []string
	for _, st := range t.stacks {
		if slices.Contains(r.stacks, st) {
			out = append(out, st)
		}
	}
	return out
}

// ratioCols are a table's ratio columns whose stacks are both selected.
func (r *report) ratioCols(t *table) [][2]string {
	var out [][2]string
	for _, q := range t.ratios {
		if slices.Contains(r.stacks, q[0]) && slices.Contains(r.stacks, q[1]) {
			out = append(out, q)
		}
	}
	return out
}

// rows computes every table's rows: for each case, each metric any run
// reported.
func (r *report) rows() []row {
	var out []row
	for _, t := range r.tables() {
		out = append(out, r.tableRows(t)...)
	}
	return out
}

func (r *report) tableRows(t *table) []row {
	var out []row
	cols := r.columns(t)
	for _, sp := range r.specs {
		if tableOf(sp.Kind) != t {
			continue
		}
		runs := r.by[sp.Name]
		// Metric names and units in the order the workload reports them,
		// from whichever stack produced them.
		var metrics []metric
		for _, st := range cols {
			for _, res := range runs[st] {
				for _, m := range res.Metrics {
					if !slices.ContainsFunc(metrics, func(x metric) bool { return x.Name == m.Name }) {
						metrics = append(metrics, m)
					}
				}
			}
		}
		if len(metrics) == 0 {
			metrics = []metric{{Name: "-"}}
		}
		for _, m := range metrics {
			w := row{Case: sp.Name, Metric: m.Name, Unit: m.Unit, Better: m.Better, Cells: map[string]cell{}, Ratio: math.NaN()}
			for _, st := range cols {
				var c cell
				for _, res := range runs[st] {
					switch {
					case res.Error != "":
						c.Failed++
					case res.Unavailable != "":
						c.Unavailable = res.Unavailable
					}
					for _, x := range res.Metrics {
						if x.Name == m.Name {
							c.Values = append(c.Values, x.Value)
						}
					}
				}
				if len(c.Values) > 0 {
					s := slices.Clone(c.Values)
					slices.Sort(s)
					c.Min, c.Max, c.Med = s[0], s[len(s)-1], median(s)
				}
				w.Cells[st] = c
			}
			for i, q := range r.ratioCols(t) {
				a, b := w.Cells[q[0]], w.Cells[q[1]]
				v := math.NaN()
				if len(a.Values) > 0 && len(b.Values) > 0 && b.Med != 0 {
					v = a.Med / b.Med
				}
				if i == 0 && q == [2]string{"tapstack", "gvisor"} {
					w.Ratio = v
					continue
				}
				if w.Ratios == nil {
					w.Ratios = map[string]float64{}
				}
				w.Ratios[q[0]+"/"+q[1]] = v
			}
			out = append(out, w)
		}
	}
	return out
}

// median of sorted values; the mean of the middle two for an even count.
func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// fmtValue prints three significant digits, without exponents in the
// range the table uses.
func fmtValue(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

var stackTitle = map[string]string{"tapstack": "tapstack", "tapstack-gso": "tapstack GSO", "gvisor": "gVisor",
	"gvisor-gso": "gVisor GSO", "kernel": "kernel"}

func (r *report) header(t *table) []string {
	h := []string{"case", "metric", "unit", "better"}
	for _, st := range r.columns(t) {
		h = append(h, stackTitle[st]+" min / median / max")
	}
	for _, q := range r.ratioCols(t) {
		h = append(h, stackTitle[q[0]]+"/"+stackTitle[q[1]])
	}
	return h
}

func (r *report) cells(t *table, w row) []string {
	out := []string{w.Case, w.Metric, w.Unit, w.Better}
	for _, st := range r.columns(t) {
		out = append(out, w.Cells[st].String())
	}
	for _, q := range r.ratioCols(t) {
		if q == [2]string{"tapstack", "gvisor"} {
			out = append(out, w.ratioString())
		} else {
			out = append(out, ratioString(w.Ratios[q[0]+"/"+q[1]]))
		}
	}
	return out
}

func (r *report) writeText(out io.Writer) {
	fmt.Fprintf(out, "%s; load average %s before, %s after\n", r.machine, r.load[0], r.load[1])
	for i, t := range r.tables() {
		if i > 0 {
			fmt.Fprintln(out)
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(r.header(t), "\t"))
		for _, w := range r.tableRows(t) {
			fmt.Fprintln(tw, strings.Join(r.cells(t, w), "\t"))
		}
		tw.Flush()
	}
	r.writeNotes(out, "")
}

func (r *report) writeMarkdown(out io.Writer) {
	fmt.Fprintf(out, "Machine: %s  \n", r.machine)
	fmt.Fprintf(out, "Command: `%s`  \n", r.command)
	fmt.Fprintf(out, "Date: %s; load average %s before, %s after\n\n", r.date, r.load[0], r.load[1])
	for _, t := range r.tables() {
		h := r.header(t)
		fmt.Fprintf(out, "| %s |\n", strings.Join(h, " | "))
		seps := make([]string, len(h))
		for i := range seps {
			seps[i] = "---"
			if i >= 4 {
				seps[i] = "---:"
			}
		}
		fmt.Fprintf(out, "|%s|\n", strings.Join(seps, "|"))
		for _, w := range r.tableRows(t) {
			fmt.Fprintf(out, "| %s |\n", strings.Join(r.cells(t, w), " | "))
		}
		fmt.Fprintln(out)
	}
	r.writeNotes(out, "- ")
}

// writeNotes lists why cells are "not available" and what failed.
func (r *report) writeNotes(out io.Writer, bullet string) {
	seen := map[string]bool{}
	for _, res := range r.results {
		var note string
		switch {
		case res.Unavailable != "":
			note = fmt.Sprintf("%s: not available: %s", stackTitle[res.Stack], res.Unavailable)
		case res.Error != "":
			note = fmt.Sprintf("%s, %s, run %d: FAILED: %s", stackTitle[res.Stack], res.Case, res.Run, firstLine(res.Error))
		default:
			continue
		}
		if !seen[note] {
			seen[note] = true
			fmt.Fprintln(out, bullet+note)
		}
	}
}

func (r *report) jsonValue() any {
	rows := r.rows()
	for i := range rows {
		if math.IsNaN(rows[i].Ratio) {
			rows[i].Ratio = 0
		}
		for k, v := range rows[i].Ratios {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				delete(rows[i].Ratios, k)
			}
		}
	}
	return map[string]any{
		"machine": r.machine,
		"command": r.command,
		"date":    r.date,
		"load":    r.load,
		"rows":    rows,
		"results": r.results,
	}
}

// machine describes where the numbers come from.
type machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"model"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	GVisor string `json:"gvisor"`
	// Tapstack is the commit of the tree the harness was built against
	// (go.mod's replace points at it), "+dirty" when it had changes.
	Tapstack string `json:"tapstack"`
}

func (m machine) String() string {
	return fmt.Sprintf("%d CPUs, %s, Linux %s, %s, tapstack %s, gVisor %s", m.CPUs, m.Model, m.Kernel, m.Go, m.Tapstack, m.GVisor)
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Model: "unknown CPU", Kernel: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Tapstack = tapstackCommit()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "gvisor.dev/gvisor" {
				m.GVisor = d.Version
			}
		}
	}
	return m
}

// tapstackCommit names the commit of the enclosing tapstack tree, when the
// harness runs inside one (go -C bench run, or from bench/).
func tapstackCommit() string {
	out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	// Changes outside bench/ are what the figures depend on.
	st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}
