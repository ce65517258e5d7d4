package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Reconcile writes the Secret's key pair into the directory when the files
// differ from it. A Secret not yet filled by the rotator, or holding a pair
// that does not match, is left for its next update.
func (w *fileWriter) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.NamespacedName != w.key {
		return reconcile.Result{}, nil
	}
	secret := &corev1.Secret{}
	if err := w.reader.Get(ctx, w.key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			w.log.Info("the certificate Secret is gone; the files in place are kept until it is back", "secret", w.key.String())
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	crt, key := secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return reconcile.Result{}, nil
	}
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		w.log.Info("the certificate Secret holds no usable key pair yet", "secret", w.key.String(), "error", err.Error())
		return reconcile.Result{}, nil
	}
	changed, err := writeKeyPair(w.dir, crt, key)
	if err != nil {
		// Requeued with controller-runtime's backoff; counted in
		// controller_runtime_reconcile_errors_total{controller="cert-files"}.
		return reconcile.Result{}, fmt.Errorf("writing the serving certificate into %s: %w", w.dir, err)
	}
	if changed {
		w.log.Info("serving certificate written", "dir", w.dir, "secret", w.key.String())
	}
	if w.first {
		w.first = false // Reconcile never runs concurrently with itself
		close(w.written)
	}
	return reconcile.Result{}, nil
}

// writeKeyPair writes tls.key, then tls.crt, each by rename so a reader
// never sees half a file; it reports whether anything changed. Between the
// two renames the files do not match: the certwatcher keeps the pair it has
// and reads again on the next change.
func writeKeyPair(dir string, crt, key []byte) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	changed := false
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{corev1.TLSPrivateKeyKey, key, 0o600}, {corev1.TLSCertKey, crt, 0o644}} {
		path := filepath.Join(dir, f.name)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		tmp, err := os.CreateTemp(dir, "."+f.name+"-")
		if err != nil {
			return changed, err
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), f.mode)); err != nil {
			_ = os.Remove(tmp.Name())
			return changed, err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			_ = os.Remove(tmp.Name())
			return changed, err
		}
		changed = true
	}
	return changed, nil
}
