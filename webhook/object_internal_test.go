package webhook

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// The pooled decoder reads every object as json.Unmarshal does, errors
// included, however often it is reused and whatever it read before.
func TestObjectsDecodeThroughThePooledDecoderAsJSONUnmarshalDoes(t *testing.T) {
	bodies := []struct{ name, raw string }{
		{"a Pod", `{"metadata":{"labels":{"a":"b"},"annotations":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"r/app:1"}]}}`},
		{"a Pod with white space around it", " \n{\"spec\":{\"initContainers\":[{\"name\":\"i\",\"image\":\"r/i:1\"}]}}\t "},
		{"null", `null`},
		{"an array", `[1,2]`},
		{"a string", `"pod"`},
		{"a field of the wrong type", `{"spec":{"containers":{"name":"c"}}}`},
		{"an image of the wrong type, then a valid container", `{"spec":{"containers":[{"name":"a","image":5},{"name":"b","image":"r/b:1"}]}}`},
		{"a truncated object", `{"spec":{"containers":[{"name":"c"`},
		{"trailing garbage", `{"spec":{}} {"spec":{}}`},
		{"an escaped string", `{"metadata":{"annotations":{"k":"\u003c\ud83d\ude00\n"}}}`},
	}
	type pod struct {
		Metadata objectMeta `json:"metadata"`
		Spec     podSpec    `json:"spec"`
	}
	for round := range 3 {
		for _, b := range bodies {
			t.Run(fmt.Sprintf("%s, round %d", b.name, round), func(t *testing.T) {
				var got, want pod
				gotErr, wantErr := unmarshal([]byte(b.raw), &got), json.Unmarshal([]byte(b.raw), &want)
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
					t.Fatalf("error %v, want %v", gotErr, wantErr)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("decoded %+v, want %+v", got, want)
				}
			})
		}
	}
}
