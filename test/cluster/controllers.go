package cluster

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Controllers are the kube-controller-manager controllers the end-to-end
// suite and the demo run: those that turn a Deployment, a CronJob or a Job
// into the ReplicaSets, Jobs and Pods users see, the garbage collector that
// removes what they own, and those that give every namespace its default
// ServiceAccount (kubectl create job and kubectl debug expect one). No
// scheduler and no kubelet run, so Pods stay Pending.
var Controllers = []string{
	"deployment-controller", "replicaset-controller", "statefulset-controller", "replicationcontroller-controller",
	"job-controller", "cronjob-controller", "garbage-collector-controller", "namespace-controller",
	"serviceaccount-controller", "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
}

// ControllerManagerOptions says how to run kube-controller-manager.
type ControllerManagerOptions struct {
	Binary     string
	Kubeconfig string // an admin of the API server
	// ServiceAccountKey is the private key the API server verifies service
	// account tokens with: envtest writes it as sa-signer.key in the API
	// server's CertDir and passes it as --service-account-signing-key-file.
	ServiceAccountKey string
	RootCA            string    // the API server's CA, published in kube-root-ca.crt; optional
	Output            io.Writer // stdout and stderr; discarded when nil
}

// ControllerManager is a kube-controller-manager process.
type ControllerManager struct {
	Cmd    *exec.Cmd
	exited chan error // receives Wait's result once
}

// StartControllerManager starts kube-controller-manager with Controllers
// and waits until the ServiceAccount controller has given namespace default
// its ServiceAccount: by then the informers have synced and the controllers
// run.
func StartControllerManager(o ControllerManagerOptions) (*ControllerManager, error) {
	args := []string{
		"--kubeconfig", o.Kubeconfig,
		"--controllers", strings.Join(Controllers, ","),
		"--leader-elect=false",
		"--secure-port=0", // no health or metrics endpoint: readiness is checked through the API below
		"--service-account-private-key-file", o.ServiceAccountKey,
		"--use-service-account-credentials=false",
		// Controllers create objects at once, as in a real cluster; the
		// defaults (20 QPS) would slow the suite's many namespaces down.
		"--kube-api-qps=200", "--kube-api-burst=400",
		"--concurrent-gc-syncs=5",
		"-v=1",
	}
	if o.RootCA != "" {
		args = append(args, "--root-ca-file", o.RootCA)
	}
	cm := &ControllerManager{Cmd: exec.Command(o.Binary, args...)}
	cm.Cmd.Stdout, cm.Cmd.Stderr = o.Output, o.Output
	if err := cm.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cm.Cmd.Wait() }()
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		cm.stop(exited, 0)
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		cm.stop(exited, 0)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			cm.stop(exited, 0)
			return nil, fmt.Errorf("waiting for kube-controller-manager: %w", err)
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("kube-controller-manager exited at start: %v", err)
		case <-ctx.Done():
			cm.stop(exited, 0)
			return nil, fmt.Errorf("kube-controller-manager did not create namespace default's ServiceAccount within 60s")
		case <-time.After(200 * time.Millisecond):
		}
	}
	cm.exited = exited
	return cm, nil
}

// Stop sends SIGTERM and waits, killing the process after timeout.
func (cm *ControllerManager) Stop(timeout time.Duration) {
	if cm.exited == nil {
		return
	}
	cm.stop(cm.exited, timeout)
}

func (cm *ControllerManager) stop(exited chan error, timeout time.Duration) {
	_ = cm.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		_ = cm.Cmd.Process.Kill()
		<-exited
	}
}
