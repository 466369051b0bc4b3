package backup

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// The Schedule backs up the whole cluster to Seed's location, without
// volume snapshots, for 30 days, and is marked as Seed's.
func TestRenderedScheduleBacksUpTheWholeClusterToSeedsLocation(t *testing.T) {
	got, err := yaml.Marshal(RenderSchedule("velero", "0 3 * * *").Object)
	if err != nil {
		t.Fatal(err)
	}
	const want = `apiVersion: velero.io/v1
kind: Schedule
metadata:
  labels:
    app.kubernetes.io/managed-by: seed-agent
    app.kubernetes.io/part-of: seed
  name: seed-scheduled
  namespace: velero
spec:
  schedule: 0 3 * * *
  template:
    includedNamespaces:
    - '*'
    snapshotVolumes: false
    storageLocation: default
    ttl: 720h0m0s
  useOwnerReferencesInBackup: false
`
	if string(got) != want {
		t.Errorf("rendered Schedule:\n%s\nwant:\n%s", got, want)
	}
}

// schedule builds a Schedule as the API server returns it after Velero's
// controller saw it: Velero adds spec.skipImmediately and a status.
func schedule(t *testing.T, cron string, edit func(obj map[string]any)) *unstructured.Unstructured {
	t.Helper()
	obj := RenderSchedule("velero", cron).DeepCopy()
	obj.SetUID("uid-1")
	_ = unstructured.SetNestedField(obj.Object, false, "spec", "skipImmediately")
	_ = unstructured.SetNestedField(obj.Object, "Enabled", "status", "phase")
	if edit != nil {
		edit(obj.Object)
	}
	return obj
}

func TestPlanSchedule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cron  string
		found *unstructured.Unstructured
		want  ScheduleAction
		says  string
	}{
		{"no schedule and none wanted", "", nil, ScheduleKeep, "not set"},
		{"a schedule set, none there", "0 3 * * *", nil, ScheduleCreate, `spec.backup.schedule is "0 3 * * *"`},
		{"as the spec says, Velero's own fields aside", "0 3 * * *", schedule(t, "0 3 * * *", nil), ScheduleKeep, "as the spec says"},
		{"the cron changed", "0 4 * * *", schedule(t, "0 3 * * *", nil), ScheduleUpdate, `changed from "0 3 * * *" to "0 4 * * *"`},
		{"the TTL edited by hand", "0 3 * * *", schedule(t, "0 3 * * *", func(o map[string]any) {
			_ = unstructured.SetNestedField(o, "1h0m0s", "spec", "template", "ttl")
		}), ScheduleUpdate, "changed by hand"},
		{"paused by hand: Seed does not pause it", "0 3 * * *", schedule(t, "0 3 * * *", func(o map[string]any) {
			_ = unstructured.SetNestedField(o, true, "spec", "paused")
		}), ScheduleKeep, "as the spec says"},
		{"a namespace left out by hand", "0 3 * * *", schedule(t, "0 3 * * *", func(o map[string]any) {
			_ = unstructured.SetNestedStringSlice(o, []string{"default"}, "spec", "template", "includedNamespaces")
		}), ScheduleUpdate, "changed by hand"},
		{"Seed's labels gone", "0 3 * * *", schedule(t, "0 3 * * *", func(o map[string]any) {
			unstructured.RemoveNestedField(o, "metadata", "labels")
		}), ScheduleUpdate, "changed by hand"},
		{"the schedule removed from the spec", "", schedule(t, "0 3 * * *", nil), ScheduleDelete, "no longer set"},
		{"the schedule removed, the object not Seed's", "", schedule(t, "0 3 * * *", func(o map[string]any) {
			unstructured.RemoveNestedField(o, "metadata", "labels")
		}), ScheduleKeep, "left alone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanSchedule("velero", tc.cron, tc.found)
			if got.Action != tc.want || !strings.Contains(got.Reason, tc.says) {
				t.Errorf("PlanSchedule = %s (%s), want %s saying %q", got.Action, got.Reason, tc.want, tc.says)
			}
			if (got.Want != nil) != (got.Action == ScheduleCreate || got.Action == ScheduleUpdate) {
				t.Errorf("%s with a Schedule to apply: %v", got.Action, got.Want != nil)
			}
			if got.Want != nil {
				if cron, _, _ := unstructured.NestedString(got.Want.Object, "spec", "schedule"); cron != tc.cron {
					t.Errorf("applies schedule %q, want %q", cron, tc.cron)
				}
			}
		})
	}
}

