package registries_test

import (
	"context"
	"testing"
	"time"
)

// Secrets, scripts and sources come from credtest, shared with package
// credentials' own tests.

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
