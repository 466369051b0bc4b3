package backup

import (
	"context"
	"fmt"
	"github.com/seedhq/seed/pkg/velero"
	"math"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/seedhq/seed/manifests"
)

// LabelTakenBy marks a Backup someone asked for by hand (`seed backup`).
const LabelTakenBy = velero.LabelTakenBy

// ScheduleName is the Velero Schedule the agent keeps for
// spec.backup.schedule, in Velero's namespace. Its backups are named
// seed-scheduled-<UTC timestamp> by Velero.
const ScheduleName = "seed-scheduled"

// ScheduleTTL is how long Velero keeps each scheduled backup before it
// deletes it from the cluster and the store: Velero's own default, 30 days.
const ScheduleTTL = 720 * time.Hour

// ScheduleGVR is Velero's Schedule resource.
var ScheduleGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "schedules"}

// scheduleLabels mark the Schedule as Seed's; Velero copies a Schedule's
// labels onto the Backups it creates, so those carry them too.
var scheduleLabels = map[string]any{
	"app.kubernetes.io/part-of":    "seed",
	"app.kubernetes.io/managed-by": FieldManager,
}

// RenderSchedule is the Schedule that takes a backup of the whole cluster
// at every time cron names: every namespace (and so, by Velero's rule, the
// cluster-scoped resources too), to Seed's BackupStorageLocation, with no
// volume snapshots (Seed installs no snapshot location) and ScheduleTTL.
// Backups do not point at the Schedule as their owner, so deleting it
// leaves them to expire on their own.
func RenderSchedule(namespace, cron string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1",
		"kind":       "Schedule",
		"metadata": map[string]any{
			"name":      ScheduleName,
			"namespace": namespace,
			"labels":    scheduleLabels,
		},
		"spec": map[string]any{
			"schedule": cron,
			"template": map[string]any{
				"includedNamespaces": []any{"*"},
				"storageLocation":    manifests.VeleroLocation,
				"snapshotVolumes":    false,
				"ttl":                ScheduleTTL.String(),
			},
			"useOwnerReferencesInBackup": false,
		},
	}}
}

// ScheduleAction is what keeping the Schedule in line takes.
type ScheduleAction string

const (
	ScheduleKeep   ScheduleAction = "Keep"
	ScheduleCreate ScheduleAction = "Create"
	ScheduleUpdate ScheduleAction = "Update"
	ScheduleDelete ScheduleAction = "Delete"
)

// ScheduleStep is one decision about the Schedule, with its reason.
type ScheduleStep struct {
	Action ScheduleAction
	Reason string
	// Want is the Schedule to apply (Create, Update).
	Want *unstructured.Unstructured
	// Found is the Schedule there is (Keep, Update, Delete), nil if none.
	Found *unstructured.Unstructured
}

// PlanSchedule decides what to do about the Schedule in namespace, given
// the spec's cron ("" for none) and the Schedule found (nil if there is
// none). An object of that name without Seed's labels is someone else's:
// it is never deleted, but a schedule in the spec takes it over.
func PlanSchedule(namespace, cron string, found *unstructured.Unstructured) ScheduleStep {
	if cron == "" {
		switch {
		case found == nil:
			return ScheduleStep{Action: ScheduleKeep, Reason: "spec.backup.schedule is not set and there is no Schedule"}
		case !isSeeds(found):
			return ScheduleStep{Action: ScheduleKeep, Found: found,
				Reason: fmt.Sprintf("spec.backup.schedule is not set, and Schedule %s lacks Seed's labels, so it is left alone", ScheduleName)}
		}
		return ScheduleStep{Action: ScheduleDelete, Found: found,
			Reason: "spec.backup.schedule is no longer set; the Schedule's backups stay until their TTL"}
	}
	want := RenderSchedule(namespace, cron)
	if found == nil {
		return ScheduleStep{Action: ScheduleCreate, Want: want, Reason: fmt.Sprintf("spec.backup.schedule is %q", cron)}
	}
	if had, _, _ := unstructured.NestedString(found.Object, "spec", "schedule"); had != cron {
		return ScheduleStep{Action: ScheduleUpdate, Want: want, Found: found,
			Reason: fmt.Sprintf("spec.backup.schedule changed from %q to %q", had, cron)}
	}
	if !holds(found.Object["spec"], want.Object["spec"]) || !isSeeds(found) {
		return ScheduleStep{Action: ScheduleUpdate, Want: want, Found: found,
			Reason: "the Schedule was changed by hand; putting back Seed's"}
	}
	return ScheduleStep{Action: ScheduleKeep, Found: found, Reason: "the Schedule is as the spec says"}
}