func TestScheduleStateFrom(t *testing.T) {
	s := ScheduleStateFrom(schedule(t, "* * * * *", func(o map[string]any) {
		_ = unstructured.SetNestedField(o, "FailedValidation", "status", "phase")
		_ = unstructured.SetNestedField(o, "2026-12-03T03:00:00Z", "status", "lastBackup")
		_ = unstructured.SetNestedStringSlice(o, []string{"invalid schedule: bad"}, "status", "validationErrors")
	}))
	if s.Cron != "* * * * *" || s.Phase != "FailedValidation" || !s.LastBackup.Equal(time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)) ||
		len(s.ValidationErrors) != 1 {
		t.Errorf("ScheduleStateFrom = %+v", s)
	}
}

// The last success is the newest backup the gate would call good, maxAge
// and the store's state aside; what Velero reports as Completed but with
// errors or missing items is not one.
func TestLatestGoodIsTheNewestBackupTheGateCallsGood(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	backup := func(name, status string) Observed {
		t.Helper()
		obj := &unstructured.Unstructured{Object: map[string]any{}}
		obj.SetName(name)
		var st map[string]any
		if err := utiljson.Unmarshal([]byte(status), &st); err != nil {
			t.Fatal(err)
		}
		obj.Object["status"] = st
		return ObservedFrom(name, obj, "", "")
	}
	good := func(name, completed string) Observed {
		return backup(name, `{"phase":"Completed","progress":{"itemsBackedUp":9,"totalItems":9},"completionTimestamp":"`+completed+`"}`)
	}
	deleting := good("seed-scheduled-20261203110000", "2026-12-03T11:00:05Z")
	deleting.Deleting = true
	for _, tc := range []struct {
		name    string
		backups []Observed
		want    string // "" for none
	}{
		{"none", nil, ""},
		{"one good, weeks old", []Observed{good("old", "2026-11-05T03:00:10Z")}, "old"},
		{"the newest of several", []Observed{
			good("seed-scheduled-20261202030000", "2026-12-02T03:00:09Z"),
			good("seed-scheduled-20261203030000", "2026-12-03T03:00:11Z"),
			good("seed-upgrade-1", "2026-12-01T10:00:00Z"),
		}, "seed-scheduled-20261203030000"},
		{"newer ones that are not good are passed over", []Observed{
			good("seed-scheduled-20261202030000", "2026-12-02T03:00:09Z"),
			backup("partial", `{"phase":"PartiallyFailed","errors":1,"progress":{"itemsBackedUp":8,"totalItems":9},"completionTimestamp":"2026-12-03T03:00:12Z"}`),
			backup("completed-with-errors", `{"phase":"Completed","errors":2,"progress":{"itemsBackedUp":9,"totalItems":9},"completionTimestamp":"2026-12-03T04:00:00Z"}`),
			backup("items-missing", `{"phase":"Completed","progress":{"itemsBackedUp":7,"totalItems":9},"completionTimestamp":"2026-12-03T05:00:00Z"}`),
			backup("empty", `{"phase":"Completed","progress":{"itemsBackedUp":0,"totalItems":0},"completionTimestamp":"2026-12-03T06:00:00Z"}`),
			backup("failed", `{"phase":"Failed","failureReason":"HeadObject: connection refused"}`),
			backup("in-progress", `{"phase":"InProgress","progress":{"itemsBackedUp":3,"totalItems":9}}`),
			backup("new", `{}`),
			deleting,
		}, "seed-scheduled-20261202030000"},
		{"no good one at all", []Observed{backup("failed", `{"phase":"Failed"}`), backup("new", `{}`)}, ""},
		{"equal completion times: the later name", []Observed{good("b", "2026-12-03T03:00:00Z"), good("a", "2026-12-03T03:00:00Z")}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := LatestGood(tc.backups, now)
			if ok != (tc.want != "") || got.Name != tc.want {
				t.Errorf("LatestGood = %q, %v; want %q", got.Name, ok, tc.want)
			}
		})
	}
}
