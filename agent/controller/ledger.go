package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	seedledger "github.com/seedhq/seed/pkg/ledger"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/pkg/velero"
)

// ledgerEntry is one operation on one machine that the agent has recorded
// and not yet seen through; its format is pkg/ledger's, shared with the
// seed's `seed plan`.
type ledgerEntry = seedledger.Entry

// operations lists the ledger for the planner.
func (l *ledger) operations() []plan.Operation { return seedledger.Operations(l.Entries) }

// ledger is the content of the ledger ConfigMap at one resourceVersion.
// Saving it with that resourceVersion fails with a conflict when anyone else
// wrote in between, which fences two agents that overlap.
type ledger struct {
	Entries         map[string]*ledgerEntry
	resourceVersion string
	exists          bool
	// saved is the encoded content at resourceVersion, so that saving an
	// unchanged ledger costs no write.
	saved map[string]string
}

type ledgerStore struct {
	client    kubernetes.Interface
	namespace string
	name      string
	// cache, when set, is the informer's copy, which load uses while it is
	// still the version this store last read or wrote: then nobody has
	// written since, and an idle pass costs no request. Any other version
	// may be stale (the informer lags our own writes), so load reads the
	// API server. Every write is fenced by the resourceVersion read anyway.
	cache corelisters.ConfigMapLister
	seen  string
}

func (s *ledgerStore) load(ctx context.Context) (*ledger, error) {
	if s.cache != nil && s.seen != "" {
		if cm, err := s.cache.ConfigMaps(s.namespace).Get(s.name); err == nil && cm.ResourceVersion == s.seen {
			return &ledger{Entries: seedledger.Decode(cm.Data), resourceVersion: cm.ResourceVersion, exists: true, saved: cm.Data}, nil
		}
	}
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &ledger{Entries: map[string]*ledgerEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ledger %s/%s: %w", s.namespace, s.name, err)
	}
	s.seen = cm.ResourceVersion
	return &ledger{Entries: seedledger.Decode(cm.Data), resourceVersion: cm.ResourceVersion, exists: true, saved: cm.Data}, nil
}

// save writes the ledger. A conflict means another writer got there first;
// the caller must start its reconcile over.
func (s *ledgerStore) save(ctx context.Context, l *ledger) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:            s.name,
			Namespace:       s.namespace,
			ResourceVersion: l.resourceVersion,
			// Out of backups: a restored ledger would be stale.
			Labels: map[string]string{"app.kubernetes.io/managed-by": "seed-agent", velero.ExcludeLabel: "true"},
		},
		Data: map[string]string{},
	}
	names := make([]string, 0, len(l.Entries))
	for name := range l.Entries {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := json.Marshal(l.Entries[name])
		if err != nil {
			return fmt.Errorf("encoding ledger entry %s: %w", name, err)
		}
		cm.Data[name] = string(b)
	}
	if l.exists && maps.Equal(cm.Data, l.saved) {
		return nil
	}
	var out *corev1.ConfigMap
	var err error
	if l.exists {
		out, err = s.client.CoreV1().ConfigMaps(s.namespace).Update(ctx, cm, metav1.UpdateOptions{})
	} else {
		out, err = s.client.CoreV1().ConfigMaps(s.namespace).Create(ctx, cm, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing ledger %s/%s: %w", s.namespace, s.name, err)
	}
	l.resourceVersion, l.exists, l.saved = out.ResourceVersion, true, cm.Data
	s.seen = out.ResourceVersion
	return nil
}
