package client

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Identity is what makes answers obtained through an entry that entry's own:
// everything that decides which registry is asked, with which credential and
// over which TLS trust. Two entries with equal identities would see the same
// answers; entries that differ in any field never share a cached answer,
// failure or in-flight lookup. It is comparable, for use in cache keys.
//
// A reload that changes any field starts that entry's caches fresh, since
// nothing cached under the old identity is found under the new one.
type Identity struct {
	Name   string // the entry's name: answers are kept per entry, even between twins
	APIURL string // scheme://host, where lookups go
	// Credentials is the source as written (ext:/path, secret:ns/name#key…),
	// never a secret value; "" for anonymous.
	Credentials string
	// CredentialID tells apart credentials that one source gives per
	// request (the admitted object's pull secrets: namespace, names and
	// resourceVersions). Config-level sources leave it empty.
	CredentialID string
	Insecure     bool
	TLS          string // a fingerprint of ca_file (path) and ca_data
}

// Identity derives the registry's identity; the caller adds CredentialID for
// a per-request credential.
func (e *Config) Identity() Identity {
	id := Identity{Name: e.Name, Insecure: e.Insecure}
	if e.Credentials != nil {
		id.Credentials = e.Credentials.String()
	}
	if e.APIURL != nil {
		id.APIURL = e.APIURL.Scheme + "://" + e.APIURL.Host
	}
	if e.CAFile != "" || e.CAData != "" {
		h := sha256.Sum256([]byte(e.CAFile + "\x00" + strings.TrimSpace(e.CAData)))
		id.TLS = hex.EncodeToString(h[:8])
	}
	return id
}
