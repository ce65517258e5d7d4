package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/go-logr/logr"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	admissionmetrics "sigs.k8s.io/controller-runtime/pkg/webhook/admission/metrics"
	kjson "sigs.k8s.io/json"
)

// Serve is the HTTP handler of /mutate: controller-runtime's
// admission.Webhook's ServeHTTP, answer for answer, with fewer allocations.
// It reads the body into a pooled buffer, decodes the AdmissionReview with
// a pooled decoder of the kind controller-runtime uses (sigs.k8s.io/json,
// case-sensitive) into a struct whose object, oldObject and options alias
// the decoder's buffer while h runs (h must not keep them: Handler decodes
// what it reads), and encodes the response with a pooled encoder, the JSON
// patch written by hand.
//
// What controller-runtime does and Serve keeps: a response whose uid is the
// request's and whose apiVersion and kind echo the request's (v1 when it
// names none); HTTP 200 whatever the answer, a body that is no review
// answered allowed=false with code 400 and the decoder's message (413 for
// a body of 7 MiB or more, 400 for a Content-Type other than
// application/json); a
// panic in h answered with code 500 and counted in
// controller_runtime_webhook_panics_total. A body that is not a JSON
// object, or one this decoder refuses, is decoded again by
// controller-runtime's own decoder (the universal deserializer), so that
// its answer and message are controller-runtime's exactly.
//
// What it does not: put a request-scoped logger in the context. Handler
// then logs with its own logger (WithLogger) and the fields
// controller-runtime's would carry (requestID, object, namespace, name,
// resource, user), made only when a line is written.
func Serve(h admission.Handler, log logr.Logger) http.Handler {
	return &server{h: h, log: log}
}

type server struct {
	h   admission.Handler
	log logr.Logger
}

// exchange is the pooled state of one request.
type exchange struct {
	lr    io.LimitedReader
	in    bytes.Buffer // the request body
	patch bytes.Buffer // the JSON patch
	out   bytes.Buffer // the response body
	enc   *json.Encoder
	src   bodyReader
	dec   kjson.Decoder // made on first use; dropped after an error
	rev   reviewIn
	resp  admissionv1.AdmissionReview
	ok    metav1.Status // Response.Complete's default result
}

// maxPooled is the largest buffer kept for the next request: a large
// review is served, then its buffer left to the collector.
const maxPooled = 1 << 20

var exchanges = sync.Pool{New: func() any {
	ex := &exchange{}
	ex.enc = json.NewEncoder(&ex.out)
	return ex
}}

func (ex *exchange) release() {
	if ex.in.Cap() > maxPooled || ex.out.Cap() > maxPooled || ex.patch.Cap() > maxPooled {
		return
	}
	ex.lr = io.LimitedReader{}
	ex.src = bodyReader{}
	ex.rev = reviewIn{}
	ex.resp = admissionv1.AdmissionReview{}
	exchanges.Put(ex)
}

// reviewIn is an AdmissionReview (v1 and v1beta1 are the same shape) as
// controller-runtime decodes it: the response is decoded too (and
// ignored), so that a body it refuses is refused here.
type reviewIn struct {
	APIVersion string                         `json:"apiVersion,omitempty"`
	Kind       string                         `json:"kind,omitempty"`
	Request    requestIn                      `json:"request,omitempty"`
	Response   *admissionv1.AdmissionResponse `json:"response,omitempty"`
}

// requestIn is admissionv1.AdmissionRequest field for field, but for the
// raw objects, which alias the body instead of being copied.
type requestIn struct {
	UID                types.UID                    `json:"uid"`
	Kind               metav1.GroupVersionKind      `json:"kind"`
	Resource           metav1.GroupVersionResource  `json:"resource"`
	SubResource        string                       `json:"subResource,omitempty"`
	RequestKind        *metav1.GroupVersionKind     `json:"requestKind,omitempty"`
	RequestResource    *metav1.GroupVersionResource `json:"requestResource,omitempty"`
	RequestSubResource string                       `json:"requestSubResource,omitempty"`
	Name               string                       `json:"name,omitempty"`
	Namespace          string                       `json:"namespace,omitempty"`
	Operation          admissionv1.Operation        `json:"operation"`
	UserInfo           authenticationv1.UserInfo    `json:"userInfo"`
	Object             rawAlias                     `json:"object,omitempty"`
	OldObject          rawAlias                     `json:"oldObject,omitempty"`
	DryRun             *bool                        `json:"dryRun,omitempty"`
	Options            rawAlias                     `json:"options,omitempty"`
}

// rawAlias is runtime.RawExtension's decoding without its copy: the
// decoder hands UnmarshalJSON a slice of its input, which is kept.
type rawAlias []byte

func (r *rawAlias) UnmarshalJSON(b []byte) error {
	if !bytes.Equal(b, []byte("null")) {
		*r = b
	}
	return nil
}

