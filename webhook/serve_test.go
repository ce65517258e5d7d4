package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// echo answers with everything it was given: the request, as JSON, in a
// warning (so that two decoders that differ in any field answer
// differently), and a patch of every kind of value; the request's name
// picks a denial, an error or a panic instead.
type echo struct{}

func (echo) Handle(_ context.Context, req admission.Request) admission.Response {
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	switch req.Name {
	case "deny":
		return admission.Denied("no <&> " + string(b))
	case "error":
		return admission.Errored(http.StatusBadRequest, errorString(string(b)))
	case "panic":
		panic("asked to")
	case "plain":
		return admission.Allowed("")
	}
	img := "r/app:1@sha256:<&>\u2028\xff"
	return admission.Patched("", jsonpatch.NewOperation("replace", "/spec/containers/0/image", &img),
		jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{"b": "2", "a": "1"}),
		jsonpatch.NewOperation("replace", "/spec/x", nil),
		jsonpatch.NewOperation("remove", "/spec/y", nil),
		jsonpatch.NewOperation("add", "/spec/z", 3),
	).WithWarnings(string(b))
}

type errorString string

func (e errorString) Error() string { return string(e) }

// answer posts body to h as the API server does and returns the HTTP
// status, the Content-Type and the body of the answer.
func answer(h http.Handler, contentType string, body []byte) (int, string, string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
	if body == nil {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", contentType)
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

// sameAnswer fails t unless Serve answers body byte for byte as
// controller-runtime's admission.Webhook does.
func sameAnswer(t *testing.T, contentType string, body []byte) {
	t.Helper()
	ours := webhook.Serve(echo{}, logr.Discard())
	theirs := &admission.Webhook{Handler: echo{}}
	oc, oct, ob := answer(ours, contentType, body)
	tc, tct, tb := answer(theirs, contentType, body)
	if oc != tc || oct != tct || ob != tb {
		t.Fatalf("for %.300q:\nServe:              %d %s %.2000s\ncontroller-runtime: %d %s %.2000s", body, oc, oct, ob, tc, tct, tb)
	}
}

func TestServeAnswersEveryReviewAsControllerRuntimeDoes(t *testing.T) {
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"a":"b"}},"spec":{"containers":[{"name":"app","image":"r/app:1"}]}}`
	full := func(apiVersion, name, extra string) []byte {
		return []byte(`{"apiVersion":"` + apiVersion + `","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},` +
			`"resource":{"group":"","version":"v1","resource":"pods"},"requestKind":{"group":"","version":"v1","kind":"Pod"},` +
			`"requestResource":{"group":"","version":"v1","resource":"pods"},"name":"` + name + `","namespace":"team-a",` +
			`"userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller","uid":"x","groups":["system:serviceaccounts","system:authenticated"],"extra":{"k":["v"]}},` +
			`"object":` + pod + extra + `}}`)
	}
	tests := []struct {
		name        string
		contentType string
		body        []byte
	}{
		{"a CREATE", "application/json", full("admission.k8s.io/v1", "p", `,"operation":"CREATE","oldObject":null,"dryRun":false,"options":{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		{"an UPDATE with its old object", "application/json", full("admission.k8s.io/v1", "p", `,"operation":"UPDATE","oldObject":`+pod+`,"dryRun":false,"options":{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl"}`)},
		{"a dry run", "application/json", full("admission.k8s.io/v1", "p", `,"operation":"CREATE","dryRun":true`)},
		{"a subresource", "application/json", full("admission.k8s.io/v1", "p", `,"operation":"UPDATE","subResource":"ephemeralcontainers","requestSubResource":"ephemeralcontainers","oldObject":`+pod)},
		{"a v1beta1 review, answered as v1beta1", "application/json", full("admission.k8s.io/v1beta1", "p", `,"operation":"CREATE"`)},
		{"a review of a made-up version, echoed", "application/json", full("example.com/v9", "p", `,"operation":"CREATE"`)},
		{"a denial", "application/json", full("admission.k8s.io/v1", "deny", `,"operation":"CREATE"`)},
		{"an error of the handler", "application/json", full("admission.k8s.io/v1", "error", `,"operation":"CREATE"`)},
		{"a panic of the handler", "application/json", full("admission.k8s.io/v1", "panic", `,"operation":"CREATE"`)},
		{"an answer without a patch", "application/json", full("admission.k8s.io/v1", "plain", `,"operation":"CREATE"`)},
		{"a review that names no version", "application/json", []byte(`{"request":{"uid":"x","name":"plain"}}`)},
		{"an empty object", "application/json", []byte(`{}`)},
		{"a null request", "application/json", []byte(`{"request":null}`)},
		{"a request field in another case, which the decoder ignores", "application/json", []byte(`{"Request":{"UID":"x"}}`)},
		{"apiVersion in another case, which the version lookup reads", "application/json", []byte(`{"APIVERSION":"admission.k8s.io/v1beta1","request":{"uid":"x"}}`)},
		{"an unknown field", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1beta1","extra":1,"request":{"uid":"x","new":{}}}`)},
		{"a repeated apiVersion", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"x"}}`)},
		{"kind in another case", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","KIND":"Other","request":{"uid":"x"}}`)},
		{"kind in another case, of the wrong type", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","Kind":5,"request":{"uid":"x"}}`)},
		{"a response in the request", "application/json", []byte(`{"request":{"uid":"x"},"response":{"uid":"y","allowed":true}}`)},
		{"a response of the wrong type", "application/json", []byte(`{"request":{"uid":"x"},"response":{"allowed":"yes"}}`)},
		{"a uid of the wrong type", "application/json", []byte(`{"request":{"uid":5}}`)},
		{"an object that is a string", "application/json", []byte(`{"request":{"uid":"x","object":"abc"}}`)},
		{"a malformed apiVersion", "application/json", []byte(`{"apiVersion":"a/b/c","request":{"uid":"x"}}`)},
		{"an apiVersion of the wrong type", "application/json", []byte(`{"apiVersion":1,"request":{"uid":"x"}}`)},
		{"a body that is not JSON", "application/json", []byte("<xml/>")},
		{"a body in YAML", "application/json", []byte("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest:\n  uid: y\n  name: plain\n")},
		{"a truncated body", "application/json", full("admission.k8s.io/v1", "p", `,"operation":"CREATE"`)[:200]},
		{"a JSON array", "application/json", []byte(`[1,2]`)},
		{"trailing garbage", "application/json", []byte(`{"request":{"uid":"x"}} x`)},
		{"white space first", "application/json", []byte("\n\t {\"request\":{\"uid\":\"x\",\"name\":\"plain\"}}")},
		{"an empty body", "application/json", []byte{}},
		{"no body", "application/json", nil},
		{"another Content-Type", "application/yaml", []byte(`{"request":{"uid":"x"}}`)},
		{"a Content-Type with parameters", "application/json; charset=utf-8", []byte(`{"request":{"uid":"x"}}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { sameAnswer(t, tc.contentType, tc.body) })
	}
	t.Run("a body at the size limit", func(t *testing.T) {
		sameAnswer(t, "application/json", append([]byte(`{"request":{"uid":"big","object":"`), bytes.Repeat([]byte("x"), 7<<20)...))
	})
}

// Serve reuses its buffers: an answer must not carry anything of the
// request before it.
func TestServeAnswersEachReviewAloneWhenBuffersAreReused(t *testing.T) {
	h := webhook.Serve(echo{}, logr.Discard())
	long := []byte(`{"request":{"uid":"first","name":"p","operation":"UPDATE","dryRun":true,"requestKind":{"kind":"Pod"},"object":{"a":"` + strings.Repeat("x", 4096) + `"},"oldObject":{"b":1}}}`)
	short := []byte(`{"request":{"uid":"second","name":"p","object":{}}}`)
	for range 3 {
		answer(h, "application/json", long)
	}
	_, _, got := answer(h, "application/json", short)
	theirs := &admission.Webhook{Handler: echo{}}
	if _, _, want := answer(theirs, "application/json", short); got != want {
		t.Fatalf("after a longer review:\n got %s\nwant %s", got, want)
	}
}

// FuzzServe: for any body, Serve answers as controller-runtime does.
func FuzzServe(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"version":"v1","kind":"Pod"},"operation":"UPDATE","dryRun":true,"object":{"metadata":{}},"oldObject":null}}`))
	f.Add([]byte(`{"request":{"uid":"x","name":"deny","userInfo":{"groups":["a"],"extra":{"k":["v"]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","request":{"name":"plain","options":{"kind":"CreateOptions"}}}`))
	f.Add([]byte("kind: AdmissionReview\nrequest: {uid: y}\n"))
	f.Add([]byte(`{"request":{"uid":"\u003c\ud800"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 1<<16 {
			return
		}
		sameAnswer(t, "application/json", body)
	})
}

// Through Serve, which puts no logger in the context, every line of an
// admission carries the request's UID from the handler's own logger, and
// debug adds one line per admission.
func TestLinesCarryTheRequestsUIDThroughServe(t *testing.T) {
	e := newEnv(t)
	var logs logLines
	h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res, webhook.WithLogger(logs.logger(1)))
	srv := httptest.NewServer(webhook.Serve(h, logr.Discard()))
	t.Cleanup(srv.Close)
	postAndAssertRequestFields(t, e.srv.Host, srv.URL, &logs)
}
