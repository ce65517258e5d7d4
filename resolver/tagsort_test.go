package resolver_test

import (
	"testing"

	"github.com/image-pin/image-pin-webhook/resolver"
)

func TestTagSortModesParseAsWrittenAndPrintBack(t *testing.T) {
	tests := []struct {
		in      string
		want    resolver.TagSortMode
		printed string
	}{
		{"", resolver.TagSortNone, "none"},
		{"none", resolver.TagSortNone, "none"},
		{"latest-first", resolver.TagSortLatestFirst, "latest-first"},
		{"latest-last", resolver.TagSortLatestLast, "latest-last"},
	}
	for _, tc := range tests {
		got, err := resolver.ParseTagSortMode(tc.in)
		if err != nil || got != tc.want || got.String() != tc.printed {
			t.Errorf("ParseTagSortMode(%q) = %v (%s), %v; want %v (%s)", tc.in, got, got, err, tc.want, tc.printed)
		}
	}
	if _, err := resolver.ParseTagSortMode("newest"); err == nil {
		t.Error(`"newest" was accepted`)
	}
}
