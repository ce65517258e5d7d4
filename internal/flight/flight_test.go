package flight_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/image-pin/image-pin-webhook/internal/flight"
)

type key struct {
	repo string
	n    int
}

func TestConcurrentCallersOfOneKeyShareOneRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g flight.Group[key, int]
		var runs atomic.Int32
		release := make(chan struct{})
		fn := func() (int, error) { runs.Add(1); <-release; return 42, nil }
		got := make(chan int, 3)
		for range 3 {
			go func() {
				v, _ := g.Do(context.Background(), key{"a", 1}, fn)
				got <- v
			}()
		}
		synctest.Wait()
		close(release)
		for range 3 {
			if v := <-got; v != 42 {
				t.Errorf("a caller got %d, want 42", v)
			}
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("fn ran %d times for three callers of one key, want 1", n)
		}
	})
}

func TestKeysThatDifferInAnyFieldRunApart(t *testing.T) {
	var g flight.Group[key, string]
	a, _ := g.Do(context.Background(), key{"a", 1}, func() (string, error) { return "a1", nil })
	b, _ := g.Do(context.Background(), key{"a", 2}, func() (string, error) { return "a2", nil })
	if a != "a1" || b != "a2" {
		t.Errorf("got %q and %q, want a1 and a2", a, b)
	}
}

func TestACallerWhoseContextEndsStopsWaitingAndTheRunGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g flight.Group[key, int]
		release := make(chan struct{})
		finished := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := g.Do(ctx, key{"a", 1}, func() (int, error) { <-release; close(finished); return 1, nil })
			errc <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Do after cancel = %v, want context.Canceled", err)
		}
		close(release)
		<-finished
	})
}

func TestAPanicIsTheRunsError(t *testing.T) {
	var g flight.Group[key, int]
	_, err := g.Do(context.Background(), key{"a", 1}, func() (int, error) { panic("boom") })
	if err == nil {
		t.Fatal("a panicking run returned no error")
	}
}