func (q *requestIn) request() admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: q.UID, Kind: q.Kind, Resource: q.Resource, SubResource: q.SubResource,
		RequestKind: q.RequestKind, RequestResource: q.RequestResource, RequestSubResource: q.RequestSubResource,
		Name: q.Name, Namespace: q.Namespace, Operation: q.Operation, UserInfo: q.UserInfo,
		Object: runtime.RawExtension{Raw: q.Object}, OldObject: runtime.RawExtension{Raw: q.OldObject},
		DryRun: q.DryRun, Options: runtime.RawExtension{Raw: q.Options},
	}}
}

// maxRequestSize is controller-runtime's bound, which answers 413 when a
// body reaches it; WithDeadlines' bound (maxRequestBytes) is the same.
const maxRequestSize = int64(7 * 1024 * 1024)

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchanges.Get().(*exchange)
	defer ex.release()
	if r.Body == nil || r.Body == http.NoBody {
		err := errors.New("request body is empty")
		s.log.Error(err, "bad request")
		s.write(w, ex, admission.Errored(http.StatusBadRequest, err), nil)
		return
	}
	defer r.Body.Close()
	ex.in.Reset()
	ex.lr = io.LimitedReader{R: r.Body, N: maxRequestSize}
	if _, err := ex.in.ReadFrom(&ex.lr); err != nil {
		s.log.Error(err, "unable to read the body from the incoming request")
		s.write(w, ex, admission.Errored(http.StatusBadRequest, err), nil)
		return
	}
	if ex.lr.N <= 0 {
		err := fmt.Errorf("request entity is too large; limit is %d bytes", maxRequestSize)
		s.log.Error(err, "unable to read the body from the incoming request; limit reached")
		s.write(w, ex, admission.Errored(http.StatusRequestEntityTooLarge, err), nil)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		err := fmt.Errorf("contentType=%s, expected application/json", ct)
		s.log.Error(err, "unable to process a request with unknown content type")
		s.write(w, ex, admission.Errored(http.StatusBadRequest, err), nil)
		return
	}
	req, gvk, err := ex.decodeReview(ex.in.Bytes())
	if err != nil {
		s.log.Error(err, "unable to decode the request")
		s.write(w, ex, admission.Errored(http.StatusBadRequest, err), nil)
		return
	}
	s.write(w, ex, s.handle(r.Context(), req), &gvk)
}

// decodeReview decodes body as controller-runtime's ServeHTTP does, into
// ex.rev when body is a JSON object this decoder reads, else with
// controller-runtime's decoder. The GVK is the one the body names.
//
// controller-runtime reads the GVK in a first pass of encoding/json
// (json.SimpleMetaFactory, which matches keys in any case), then decodes
// with sigs.k8s.io/json (case-sensitive). One pass of the second decoder
// that refuses unknown fields tells whether the first could read anything
// else: with no unknown or miscased field, the body's apiVersion and kind
// are the ones decoded (the last of each, for both), and the first pass is
// spared. The pass is the exchange's decoder's, whose buffers are reused,
// on a body known to be one valid JSON value; anything else takes
// controller-runtime's way.
func (ex *exchange) decodeReview(body []byte) (admission.Request, schema.GroupVersionKind, error) {
	if !isJSONObject(body) || len(body) > maxPooled || !json.Valid(body) {
		return decodeSlow(body)
	}
	if ex.dec == nil {
		ex.dec = kjson.NewDecoderCaseSensitivePreserveInts(&ex.src)
		strict, ok := ex.dec.(interface{ DisallowUnknownFields() })
		if !ok {
			ex.dec = nil
			return decodeSlow(body)
		}
		strict.DisallowUnknownFields()
	}
	ex.src = bodyReader{body}
	if err := ex.dec.Decode(&ex.rev); err != nil {
		ex.dec = nil // its state after an error is not to be trusted
		return decodeSlow(body)
	}
	gv, err := schema.ParseGroupVersion(ex.rev.APIVersion)
	if err != nil {
		return decodeSlow(body)
	}
	return ex.rev.Request.request(), gv.WithKind(ex.rev.Kind), nil
}

// bodyReader reads b: the source of a pooled decoder, given each body.
type bodyReader struct{ b []byte }

