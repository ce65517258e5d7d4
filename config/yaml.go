package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The file is decoded strictly: every unknown key, and every value yaml.v3
// cannot decode, is an error under its field path, the list items named in
// labels as the validation names them.

// checkKeys refuses keys that t (a struct with yaml tags) does not have,
// in n and in the structs and lists of structs below it, each under its
// path (nil: the document).
func checkKeys(n *yaml.Node, t reflect.Type, p *field.Path, labels map[string]string) field.ErrorList {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		var errs field.ErrorList
		for i, item := range n.Content {
			ip := p.Index(i)
			label(labels, ip, entryName(item))
			errs = append(errs, checkKeys(item, t.Elem(), ip, labels)...)
		}
		return errs
	case t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode:
		return nil
	}
	fieldsByKey := map[string]reflect.Type{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" {
			fieldsByKey[tag] = t.Field(i).Type
			known = append(known, tag)
		}
	}
	var errs field.ErrorList
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		ft, ok := fieldsByKey[k]
		if !ok {
			errs = append(errs, invalid(child(p, k), fmt.Sprintf("line %d: unknown key %q (known: %s)", n.Content[i].Line, k, strings.Join(known, ", "))))
			continue
		}
		if ft.Kind() == reflect.Struct && ft.Name() == "duration" {
			continue
		}
		errs = append(errs, checkKeys(n.Content[i+1], ft, child(p, k), labels)...)
	}
	return errs
}

// child is p's field k, or the document's top-level key k.
func child(p *field.Path, k string) *field.Path {
	if p == nil {
		return field.NewPath(k)
	}
	return p.Child(k)
}

// entryName is what names a list item in messages: its name, else its prefix.
func entryName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k == "name" || k == "prefix" {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// decodeError puts each of yaml.v3's messages under the field it names by
// line.
func decodeError(doc *yaml.Node, err error, labels map[string]string) field.ErrorList {
	var te *yaml.TypeError
	all := []string{err.Error()}
	if errors.As(err, &te) {
		all = te.Errors
	}
	errs := make(field.ErrorList, 0, len(all))
	for _, m := range all {
		errs = append(errs, invalid(locate(doc, m, labels), m))
	}
	return errs
}

// locate finds the field of a yaml.v3 message that starts with "line N:"
// (nil when it names none).
func locate(doc *yaml.Node, msg string, labels map[string]string) *field.Path {
	var line int
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil {
		return nil
	}
	var found *field.Path
	var walk func(n *yaml.Node, p *field.Path)
	walk = func(n *yaml.Node, p *field.Path) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Line == line || v.Line == line && v.Kind == yaml.ScalarNode {
					found = child(p, k.Value)
					return
				}
				walk(v, child(p, k.Value))
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				ip := p.Index(i)
				label(labels, ip, entryName(item))
				walk(item, ip)
			}
		}
	}
	walk(doc, nil)
	return found
}