func isSeeds(obj *unstructured.Unstructured) bool {
	labels, _, _ := unstructured.NestedMap(obj.Object, "metadata", "labels")
	return holds(labels, scheduleLabels)
}

// holds reports whether got has every field of want with want's value;
// fields only got has (Velero's own, like spec.skipImmediately) are
// ignored.
func holds(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !holds(gv, wv) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(got, want)
	}
}

// ScheduleState is Velero's account of the Schedule.
type ScheduleState struct {
	Cron string
	// Phase is New, Enabled or FailedValidation ("" before Velero looked).
	Phase string
	// LastBackup is when Velero last started one of its backups (zero if
	// never).
	LastBackup       time.Time
	ValidationErrors []string
}

// ScheduleStateFrom reads a Schedule's spec and status.
func ScheduleStateFrom(obj *unstructured.Unstructured) ScheduleState {
	var s ScheduleState
	s.Cron, _, _ = unstructured.NestedString(obj.Object, "spec", "schedule")
	s.Phase, _, _ = unstructured.NestedString(obj.Object, "status", "phase")
	if v, _, _ := unstructured.NestedString(obj.Object, "status", "lastBackup"); v != "" {
		s.LastBackup, _ = time.Parse(time.RFC3339, v)
	}
	s.ValidationErrors, _, _ = unstructured.NestedStringSlice(obj.Object, "status", "validationErrors")
	return s
}

// Scheduler reads and writes Velero's Schedule and Backups.
type Scheduler struct {
	Dynamic dynamic.Interface
	// Namespace is Velero's (default velero).
	Namespace string
}

func (s *Scheduler) namespace() string {
	if s.Namespace == "" {
		return manifests.DefaultVeleroNamespace
	}
	return s.Namespace
}

// Plan reads the Schedule and decides what cron ("" for none) needs.
func (s *Scheduler) Plan(ctx context.Context, cron string) (ScheduleStep, error) {
	found, err := s.Dynamic.Resource(ScheduleGVR).Namespace(s.namespace()).Get(ctx, ScheduleName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		found = nil
	case err != nil:
		return ScheduleStep{}, fmt.Errorf("reading Schedule %s/%s: %w", s.namespace(), ScheduleName, err)
	}
	return PlanSchedule(s.namespace(), cron, found), nil
}

// Do takes step and returns the Schedule there is afterwards (nil if
// none). Create and Update are one server-side apply.
func (s *Scheduler) Do(ctx context.Context, step ScheduleStep) (*unstructured.Unstructured, error) {
	ri := s.Dynamic.Resource(ScheduleGVR).Namespace(s.namespace())
	switch step.Action {
	case ScheduleCreate, ScheduleUpdate:
		got, err := ri.Apply(ctx, ScheduleName, step.Want, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err != nil {
			return nil, fmt.Errorf("applying Schedule %s/%s: %w", s.namespace(), ScheduleName, err)
		}
		return got, nil
	case ScheduleDelete:
		uid := step.Found.GetUID()
		err := ri.Delete(ctx, ScheduleName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("deleting Schedule %s/%s: %w", s.namespace(), ScheduleName, err)
		}
		return nil, nil
	}
	return step.Found, nil
}

// Backups reads every Backup in Velero's namespace, page by page.
func (s *Scheduler) Backups(ctx context.Context) ([]Observed, error) {
	var out []Observed
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := s.Dynamic.Resource(BackupGVR).Namespace(s.namespace()).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing Backups in %s: %w", s.namespace(), err)
		}
		for i := range list.Items {
			out = append(out, ObservedFrom(list.Items[i].GetName(), &list.Items[i], "", ""))
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}

// LatestGood returns the backup that completed last among those Judge
// finds good, whatever their age and whatever the store's state now (a
// backup that completed stays good while it exists): Completed, no errors,
// and every item it counted backed up. ok is false when there is none.
func LatestGood(backups []Observed, now time.Time) (latest Observed, ok bool) {
	for _, o := range backups {
		o.LocationPhase, o.LocationMessage = "Available", ""
		if !Judge(o, now, math.MaxInt64).Good {
			continue
		}
		if !ok || o.Completed.After(latest.Completed) || (o.Completed.Equal(latest.Completed) && o.Name > latest.Name) {
			latest, ok = o, true
		}
	}
	return latest, ok
}
