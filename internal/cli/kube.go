package cli

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// lazyReader reads Secrets through the kubeconfig, which it loads at the
// first read: a config whose credentials need no Secret resolves without
// any cluster at hand.
type lazyReader struct {
	kubeconfig string

	once   sync.Once
	reader client.Reader
	err    error
}

func newLazyReader(kubeconfig string) *lazyReader { return &lazyReader{kubeconfig: kubeconfig} }

func (l *lazyReader) get() (client.Reader, error) {
	l.once.Do(func() {
		// controller-runtime complains on stderr when its logger is never
		// set; this process has nothing of it to log.
		ctrllog.SetLogger(logr.Discard())
		restCfg, err := ctrl.GetConfig()
		if l.kubeconfig != "" {
			restCfg, err = clientcmd.BuildConfigFromFlags("", l.kubeconfig)
		}
		if err != nil {
			l.err = fmt.Errorf("kubeconfig (to read Secrets with): %w", err)
			return
		}
		if l.reader, err = client.New(restCfg, client.Options{}); err != nil {
			l.err = fmt.Errorf("kubeconfig (to read Secrets with): %w", err)
		}
	})
	return l.reader, l.err
}

func (l *lazyReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r, err := l.get()
	if err != nil {
		return err
	}
	return r.Get(ctx, key, obj, opts...)
}

func (l *lazyReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	r, err := l.get()
	if err != nil {
		return err
	}
	return r.List(ctx, list, opts...)
}
