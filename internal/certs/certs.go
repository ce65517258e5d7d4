// Package certs keeps the webhook's own CA and serving certificate, for
// clusters without cert-manager, so that a chart rendered by Argo CD or Flux
// holds no key material and renders the same every time.
//
// open-policy-agent/cert-controller's rotator does the certificate work, as
// in Gatekeeper: it fills a Secret with a CA (10 years) and a serving
// certificate (1 year), checks them every 12 hours and renews them 90 days
// before they expire, and writes the CA into the caBundle of every webhook
// of one MutatingWebhookConfiguration, again whenever something (helm, a
// GitOps sync) writes it back empty. Around it, this package creates the
// Secret when it is missing (the rotator only updates one) and writes
// tls.crt and tls.key from it into the server's certificate directory (the
// rotator expects a mounted Secret, whose volume the kubelet refreshes only
// after a minute or more; controller-runtime's certwatcher reads the files
// again when they change).
//
// Every replica runs all of it, with or without leader election: the first
// to write the Secret wins, the others read its CA (an update from an
// out-of-date copy fails on the resourceVersion and is retried).
package certs

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Names in the certificates and on the objects this package writes.
const (
	caName       = "image-pin-webhook-ca"
	organization = "image-pin-webhook"
	fieldOwner   = "image-pin-webhook"
	// createTimeout bounds the start-up request that creates the Secret.
	createTimeout = 30 * time.Second
)

// Options say which Secret, webhook configuration and name to serve.
type Options struct {
	Secret        types.NamespacedName // holds ca.crt, ca.key, tls.crt and tls.key
	WebhookConfig string               // the MutatingWebhookConfiguration whose caBundles get the CA
	// DNSName is the serving certificate's name (the Service's
	// NAME.NAMESPACE.svc); it also carries DNSName.cluster.local.
	DNSName string
	CertDir string // where tls.crt and tls.key are written
	Log     logr.Logger
}

// Add creates the Secret when it is missing and adds to mgr the rotator and
// the controller that writes the certificate into o.CertDir. The channel it
// returns is closed once the Secret's certificate is in o.CertDir and the
// CA has been written into the webhook configuration (or found it absent):
// the webhook server must not start before, its certwatcher reads the files
// at start.
func Add(ctx context.Context, mgr manager.Manager, o Options) (<-chan struct{}, error) {
	if err := ensureSecret(ctx, mgr, o.Secret); err != nil {
		return nil, err
	}
	rotated := make(chan struct{})
	err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      o.Secret,
		CertDir:        o.CertDir,
		CAName:         caName,
		CAOrganization: organization,
		DNSName:        o.DNSName,
		ExtraDNSNames:  []string{o.DNSName + ".cluster.local"},
		IsReady:        rotated,
		Webhooks:       []rotator.WebhookInfo{{Name: o.WebhookConfig, Type: rotator.Mutating}},
		FieldOwner:     fieldOwner,
		// Every replica serves, so every replica keeps its files and the
		// caBundle current, leader or not.
		RequireLeaderElection: false,
	})
	if err != nil {
		return nil, fmt.Errorf("--cert-secret: %w", err)
	}
	written := make(chan struct{})
	if err := addFileWriter(mgr, o, written); err != nil {
		return nil, fmt.Errorf("--cert-secret: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		for _, c := range []<-chan struct{}{rotated, written} {
			select {
			case <-c:
			case <-ctx.Done():
				return
			}
		}
		o.Log.Info("serving certificate ready", "secret", o.Secret.String(), "dir", o.CertDir, "webhookConfiguration", o.WebhookConfig)
		close(ready)
	}()
	return ready, nil
}

// ensureSecret creates the Secret empty when it does not exist: the rotator
// fills it, and fails at start if there is none to fill. A Secret an admin
// created beforehand is used as it is.
func ensureSecret(ctx context.Context, mgr manager.Manager, key types.NamespacedName) error {
	ctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	err := mgr.GetAPIReader().Get(ctx, key, &corev1.Secret{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("--cert-secret: reading Secret %s: %w", key, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": fieldOwner}},
		// Opaque, not kubernetes.io/tls: that type must hold tls.crt and
		// tls.key from its creation.
		Type: corev1.SecretTypeOpaque,
	}
	if err := mgr.GetClient().Create(ctx, secret, client.FieldOwner(fieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("--cert-secret: creating Secret %s: %w", key, err)
	}
	return nil
}

// fileWriter copies tls.crt and tls.key from the Secret into the
// certificate directory whenever they change.
type fileWriter struct {
	reader  client.Reader
	key     types.NamespacedName
	dir     string
	log     logr.Logger
	written chan struct{} // closed after the first write
	first   bool
}

// addFileWriter watches the one Secret, through a cache of its own limited
// to it, so no other Secret of the namespace is held in memory twice.
func addFileWriter(mgr manager.Manager, o Options, written chan struct{}) error {
	secrets, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {
			Namespaces: map[string]cache.Config{o.Secret.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", o.Secret.Name),
		}},
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(everyReplica{secrets}); err != nil {
		return err
	}
	w := &fileWriter{reader: secrets, key: o.Secret, dir: o.CertDir, log: o.Log, written: written, first: true}
	c, err := controller.NewUnmanaged("cert-files", controller.Options{Reconciler: w, NeedLeaderElection: ptr(false)})
	if err != nil {
		return err
	}
	if err := c.Watch(source.Kind(secrets, &corev1.Secret{}, &handler.TypedEnqueueRequestForObject[*corev1.Secret]{})); err != nil {
		return err
	}
	return mgr.Add(c)
}

// everyReplica runs a cache whether or not this replica leads.
type everyReplica struct{ cache.Cache }

func (everyReplica) NeedLeaderElection() bool { return false }

func ptr[T any](v T) *T { return &v }
