package resolver

import (
	"fmt"
	"strings"
)

// Bounds of the policy fields, checked by Written.Parse for every source.
// Tenants write these fields (the image-pin.io/ annotations) and every
// candidate tag of every lookup is matched against them, so what one tag
// costs grows with what they hold: 249 KiB of ignore-tags globs once took a
// minute of CPU over 1,100 tags. Each bound is far above what a real policy
// needs and keeps one tag's matching in the microseconds.
const (
	// maxStrategyBytes: the longest strategy name is newest-build.
	maxStrategyBytes = 32
	// maxConstraintBytes: constraints users write (~1.4, >=1.2 <2, ^1 || ^2)
	// take tens of bytes; each candidate tag is checked against every term.
	maxConstraintBytes = 256
	// maxIgnoreGlobs, maxGlobBytes and maxIgnoreBytes bound ignore_tags:
	// a tag is at most 128 characters (the distribution spec's grammar), so
	// a longer glob matches nothing a literal one would not, and 1,024
	// bytes of globs cost at most about 100µs a tag.
	maxIgnoreGlobs = 32
	maxGlobBytes   = 128
	maxIgnoreBytes = 1024
)

// Bounds is what Written.Parse accepts of each field, for docs and callers
// that describe them.
type Bounds struct {
	StrategyBytes, ConstraintBytes              int
	AllowTagsBytes, AllowTagsInstructions       int
	IgnoreTagsGlobs, GlobBytes, IgnoreTagsBytes int
}

// FieldBounds returns the bounds Written.Parse enforces.
func FieldBounds() Bounds {
	return Bounds{
		StrategyBytes: maxStrategyBytes, ConstraintBytes: maxConstraintBytes,
		AllowTagsBytes: maxAllowTagsBytes, AllowTagsInstructions: maxAllowTagsInsts,
		IgnoreTagsGlobs: maxIgnoreGlobs, GlobBytes: maxGlobBytes, IgnoreTagsBytes: maxIgnoreBytes,
	}
}

// tooLong refuses a value of more than max bytes without quoting it whole.
func tooLong(what string, n, max int) error {
	return fmt.Errorf("%s of %d bytes, at most %d", what, n, max)
}

// checkIgnoreBounds refuses ignore_tags past its bounds before any glob is
// looked at: the total first, so a huge value costs one pass over its
// lengths.
func checkIgnoreBounds(globs []string) error {
	total, count := 0, 0
	for _, g := range globs {
		total += len(g)
	}
	if total > maxIgnoreBytes {
		return fmt.Errorf("%d bytes of globs, at most %d", total, maxIgnoreBytes)
	}
	for _, g := range globs {
		if len(strings.TrimSpace(g)) == 0 {
			continue
		}
		if count++; count > maxIgnoreGlobs {
			return fmt.Errorf("more than %d globs", maxIgnoreGlobs)
		}
		if len(g) > maxGlobBytes {
			return tooLong(fmt.Sprintf("glob %.40q", g), len(g), maxGlobBytes)
		}
	}
	return nil
}
