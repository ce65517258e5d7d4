package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// driftReportKind and driftReportVersion name the JSON schema of
// drift -o json; a change that breaks a reader bumps the version.
const (
	driftReportKind    = "DriftReport"
	driftReportVersion = 1
)

// driftReport is what drift prints; -o json prints it as it is.
type driftReport struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	// StateNamespace is where the records were read; Config the --config
	// file ("" without).
	StateNamespace string `json:"stateNamespace"`
	Config         string `json:"config,omitempty"`
	// Namespaces are the opted-in namespaces read.
	Namespaces []string `json:"namespaces"`
	// Items are the drifted containers (every container read, with --all),
	// in the order namespace, kind, name, then as in the pod spec.
	Items   []driftItem  `json:"items"`
	Summary driftSummary `json:"summary"`
}

// driftSummary counts every container read, whatever --all says.
type driftSummary struct {
	Drifted   int `json:"drifted"`
	Current   int `json:"current"`
	NoRecord  int `json:"noRecord"`
	Ambiguous int `json:"ambiguous"`
	Unpinned  int `json:"unpinned"`
}

func (s *driftSummary) count(status string) {
	switch status {
	case statusDrifted:
		s.Drifted++
	case statusCurrent:
		s.Current++
	case statusNoRecord:
		s.NoRecord++
	case statusAmbiguous:
		s.Ambiguous++
	case statusUnpinned:
		s.Unpinned++
	}
}

// add judges cs and keeps what the report lists.
func (r *driftReport) add(m *matcher, cs []driftContainer, all bool) {
	for _, c := range cs {
		it, ok := m.judge(c)
		if !ok {
			continue
		}
		r.Summary.count(it.Status)
		if all || it.Status == statusDrifted {
			r.Items = append(r.Items, it)
		}
	}
}

// sort puts the items in the report's order; containers of one workload
// keep the pod spec's order (the sort is stable).
func (r *driftReport) sort() {
	kind := func(k string) int { return slices.Index(driftKinds, k) }
	slices.SortStableFunc(r.Items, func(a, b driftItem) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(kind(a.Kind), kind(b.Kind)), cmp.Compare(a.Name, b.Name))
	})
}

// writeJSON prints the report; items is [] when empty, never null.
func (r *driftReport) writeJSON(w io.Writer) error {
	if r.Items == nil {
		r.Items = []driftItem{}
	}
	if r.Namespaces == nil {
		r.Namespaces = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints a table, one line per item, for a terminal: short
// digests and the age of the drift, or with wide the full digests, the
// time and the record. An empty report prints nothing (the caller says so
// on stderr, as kubectl does).
func (r *driftReport) writeText(w io.Writer, wide, all bool, now time.Time) {
	if len(r.Items) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	head := []string{"NAMESPACE", "WORKLOAD", "CONTAINER", "IMAGE", "PINNED", "CURRENT", "SINCE"}
	if all {
		head = append(head, "STATUS")
	}
	if wide {
		head = append(head, "RECORD")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, it := range r.Items {
		ctr := it.Container
		if it.ContainerType != typeContainer {
			ctr += " (" + strings.TrimSuffix(it.ContainerType, "Container") + ")"
		}
		row := []string{it.Namespace, it.Kind + "/" + it.Name, ctr, askedText(it), pinText(it.Pinned, wide), pinText(it.Current, wide), sinceText(it.Since, wide, now)}
		if all {
			row = append(row, it.Status)
		}
		if wide {
			row = append(row, cmp.Or(it.Record, "-"))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// asked is the image as written, with what chose its tag when not the
// tag itself.
func askedText(it driftItem) string {
	switch {
	case it.Strategy == "" || it.Strategy == "digest":
		return it.Image
	case it.Constraint != "":
		return fmt.Sprintf("%s (%s %s)", it.Image, it.Strategy, it.Constraint)
	}
	return fmt.Sprintf("%s (%s)", it.Image, it.Strategy)
}

// pin is TAG@DIGEST, the digest cut to 12 hex digits unless wide.
func pinText(p *driftPin, wide bool) string {
	if p == nil {
		return "-"
	}
	d := p.Digest
	if !wide {
		d = shortDigest(d)
	}
	return p.Tag + "@" + d
}

// short is a digest's first 12 hex digits, as docker prints image IDs and
// kubectl get imgres shows them.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return algo + ":" + hex[:12]
}

func sinceText(s string, wide bool, now time.Time) string {
	if s == "" {
		return "-"
	}
	if wide {
		return s
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return duration.HumanDuration(now.Sub(t))
}
