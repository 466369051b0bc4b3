package autoscale

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// replica is pod i of a ReplicaSet as the API server sends it: every map
// and slice its own, equal to those of the other replicas.
func replica(i int, app string) *corev1.Pod {
	p := richPod()
	p.Name = fmt.Sprintf("%s-%d", app, i)
	p.Namespace = string([]byte("shop")) // a string of its own, as decoded
	p.UID = "u-" + p.UID + p.UID
	p.Labels = map[string]string{"app": app, "pod-template-hash": "5d8f"}
	p.Spec.NodeSelector = map[string]string{"pool": "workers"}
	p.Spec.Tolerations = []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
	}
	return p
}

func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestInternerSharesWhatReplicasHaveInCommon(t *testing.T) {
	var in Interner
	a, b := replica(1, "web"), replica(2, "web")
	ra, rb := in.PodOf(a), in.PodOf(b)
	for _, c := range []struct {
		pod    *corev1.Pod
		record *Pod
	}{{a, ra}, {b, rb}} {
		if want := PodOf(c.pod); !reflect.DeepEqual(c.record, want) {
			t.Errorf("Interner.PodOf(%s) = %+v\nwant PodOf's %+v", c.pod.Name, c.record, want)
		}
	}
	if !sameMap(ra.Labels, rb.Labels) || !sameMap(ra.NodeSelector, rb.NodeSelector) {
		t.Errorf("two replicas' equal labels or node selectors are two maps")
	}
	if &ra.Tolerations[0] != &rb.Tolerations[0] {
		t.Errorf("two replicas' equal tolerations are two slices")
	}

	// What differs stays apart: another app's labels, another toleration.
	c := replica(1, "api")
	c.Spec.Tolerations[0].TolerationSeconds = ptr.To[int64](30)
	rc := in.PodOf(c)
	if sameMap(rc.Labels, ra.Labels) || rc.Labels["app"] != "api" {
		t.Errorf("labels %v of another app share web's %v", rc.Labels, ra.Labels)
	}
	if !sameMap(rc.NodeSelector, ra.NodeSelector) {
		t.Errorf("an equal node selector of another app is not shared")
	}
	if &rc.Tolerations[0] == &ra.Tolerations[0] || *rc.Tolerations[0].TolerationSeconds != 30 {
		t.Errorf("a toleration of 30s shares the one of 300s")
	}
	// No toleration seconds is not zero seconds.
	d, e := replica(3, "web"), replica(4, "web")
	d.Spec.Tolerations[0].TolerationSeconds = nil
	e.Spec.Tolerations[0].TolerationSeconds = ptr.To[int64](0)
	if rd, re := in.PodOf(d), in.PodOf(e); &rd.Tolerations[0] == &re.Tolerations[0] {
		t.Errorf("tolerations without seconds and with 0 seconds are shared")
	}
}

func TestInternerTablesStayBounded(t *testing.T) {
	var in Interner
	for i := range internLimit + 10 {
		// A StatefulSet: every pod's labels differ.
		p := replica(i, "db")
		p.Labels["statefulset.kubernetes.io/pod-name"] = p.Name
		if r := in.PodOf(p); r.Labels["statefulset.kubernetes.io/pod-name"] != p.Name {
			t.Fatalf("pod %s got the labels %v", p.Name, r.Labels)
		}
	}
	if n := len(in.maps); n > internLimit {
		t.Errorf("the map table holds %d entries, more than %d", n, internLimit)
	}
}

// The agent's pod cache holds records, keyed as the pods they come from.
func TestRecordsAreKeyedAsTheirPods(t *testing.T) {
	p := replica(7, "web")
	podKey, err := cache.MetaNamespaceKeyFunc(p)
	if err != nil {
		t.Fatal(err)
	}
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := store.Add(PodOf(p)); err != nil {
		t.Fatal(err)
	}
	got, ok, err := store.GetByKey(podKey)
	if err != nil || !ok || got.(*Pod).Name != p.Name {
		t.Fatalf("the record of %s is not found under %q: %v %v %v", p.Name, podKey, got, ok, err)
	}
	if byNS, _ := store.ByIndex(cache.NamespaceIndex, p.Namespace); len(byNS) != 1 {
		t.Errorf("the namespace index holds %d records for %s, want 1", len(byNS), p.Namespace)
	}
	p.DeletionTimestamp = ptr.To(metav1.NewTime(podTime))
	p.Status.Phase = corev1.PodSucceeded
	if r := PodOf(p); !r.Terminating || !r.DeleteAt.Equal(podTime) || !r.Finished {
		t.Errorf("a deleted, succeeded pod's record: Terminating %v DeleteAt %s Finished %v", r.Terminating, r.DeleteAt, r.Finished)
	}
}
