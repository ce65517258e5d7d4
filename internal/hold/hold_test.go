package hold_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/image-pin/image-pin-webhook/internal/hold"
)

func TestAFailureIsHeldForItsDurationThenForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := hold.New[string, error](5*time.Second, 8)
		boom := errors.New("boom")
		f.Hold("a", boom)
		if err, ok := f.Get("a"); !ok || err != boom {
			t.Fatalf("Get right after Hold = %v, %v; want boom, true", err, ok)
		}
		time.Sleep(5*time.Second - time.Nanosecond)
		if _, ok := f.Get("a"); !ok {
			t.Fatal("the failure was dropped before its hold ran out")
		}
		time.Sleep(time.Nanosecond)
		if _, ok := f.Get("a"); ok {
			t.Fatal("the failure is still held after its hold ran out")
		}
		if n := f.Len(); n != 0 {
			t.Errorf("%d failures kept after expiry, want 0", n)
		}
	})
}

func TestForgetDropsAHeldFailure(t *testing.T) {
	f := hold.New[string, error](time.Hour, 8)
	f.Hold("a", errors.New("boom"))
	f.Forget("a")
	if _, ok := f.Get("a"); ok {
		t.Fatal("a forgotten failure is still held")
	}
}

func TestKeysBeyondTheBoundForgetTheOldestFirst(t *testing.T) {
	f := hold.New[int, string](time.Hour, 2)
	f.Hold(1, "one")
	f.Hold(2, "two")
	f.Hold(3, "three")
	if _, ok := f.Get(1); ok {
		t.Error("the oldest failure was kept beyond the bound")
	}
	for _, k := range []int{2, 3} {
		if _, ok := f.Get(k); !ok {
			t.Errorf("failure %d was dropped", k)
		}
	}
}
