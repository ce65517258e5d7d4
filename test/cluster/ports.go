package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
)

// FreePort finds a free loopback port for a server of the tests to listen
// on. The kernel's own choice (listening on port 0) comes from the
// ephemeral range, where an outgoing connection can take the port before
// the server binds it, and can be the same port twice in a row once the
// probe is closed: with tests starting webhooks and registries side by
// side, both happened. So it picks at random below the ephemeral range,
// checks the port is free, and never hands out the same one twice in a
// process.
func FreePort() (int, error) {
	lo, hi := 10000, ephemeralStart()
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if !handedOut.claim(port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free loopback port between %d and %d after 1000 tries", lo, hi)
}

// handedOut is every port FreePort returned in this process.
var handedOut = ports{m: map[int]bool{}}

type ports struct {
	mu sync.Mutex
	m  map[int]bool
}

// claim marks port handed out and reports whether it was not already.
func (p *ports) claim(port int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[port] {
		return false
	}
	p.m[port] = true
	return true
}

// ephemeralStart is the first port of Linux's ephemeral range, or 32768
// (its default, and below macOS's 49152) where it cannot be read.
func ephemeralStart() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	var start int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &start); err != nil || start < 20000 {
		return fallback
	}
	return start
}
