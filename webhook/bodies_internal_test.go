package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// held is a handler that keeps each request until release is closed, so
// that the bodies it holds stay charged.
type held struct {
	entered chan struct{}
	release chan struct{}
}

func (h held) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.entered <- struct{}{}
	<-h.release
	w.WriteHeader(http.StatusOK)
}

func TestRequestBodiesPastTheBudgetAreRefusedAtOnceAndCounted(t *testing.T) {
	tests := []struct {
		name    string
		held    []int64 // Content-Lengths of the requests held first (-1: not sent)
		next    int64   // the request that follows while they are held
		refused bool
	}{
		{name: "a body that fits beside the held ones is served", held: []int64{1000, 1000}, next: 1000},
		{name: "a body past the budget is refused", held: []int64{1000, 1000, 1000}, next: 1, refused: true},
		{name: "a body of unknown length is charged the request bound", next: -1, refused: true},
		{name: "a small body alone is served", next: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			h := held{entered: make(chan struct{}, 8), release: make(chan struct{})}
			srv := withBodyBudget(h, m, logr.Discard(), 3000)
			done := make(chan *httptest.ResponseRecorder, len(tt.held))
			for _, n := range tt.held {
				go func() {
					rec := httptest.NewRecorder()
					srv.ServeHTTP(rec, post(n))
					done <- rec
				}()
				<-h.entered // charged and held
			}
			rec := httptest.NewRecorder()
			if tt.refused {
				srv.ServeHTTP(rec, post(tt.next))
			} else {
				go srv.ServeHTTP(rec, post(tt.next))
				<-h.entered
			}
			close(h.release)
			for range tt.held {
				if r := <-done; r.Code != http.StatusOK {
					t.Errorf("a held request was answered %d", r.Code)
				}
			}
			got := testutil.ToFloat64(m.refused.WithLabelValues(refusedBodies))
			if tt.refused {
				if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "at their bound of") {
					t.Errorf("answered %d %q, want 429 naming the bound", rec.Code, rec.Body)
				}
				if got != 1 {
					t.Errorf("image_pin_admissions_refused_total{reason=%q} = %v, want 1", refusedBodies, got)
				}
			} else if got != 0 {
				t.Errorf("image_pin_admissions_refused_total{reason=%q} = %v, want 0", refusedBodies, got)
			}
		})
	}
}

func TestTheBodyBudgetIsGivenBackWhenARequestEnds(t *testing.T) {
	srv := withBodyBudget(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil, logr.Discard(), 1000)
	for i := range 100 {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, post(1000))
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d of the whole budget, one after another, was answered %d", i, rec.Code)
		}
	}
}

// post is a review-sized POST whose Content-Length is n (-1: not sent).
func post(n int64) *http.Request {
	size := n
	if size < 0 {
		size = 10
	}
	r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(make([]byte, size)))
	r.ContentLength = n
	return r
}
