package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one figure of the report.
type row struct {
	// Scenario is the scenario's name, as -scenarios takes it.
	Scenario string `json:"scenario"`
	// Measure says what was measured.
	Measure string `json:"measure"`
	// Value is the figure, formatted with its unit.
	Value string `json:"value"`
	// Number is the figure in Unit, for tools that read the JSON.
	Number float64 `json:"number"`
	// Unit is the unit of Number.
	Unit string `json:"unit"`
	// Baseline is the same run's baseline figure for this measure, formatted.
	Baseline string `json:"baseline,omitempty"`
	// Target is the figure the project aims for.
	Target string `json:"target,omitempty"`
	// Met is "yes" or "no" when there is a target.
	Met string `json:"met,omitempty"`
}

// note is a line of explanation under the table: what a figure consists of, or what limited it.
type note struct {
	// Scenario is the scenario the note belongs to.
	Scenario string `json:"scenario"`
	// Text is the note.
	Text string `json:"text"`
}

// report is everything a run writes.
type report struct {
	// Started is when the run started.
	Started time.Time `json:"started"`
	// Duration is how long the run took, in seconds.
	Duration float64 `json:"durationSeconds"`
	// Machine describes where it ran.
	Machine string `json:"machine"`
	// Commit is the repository's HEAD, with "-dirty" when the tree had changes.
	Commit string `json:"commit"`
	// Flags are the bench's flags.
	Flags map[string]string `json:"flags"`
	// Rows are the figures.
	Rows []row `json:"rows"`
	// Notes explain the figures.
	Notes []note `json:"notes"`
	// Errors are scenarios that failed, with why.
	Errors []note `json:"errors,omitempty"`
}

// met returns "yes" or "no".
func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// writeText prints the report as an aligned table with the notes below it.
func (r *report) writeText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMEASURE\tVALUE\tBASELINE (SAME RUN)\tTARGET\tMET")
	for _, r := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Measure, r.Value, dash(r.Baseline), dash(r.Target), dash(r.Met))
	}
	_ = tw.Flush()
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s: %s\n", n.Scenario, n.Text)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "FAILED %s: %s\n", e.Scenario, e.Text)
	}
	fmt.Fprintf(w, "\n%s, commit %s, %s wall time\n", r.Machine, r.Commit, time.Duration(r.Duration*float64(time.Second)).Round(time.Second))
}

// writeMarkdown writes the report as a Markdown table with the notes below it.
func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Run of %s, %s, commit %s, %s wall time.\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"),
		r.Machine, r.Commit, time.Duration(r.Duration*float64(time.Second)).Round(time.Second))
	fmt.Fprintln(w, "| scenario | measure | value | baseline (same run) | target | met |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	for _, r := range r.Rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.Scenario, mdEscape(r.Measure), mdEscape(r.Value),
			mdEscape(dash(r.Baseline)), mdEscape(dash(r.Target)), dash(r.Met))
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s: %s\n", n.Scenario, n.Text)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "\n**%s failed**: %s\n", e.Scenario, e.Text)
	}
}

// save writes the report as Markdown and JSON into dir, named after the start time, and returns
// the Markdown file's path.
func (r *report) save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(dir, "bench-"+r.Started.UTC().Format("20060102T150405Z"))
	var md strings.Builder
	r.writeMarkdown(&md)
	if err := os.WriteFile(base+".md", []byte(md.String()), 0o644); err != nil {
		return "", err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return base + ".md", os.WriteFile(base+".json", append(raw, '\n'), 0o644)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Formatting helpers shared by the scenarios.

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func fmtBytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", b/(1<<20))
	case b >= 10<<10:
		return fmt.Sprintf("%.0f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}
