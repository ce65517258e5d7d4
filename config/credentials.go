package config

import (
	"regexp"
)

// bareCloudKind finds a credentials value written as an unquoted kind with
// its colon (credentials: aws:), which YAML reads as the start of a mapping.
var bareCloudKind = regexp.MustCompile(`(?m)^\s*-?\s*credentials:\s*(aws|gcp|azure|imagepullsecrets):\s*(#.*)?$`)

// colonHint says how to write such a value when a document that does not
// parse holds one.
func colonHint(data []byte) string {
	m := bareCloudKind.FindSubmatch(data)
	if m == nil {
		return ""
	}
	return " (credentials: " + string(m[1]) + ": is read as a mapping: write credentials: " + string(m[1]) + " without the colon, or quote it)"
}
