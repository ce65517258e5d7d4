package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// baseTransport is the connection pool of one entry, with its TLS settings.
func baseTransport(e *Config) (*http.Transport, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: e.Insecure} //nolint:gosec // insecure: true asks for it, as in Argo CD Image Updater
	if e.CAFile != "" || e.CAData != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if e.CAFile != "" {
			pem, err := os.ReadFile(e.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca_file: %v", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", e.CAFile)
			}
		}
		if e.CAData != "" && !pool.AppendCertsFromPEM([]byte(e.CAData)) {
			return nil, fmt.Errorf("ca_data: holds no PEM certificate")
		}
		tlsConf.RootCAs = pool
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}).DialContext,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
	}, nil
}

// schemeTransport makes every request to the entry's host use api_url's
// scheme, so plain-HTTP registries on any host work and HTTPS ones never
// fall back to plain HTTP.
type schemeTransport struct {
	host, scheme string
	next         http.RoundTripper
}

func (t *schemeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == t.host && r.URL.Scheme != t.scheme {
		r = r.Clone(r.Context())
		r.URL.Scheme = t.scheme
	}
	return t.next.RoundTrip(r)
}

// limitTransport spends one token of the entry's rate limit per request,
// token requests included, waiting no longer than the request's context.
type limitTransport struct {
	limiter *fairLimiter // shared fairly among the namespaces asking
	next    http.RoundTripper
}

func (t *limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.limiter.Wait(r.Context(), tenantOf(r.Context())); err != nil {
		return nil, fmt.Errorf("waiting for the registry's rate limit: %w", err)
	}
	return t.next.RoundTrip(r)
}

// countTransport counts requests by status code.
type countTransport struct {
	registry string
	metrics  *Metrics
	next     http.RoundTripper
}

func (t *countTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.metrics.request(t.registry, code)
	return resp, err
}

// retryTransport retries the answers go-containerregistry retries (408,
// 429 honouring Retry-After, 5xx; see retryable) with doubling, jittered
// backoff, and connection errors, but only while the caller's deadline
// leaves room for the wait; otherwise the caller gets the answer as it came.
type retryTransport struct {
	attempts int
	backoff  time.Duration
	jitter   float64 // each backoff grows by up to this fraction of itself
	maxWait  time.Duration
	next     http.RoundTripper
}

func (t *retryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return t.next.RoundTrip(r)
	}
	ctx := r.Context()
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(r)
		if attempt >= t.attempts || ctx.Err() != nil {
			return resp, err
		}
		backoff := jittered(t.backoff<<(attempt-1), t.jitter)
		var wait time.Duration
		switch {
		case err != nil:
			wait = jittered(t.backoff, t.jitter)
		case resp.StatusCode == http.StatusTooManyRequests:
			wait = retryAfter(resp.Header.Get("Retry-After"), backoff)
		case retryable(resp.StatusCode):
			wait = backoff
		default:
			return resp, nil
		}
		if !roomFor(ctx, wait, t.maxWait) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrained))
			resp.Body.Close()
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
	}
}

// jittered is d grown by a random part of up to jitter×d, as
// k8s.io/apimachinery's wait.Jitter (which go-containerregistry uses).
func jittered(d time.Duration, jitter float64) time.Duration {
	if jitter <= 0 {
		return d
	}
	return d + time.Duration(rand.Float64()*jitter*float64(d))
}

// roomFor reports whether waiting d still leaves the request time to run.
func roomFor(ctx context.Context, d, maxWait time.Duration) bool {
	if d > maxWait {
		return false
	}
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl) > d+retryRoom
	}
	return true
}

func retryAfter(h string, fallback time.Duration) time.Duration {
	if h == "" {
		return fallback
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
		return 0
	}
	return fallback
}
