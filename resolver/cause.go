package resolver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Cause is the class of a failed resolution: the result label of
// image_pin_resolutions_total and the key of the webhook's failure log.
// The classes part what an app team can fix (a tag that does not exist)
// from what an operator must (a registry that refuses the credentials or
// does not answer), so that an alert on the latter never fires on the former.
type Cause string

// The causes of a failure, as ../shared/interface.md names them.
const (
	// CauseNotFound: no such tag or repository, or nothing in it matches
	// the query (the constraint, allow_tags and ignore_tags, the platforms).
	CauseNotFound Cause = "not_found"
	// CauseUnauthorized: the registry refused the credentials (401, 403).
	CauseUnauthorized Cause = "unauthorized"
	// CauseError: anything else (unreachable, 5xx, 429, a deadline, a
	// credential source that failed, a malformed answer).
	CauseError Cause = "error"
)

// CauseOf classifies err, from the types in its chain and never from its
// text: the registry's answer (go-containerregistry's *transport.Error, its
// status and error codes) and the resolver's own NoMatchError.
func CauseOf(err error) Cause {
	var nm *NoMatchError
	if errors.As(err, &nm) {
		return CauseNotFound
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		return CauseError
	}
	switch te.StatusCode {
	case http.StatusNotFound:
		return CauseNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return CauseUnauthorized
	}
	// Some registries put the reason in the body's codes with another
	// status (400 for an unknown manifest, for one).
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
			return CauseNotFound
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return CauseUnauthorized
		}
	}
	return CauseError
}

// NoMatchError says that the repository holds nothing the query accepts: no
// tag passes allow_tags and ignore_tags, none meets the semver constraint, or
// the chosen image does not cover the entry's platforms. The registry
// answered; what was asked of it cannot be met.
type NoMatchError struct{ msg string }

func (e *NoMatchError) Error() string { return e.msg }

func noMatch(format string, args ...any) error {
	return &NoMatchError{msg: fmt.Sprintf(format, args...)}
}
