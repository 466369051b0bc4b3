package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// ledgerEntry is one operation (plan.Operation) on one machine that the
// agent has recorded and not yet seen through. Its Step is the next step to
// take, written before that step is taken, so an agent killed at any point
// resumes exactly there. Every step is idempotent.
type ledgerEntry struct {
	Op                plan.OperationType `json:"op"`
	Step              plan.Step          `json:"step,omitempty"`
	Pool              string             `json:"pool"`
	Role              string             `json:"role,omitempty"`
	MachineType       string             `json:"machineType,omitempty"`
	KubernetesVersion string             `json:"kubernetesVersion,omitempty"`
	Reason            string             `json:"reason,omitempty"`
	RecordedAt        time.Time          `json:"recordedAt"`
	DrainStartedAt    *time.Time         `json:"drainStartedAt,omitempty"`
	// PodsLeft and BlockedBy are where the drain last stood, so that the
	// decision to give up on it can say what it gave up on, whichever agent
	// takes it.
	PodsLeft  int      `json:"podsLeft,omitempty"`
	BlockedBy []string `json:"blockedBy,omitempty"`
	// LastError is the last failure of this operation's current step.
	LastError string `json:"lastError,omitempty"`
	// Replaces is the control-plane machine a replace-control-plane
	// operation replaces; the entry's name is the new machine's.
	Replaces string `json:"replaces,omitempty"`
	// StepStartedAt is when the current step became the next one.
	StepStartedAt *time.Time `json:"stepStartedAt,omitempty"`
	// Waiting says what the current step waits for, when it waits.
	Waiting string `json:"waiting,omitempty"`
}

// step returns the next step, for entries written before steps were
// recorded: a creation's only step, a deletion's first.
func (e *ledgerEntry) step() plan.Step {
	switch {
	case e.Step != "":
		return e.Step
	case e.Op == plan.OpCreate:
		return plan.StepCreate
	case e.Op == plan.OpReplaceControlPlane:
		return plan.StepPrepare
	default:
		return plan.StepDrain
	}
}

// operation is the entry as the planner reads it.
func (e *ledgerEntry) operation(name string) plan.Operation {
	op := plan.Operation{Type: e.Op, Machine: name, Step: e.step(), Pool: e.Pool, RecordedAt: e.RecordedAt,
		Spec: e.machineSpec(name), Replaces: e.Replaces}
	if e.DrainStartedAt != nil {
		op.DrainStartedAt = *e.DrainStartedAt
	}
	return op
}

func (e *ledgerEntry) machineSpec(name string) providers.MachineSpec {
	return providers.MachineSpec{Name: name, Pool: e.Pool, Role: providers.Role(e.Role),
		MachineType: e.MachineType, KubernetesVersion: e.KubernetesVersion}
}

// operations lists the ledger for the planner.
func (l *ledger) operations() []plan.Operation {
	out := make([]plan.Operation, 0, len(l.Entries))
	for _, name := range sortedKeys(l.Entries) {
		out = append(out, l.Entries[name].operation(name))
	}
	return out
}

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
}

func (s ledgerStore) load(ctx context.Context) (*ledger, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &ledger{Entries: map[string]*ledgerEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ledger %s/%s: %w", s.namespace, s.name, err)
	}
	l := &ledger{Entries: map[string]*ledgerEntry{}, resourceVersion: cm.ResourceVersion, exists: true, saved: cm.Data}
	for name, raw := range cm.Data {
		var e ledgerEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			// A damaged entry must not stop the agent; it is dropped and the
			// planner's orphan rule takes care of any machine behind it.
			continue
		}
		l.Entries[name] = &e
	}
	return l, nil
}

// save writes the ledger. A conflict means another writer got there first;
// the caller must start its reconcile over.
func (s ledgerStore) save(ctx context.Context, l *ledger) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:            s.name,
			Namespace:       s.namespace,
			ResourceVersion: l.resourceVersion,
			Labels:          map[string]string{"app.kubernetes.io/managed-by": "seed-agent"},
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
	return nil
}
