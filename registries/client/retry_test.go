package client

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// statusServer answers every request with code and counts them; it is a
// RoundTripper, so no connection is made.
type statusServer struct {
	code  int
	calls int
}

func (s *statusServer) RoundTrip(r *http.Request) (*http.Response, error) {
	s.calls++
	return &http.Response{StatusCode: s.code, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

func TestTheStatusesGoContainerregistryRetriesAreRetriedAndNoOthers(t *testing.T) {
	for _, tc := range []struct {
		code  int
		calls int
	}{
		{http.StatusRequestTimeout, 3},
		{http.StatusTooManyRequests, 3},
		{http.StatusInternalServerError, 3},
		{http.StatusBadGateway, 3},
		{http.StatusServiceUnavailable, 3},
		{http.StatusGatewayTimeout, 3},
		{499, 3},
		{522, 3},
		{http.StatusOK, 1},
		{http.StatusNotFound, 1},
		{http.StatusUnauthorized, 1},
		{http.StatusForbidden, 1},
		{http.StatusNotImplemented, 1},
	} {
		t.Run(strconv.Itoa(tc.code)+" "+http.StatusText(tc.code), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &statusServer{code: tc.code}
				rt := &retryTransport{attempts: retryAttempts, backoff: retryBackoff, jitter: retryJitter, maxWait: retryMaxWait, next: srv}
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://r.example/v2/", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if srv.calls != tc.calls || resp.StatusCode != tc.code {
					t.Errorf("%d answered %d after %d requests, want %d requests", tc.code, resp.StatusCode, srv.calls, tc.calls)
				}
			})
		})
	}
}

// Replicas whose lookups failed together must not retry together: each
// wait is the backoff plus up to a tenth of it, and waits differ.
func TestRetriesWaitTheBackoffPlusJitterSoFailuresDoNotRetryInLockstep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 20 {
			srv := &statusServer{code: http.StatusServiceUnavailable}
			rt := &retryTransport{attempts: 2, backoff: retryBackoff, jitter: retryJitter, maxWait: retryMaxWait, next: srv}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://r.example/v2/", nil)
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			waited := time.Since(start)
			if waited < retryBackoff || waited > retryBackoff+time.Duration(retryJitter*float64(retryBackoff)) {
				t.Fatalf("waited %s, want between %s and %s more", waited, retryBackoff, time.Duration(retryJitter*float64(retryBackoff)))
			}
			seen[waited] = true
		}
		if len(seen) < 2 {
			t.Errorf("20 retries all waited %v: no jitter", seen)
		}
	})
}

func TestARetryAfterBeyondTheLongestWaitGivesTheAnswerBackAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &statusServer{code: http.StatusTooManyRequests}
		rt := &retryTransport{attempts: retryAttempts, backoff: retryBackoff, jitter: retryJitter, maxWait: retryMaxWait,
			next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := srv.RoundTrip(r)
				resp.Header.Set("Retry-After", "60")
				return resp, err
			})}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://r.example/v2/", nil)
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if srv.calls != 1 || time.Since(start) != 0 {
			t.Errorf("%d requests in %s, want 1 at once", srv.calls, time.Since(start))
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
