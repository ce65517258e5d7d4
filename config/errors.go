package config

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// InvalidError is every error of a config document, each with its field
// path. Its message has one line per error, each naming the file (when
// Load read one), the entry or rule by index and name, and the field:
//
//	config /etc/image-pin-webhook/config.yaml: registries[0] "ECR": credsexpire: must not be negative
type InvalidError struct {
	File string // "" for a document decoded from memory
	Errs field.ErrorList
	// labels names list items: "registries[0]" is shown as registries[0] "ECR".
	labels map[string]string
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		lines[i] = e.line(fe)
	}
	return strings.Join(lines, "\n")
}

// line renders one error: where, with each list item's name, then what is
// wrong (the detail alone: the values that may be shown are in it).
func (e *InvalidError) line(fe *field.Error) string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString("config " + e.File + ": ")
	}
	if fe.Field != "" && fe.Field != "<nil>" {
		segs := strings.Split(fe.Field, ".")
		for i := range segs {
			seg := segs[i]
			if l, ok := e.labels[strings.Join(segs[:i+1], ".")]; ok {
				seg = l
			}
			b.WriteString(seg + ": ")
		}
	}
	if fe.Detail != "" {
		b.WriteString(fe.Detail)
	} else {
		b.WriteString(fe.ErrorBody())
	}
	return b.String()
}
