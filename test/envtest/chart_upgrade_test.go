package envtest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// TestAnUpgradeWithoutCertManagerKeepsTheCA installs the chart for real with
// certManager.enabled=false and certificates.generator=helm, upgrades it, and checks that the CA bundle did
// not change under running pods (the chart reuses its Secret via lookup).
// Not parallel: the release's webhook configuration selects every opted-in
// namespace and points at a Service nothing serves here, so each admission
// there would wait for it while the release is installed.
func TestAnUpgradeWithoutCertManagerKeepsTheCA(t *testing.T) {
	ns := namespace(t, false)
	release := uniq("lookup")
	c, _ := kube(t)
	kubeconfig := filepath.Join(s.dir, "kubeconfig")
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, ptr(ns)
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(cluster.ChartDir())
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{"certManager": map[string]any{"enabled": false}, "certificates": map[string]any{"generator": "helm"}}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace, inst.Timeout = release, ns, time.Minute
	if _, err := inst.Run(ch, values); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = action.NewUninstall(cfg).Run(release) })
	caOf := func() ([]byte, []byte) {
		var secret corev1.Secret
		if err := c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: release + "-image-pin-webhook-tls"}, &secret); err != nil {
			t.Fatal(err)
		}
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx(t), client.ObjectKey{Name: release + "-image-pin-webhook"}, &mwc); err != nil {
			t.Fatal(err)
		}
		return secret.Data["ca.crt"], mwc.Webhooks[0].ClientConfig.CABundle
	}
	before, bundle := caOf()
	if len(before) == 0 || !bytes.Equal(before, bundle) {
		t.Fatal("after install the caBundle is not the Secret's CA")
	}
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Timeout = ns, time.Minute
	if _, err := up.Run(release, ch, values); err != nil {
		t.Fatal(err)
	}
	after, bundle := caOf()
	if !bytes.Equal(before, after) || !bytes.Equal(after, bundle) {
		t.Fatal("the upgrade changed the CA")
	}
}

func TestARotatedServingCertificateIsServedWithoutARestart(t *testing.T) {
	t.Parallel()
	p := startOwn(t, "http://"+s.plain.Host, filepath.Join(s.dir, "kubeconfig"))
	serial := func() string {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port), &tls.Config{RootCAs: s.authority.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	if err := s.authority.Issue(p.certDir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second) // the bound only ends a broken run
	for serial() == first {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not picked up")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
