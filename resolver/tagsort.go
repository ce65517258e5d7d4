package resolver

import "fmt"

// TagSortMode is a registry entry's tagsortmode: the order its registry
// lists tags in, which newest-build trusts instead of reading build dates,
// as Argo CD Image Updater's TagListSort.
type TagSortMode int

const (
	// TagSortNone says nothing of the listing's order: newest-build reads
	// the build date of every candidate.
	TagSortNone TagSortMode = iota
	// TagSortLatestFirst lists the newest tag first.
	TagSortLatestFirst
	// TagSortLatestLast lists the newest tag last.
	TagSortLatestLast
)

// String is the mode as written in the config.
func (m TagSortMode) String() string {
	switch m {
	case TagSortLatestFirst:
		return "latest-first"
	case TagSortLatestLast:
		return "latest-last"
	}
	return "none"
}

// ParseTagSortMode reads a tagsortmode as written; "" is none. The caller
// names the field.
func ParseTagSortMode(s string) (TagSortMode, error) {
	switch s {
	case "", "none":
		return TagSortNone, nil
	case "latest-first":
		return TagSortLatestFirst, nil
	case "latest-last":
		return TagSortLatestLast, nil
	}
	return TagSortNone, fmt.Errorf("%q must be none, latest-first or latest-last", s)
}