func (r *bodyReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// isJSONObject is the JSON serializer's test of whether it reads body:
// its first character past white space is '{'.
func isJSONObject(body []byte) bool { return utilyaml.IsJSONBuffer(body) }

// The decoder of controller-runtime's ServeHTTP, for what the fast path
// does not read: bodies in YAML or protobuf, and malformed ones, whose
// messages are then the ones controller-runtime would give.
var (
	slowScheme = runtime.NewScheme()
	slowCodecs = serializer.NewCodecFactory(slowScheme)
)

func init() {
	utilruntime.Must(admissionv1.AddToScheme(slowScheme))
	utilruntime.Must(admissionv1beta1.AddToScheme(slowScheme))
}

// unversionedAdmissionReview is an AdmissionReview of either version: a
// type the scheme does not know, so the decoder unmarshals into it whatever
// it names. Its name is controller-runtime's own because encoding/json's
// errors name the Go type ("...unversionedAdmissionReview.AdmissionReview.
// request..."), and a malformed review is answered with that message.
type unversionedAdmissionReview struct {
	admissionv1.AdmissionReview
}

func (r *unversionedAdmissionReview) DeepCopyObject() runtime.Object {
	return &unversionedAdmissionReview{AdmissionReview: *r.AdmissionReview.DeepCopy()}
}

func decodeSlow(body []byte) (admission.Request, schema.GroupVersionKind, error) {
	req := admission.Request{}
	ar := unversionedAdmissionReview{}
	ar.Request = &req.AdmissionRequest
	ar.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	_, gvk, err := slowCodecs.UniversalDeserializer().Decode(body, nil, &ar)
	if err != nil {
		return req, schema.GroupVersionKind{}, err
	}
	var g schema.GroupVersionKind
	if gvk != nil {
		g = *gvk
	}
	return req, g, nil
}

// handle is admission.Webhook's Handle, but for the logger in the context
// and for Response.Complete's patch, which write does.
func (s *server) handle(ctx context.Context, req admission.Request) (resp admission.Response) {
	defer func() {
		if r := recover(); r != nil {
			admissionmetrics.WebhookPanics.WithLabelValues().Inc()
			for _, fn := range utilruntime.PanicHandlers {
				fn(ctx, r)
			}
			resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("panic: %v [recovered]", r))
		}
		resp.UID = req.UID
	}()
	return s.h.Handle(ctx, req)
}

// jsonPatch is the patch type of every patched response.
var jsonPatch = admissionv1.PatchTypeJSONPatch

// write completes resp as Response.Complete does and writes it as an
// AdmissionReview of gvk (none: a bare review, as for a request that is
// none; empty: v1).
func (s *server) write(w http.ResponseWriter, ex *exchange, resp admission.Response, gvk *schema.GroupVersionKind) {
	if resp.Result == nil {
		ex.ok = metav1.Status{}
		resp.Result = &ex.ok
	}
	if resp.Result.Code == 0 {
		resp.Result.Code = http.StatusOK
	}
	if len(resp.Patches) > 0 {
		if err := ex.writePatch(resp.Patches); err != nil {
			s.log.Error(err, "unable to encode response")
			uid := resp.UID
			resp = admission.Errored(http.StatusInternalServerError, errors.New("unable to encode response"))
			resp.UID = uid
		} else {
			resp.Patch = ex.patch.Bytes()
			resp.PatchType = &jsonPatch
		}
	}
	ex.resp = admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	switch {
	case gvk == nil:
	case gvk.Empty():
		ex.resp.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	default:
		ex.resp.SetGroupVersionKind(*gvk)
	}
	ex.out.Reset()
	if err := ex.enc.Encode(&ex.resp); err != nil {
		s.log.Error(err, "unable to encode and write the response")
		return
	}
	if _, err := w.Write(ex.out.Bytes()); err != nil {
		s.log.Error(err, "unable to encode and write the response")
	}
}

// writePatch writes ops into ex.patch as json.Marshal writes a
// []jsonpatch.JsonPatchOperation (each op's MarshalJSON), without its
// allocations per operation.
func (ex *exchange) writePatch(ops []jsonpatch.JsonPatchOperation) error {
	ex.patch.Reset()
	ex.patch.WriteByte('[')
	for i := range ops {
		op := &ops[i]
		if i > 0 {
			ex.patch.WriteByte(',')
		}
		ex.patch.WriteString(`{"op":`)
		if err := ex.value(&op.Operation); err != nil {
			return err
		}
		ex.patch.WriteString(`,"path":`)
		if err := ex.value(&op.Path); err != nil {
			return err
		}
		switch {
		case op.Value != nil:
			ex.patch.WriteString(`,"value":`)
			if err := ex.value(op.Value); err != nil {
				return err
			}
		case op.Operation == "replace" || op.Operation == "add":
			ex.patch.WriteString(`,"value":null`)
		}
		ex.patch.WriteByte('}')
	}
	ex.patch.WriteByte(']')
	return nil
}

// value appends v to the patch as json.Marshal encodes it, through the
// exchange's encoder (HTML-escaped, as json.Marshal is), less the newline
// the encoder ends with. A string is passed by pointer: boxing it would
// allocate.
func (ex *exchange) value(v any) error {
	ex.out.Reset()
	if err := ex.enc.Encode(v); err != nil {
		return err
	}
	ex.patch.Write(bytes.TrimSuffix(ex.out.Bytes(), []byte("\n")))
	return nil
}
