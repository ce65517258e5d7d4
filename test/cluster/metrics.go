package cluster

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// MetricSum sums the series of the metric whose lines start with prefix
// (a name, or a name and the start of its labels) on the /metrics port of
// a webhook started here.
func MetricSum(port int, prefix string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			total += v
		}
	}
	return total, nil
}
