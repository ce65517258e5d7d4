package webhook

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestACutMessageIsValidUTF8WhereverTheCutFalls(t *testing.T) {
	tests := []struct {
		name string
		s    string
	}{
		{"two-byte runes", strings.Repeat("é", 400)},
		{"three-byte runes", strings.Repeat("€", 300)},
		{"four-byte runes", strings.Repeat("🐳", 200)},
		{"ASCII then a rune across the cut", strings.Repeat("a", maxMessageLength-4) + "€€€€"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for n := maxMessageLength - 4; n <= maxMessageLength; n++ {
				got := cut(tc.s, n)
				if !utf8.ValidString(got) || len(got) > n || !strings.HasSuffix(got, "...") {
					t.Fatalf("cut(_, %d) = %q (%d bytes, valid %v)", n, got, len(got), utf8.ValidString(got))
				}
				if !strings.HasPrefix(tc.s, strings.TrimSuffix(got, "...")) {
					t.Fatalf("cut(_, %d) is not a prefix of the message", n)
				}
			}
		})
	}
}

func TestAWarningOfMultiByteTextStaysValidUTF8(t *testing.T) {
	ws := limitWarnings([]string{`container "ü" image "` + strings.Repeat("ß", 600) + `": failed`})
	if len(ws) != 1 || !utf8.ValidString(ws[0]) || len(ws[0]) > maxMessageLength {
		t.Fatalf("warnings = %q", ws)
	}
	d := limitDenial(strings.Repeat("日本", 1000), strings.Repeat("ü", 1000))
	if !utf8.ValidString(d) || len(d) > maxDenialMessage {
		t.Fatalf("denial (%d bytes) is not valid UTF-8", len(d))
	}
}

func TestTheRecordIsWrittenAsJSONMarshalWritesIt(t *testing.T) {
	tests := []map[string]string{
		{},
		{"app": "ghcr.io/acme/api:1.4", "init": "nginx"},
		{"b": "x", "a": "y", "c": "z"},
		{"q\"uote": "back\\slash", "ctl": "a\tb\nc\rd\x01", "html": "<&>", "sep": "\u2028\u2029", "bad": "\xff", "ü": "日本"},
	}
	for _, m := range tests {
		want, _ := json.Marshal(m)
		if got := encodeRecords(m); got != string(want) {
			t.Errorf("encodeRecords(%v) = %s, want %s", m, got, want)
		}
	}
}
