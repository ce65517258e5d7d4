package cluster

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// WebhookOptions says how to run the image-pin-webhook binary.
type WebhookOptions struct {
	Binary, Config, CertDir, Kubeconfig string
	Metrics                             bool      // serve /metrics on a port of its own; off otherwise
	Args                                []string  // more flags
	Env                                 []string  // added to this process's environment
	Output                              io.Writer // stdout and stderr; discarded when nil
}

// Webhook is an image-pin-webhook process on loopback ports of its own.
type Webhook struct {
	Cmd                  *exec.Cmd
	Port, Probe, Metrics int // Metrics is 0 when off
}

// StartWebhook starts the binary and waits until /readyz answers 200.
func StartWebhook(o WebhookOptions) (*Webhook, error) {
	w := &Webhook{}
	var err error
	if w.Port, err = FreePort(); err != nil {
		return nil, err
	}
	if w.Probe, err = FreePort(); err != nil {
		return nil, err
	}
	metrics := "0"
	if o.Metrics {
		if w.Metrics, err = FreePort(); err != nil {
			return nil, err
		}
		metrics = fmt.Sprintf("127.0.0.1:%d", w.Metrics)
	}
	args := append([]string{"--config", o.Config, "--cert-dir", o.CertDir, "--kubeconfig", o.Kubeconfig, "--port", fmt.Sprint(w.Port),
		"--metrics-bind-address", metrics, "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", w.Probe)}, o.Args...)
	w.Cmd = exec.Command(o.Binary, args...)
	w.Cmd.Env = append(os.Environ(), o.Env...)
	w.Cmd.Stdout, w.Cmd.Stderr = o.Output, o.Output
	if err := w.Cmd.Start(); err != nil {
		return nil, err
	}
	// The bound only ends a broken start: on a busy machine a start takes seconds.
	for deadline := time.Now().Add(90 * time.Second); w.Ready() != http.StatusOK; time.Sleep(50 * time.Millisecond) {
		if exited(w.Cmd.Process.Pid) {
			_ = w.Cmd.Wait()
			return nil, fmt.Errorf("the webhook exited at start: %v", w.Cmd.ProcessState)
		}
		if time.Now().After(deadline) {
			w.Kill()
			_ = w.Cmd.Wait()
			return nil, fmt.Errorf("the webhook did not become ready within 90s")
		}
	}
	return w, nil
}

// Ready is the status code of /readyz, 0 when nothing answers.
func (w *Webhook) Ready() int {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", w.Probe))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// URL is the admission endpoint.
func (w *Webhook) URL() string { return fmt.Sprintf("https://127.0.0.1:%d/mutate", w.Port) }

// Stop sends SIGTERM and waits, killing the process after timeout.
func (w *Webhook) Stop(timeout time.Duration) {
	_ = w.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = w.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		w.Kill()
		<-done
	}
}

// exited reports whether the child pid has exited and waits to be reaped
// (a zombie), as Linux's /proc says; elsewhere it never knows.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// Kill ends the process at once.
func (w *Webhook) Kill() {
	_ = w.Cmd.Process.Kill()
}
