package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/velero"
)

// drillWorkload is what the drills back up and expect back: a namespace
// with a ConfigMap and a Secret holding a nonce, and a Deployment of one
// pod (kubeadm's pause image, which every node has).
type drillWorkload struct {
	Namespace string
	Data      map[string]string
	Secret    map[string][]byte
}

func newDrillWorkload(namespace string) drillWorkload {
	nonce := rand.Text()
	return drillWorkload{Namespace: namespace,
		Data:   map[string]string{"nonce": nonce, "note": "backed up by seed backup"},
		Secret: map[string][]byte{"password": []byte("secret-" + nonce)}}
}

func (w drillWorkload) create(ctx context.Context, t testing.TB, client kubernetes.Interface, withDeployment bool) {
	t.Helper()
	ns := w.Namespace
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "drill-data"}, Data: w.Data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "drill-secret"}, Data: w.Secret}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !withDeployment {
		return
	}
	labels := map[string]string{"app": "drill"}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "drill-app"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// One machine: the control plane runs it.
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers:  []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10.1", ImagePullPolicy: corev1.PullNever}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.waitRunning(ctx, t, client, 3*time.Minute)
}

// waitRunning waits until the Deployment has its pod Running and Ready.
func (w drillWorkload) waitRunning(ctx context.Context, t testing.TB, client kubernetes.Interface, timeout time.Duration) time.Duration {
	t.Helper()
	return framework.Eventually(t, timeout, "the drill's Deployment to run its pod", func() (bool, string) {
		d, err := client.AppsV1().Deployments(w.Namespace).Get(ctx, "drill-app", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pods, err := client.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=drill"})
		if err != nil {
			return false, err.Error()
		}
		var phases []string
		running := 0
		for _, p := range pods.Items {
			phases = append(phases, p.Name+"="+string(p.Status.Phase))
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return d.Status.AvailableReplicas == 1 && running >= 1,
			fmt.Sprintf("available %d, pods %v", d.Status.AvailableReplicas, phases)
	})
}

// check fails the test unless the ConfigMap and Secret are back with the
// same contents, put there by a Velero restore.
func (w drillWorkload) check(ctx context.Context, t testing.TB, client kubernetes.Interface, withSecret bool) {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(w.Namespace).Get(ctx, "drill-data", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the ConfigMap is not back: %v", err)
	}
	if !maps.Equal(cm.Data, w.Data) {
		t.Errorf("ConfigMap data %v, want %v", cm.Data, w.Data)
	}
	if cm.Labels["velero.io/restore-name"] == "" {
		t.Errorf("ConfigMap labels %v: no velero.io/restore-name, so no restore made it", cm.Labels)
	}
	if !withSecret {
		return
	}
	sec, err := client.CoreV1().Secrets(w.Namespace).Get(ctx, "drill-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Secret is not back: %v", err)
	}
	if !maps.EqualFunc(sec.Data, w.Secret, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("Secret data %q, want %q", sec.Data, w.Secret)
	}
}

// checkSeedStateLabelled: the agent's ledger-like state carries the label
// that keeps it out of backups (the status ConfigMap and the Lease exist
// in every cluster; the ledger only once the agent recorded an operation).
func checkSeedStateLabelled(ctx context.Context, t testing.TB, client kubernetes.Interface) {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.StatusConfigMap, metav1.GetOptions{})
	if err != nil || cm.Labels[velero.ExcludeLabel] != "true" {
		t.Errorf("status ConfigMap labels %v (%v): want %s=true", cm.GetLabels(), err, velero.ExcludeLabel)
	}
	lease, err := client.CoordinationV1().Leases(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LeaseName, metav1.GetOptions{})
	if err != nil || lease.Labels[velero.ExcludeLabel] != "true" {
		t.Errorf("agent Lease labels %v (%v): want %s=true", lease.GetLabels(), err, velero.ExcludeLabel)
	}
	if led, err := client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LedgerConfigMap, metav1.GetOptions{}); err == nil && led.Labels[velero.ExcludeLabel] != "true" {
		t.Errorf("ledger ConfigMap labels %v: want %s=true", led.Labels, velero.ExcludeLabel)
	}
}

func deleteNamespace(ctx context.Context, t testing.TB, client kubernetes.Interface, ns string) time.Duration {
	t.Helper()
	if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	return framework.Eventually(t, 3*time.Minute, "namespace "+ns+" to be gone", func() (bool, string) {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("get: %v", err)
	})
}

// TestRestoreDrill: with backups enabled on the Docker provider's store, a
// namespace holding a ConfigMap, a Secret and a Deployment is backed up
// with `seed backup`, deleted, and restored with `seed restore --from`:
// the ConfigMap's and Secret's contents are as they were and the
// Deployment's pod runs again. The agent's own state is labelled out of
// backups; a restore of a backup that does not exist says so.
func TestRestoreDrill(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	framework.RequireBackupImages(t)
	name := framework.NewName("e2e-drill")
	framework.DeleteBackupsAtEnd(t, name)
	c := framework.Up(t, name, framework.SpecYAML(name, "", framework.BackupsSpec))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Logf("backups ready %s after seed up", c.WaitBackupsReady(ctx, t, 5*time.Minute).Round(time.Second))
	checkSeedStateLabelled(ctx, t, c.Client)

	w := newDrillWorkload("drill")
	w.create(ctx, t, c.Client, true)
	flags := []string{"--name", name, "--kubeconfig", c.Kubeconfig}
	backup := name + "-drill"
	r := framework.Seed(ctx, append([]string{"backup", backup}, flags...)...)
	if r.Err != nil {
		t.Fatalf("seed backup: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
	t.Logf("seed backup took %s:\n%s%s", r.Duration.Round(100*time.Millisecond), r.Stderr, r.Stdout)
	if !strings.Contains(r.Stdout, "Backup "+backup+" is good") {
		t.Errorf("seed backup printed %q, want it to say the backup is good", r.Stdout)
	}

	if r := framework.Seed(ctx, append([]string{"restore", "--from", "no-such-backup"}, flags...)...); r.Err == nil ||
		!strings.Contains(r.Err.Error(), "no backup named no-such-backup") || !strings.Contains(r.Err.Error(), backup) {
		t.Errorf("restoring a backup that does not exist: %v, want an error naming it and listing %s", r.Err, backup)
	}

	t.Logf("namespace deleted in %s", deleteNamespace(ctx, t, c.Client, w.Namespace).Round(100*time.Millisecond))
	r = framework.Seed(ctx, append([]string{"restore", "--from", backup}, flags...)...)
	if r.Err != nil {
		t.Fatalf("seed restore: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
	t.Logf("seed restore took %s:\n%s%s", r.Duration.Round(100*time.Millisecond), r.Stderr, r.Stdout)
	w.check(ctx, t, c.Client, true)
	t.Logf("the Deployment's pod ran %s after the restore", w.waitRunning(ctx, t, c.Client, 3*time.Minute).Round(100*time.Millisecond))
	checkSeedStateLabelled(ctx, t, c.Client)
}

// TestRebuildFromBackup, the lifeboat: a cluster is backed up, `seed down`
// keeps its store, and `seed up --restore-from latest` under the same name
// builds a new cluster that has the namespace and ConfigMap back. Run
// again, it restores nothing twice. The store goes at the end (seed down
// --delete-backups).
func TestRebuildFromBackup(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	framework.RequireBackupImages(t)
	name := framework.NewName("e2e-rebuild")
	framework.DeleteBackupsAtEnd(t, name)
	c := framework.Up(t, name, framework.SpecYAML(name, "", framework.BackupsSpec))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	c.WaitBackupsReady(ctx, t, 5*time.Minute)
	w := newDrillWorkload("lifeboat")
	w.create(ctx, t, c.Client, false)
	flags := []string{"--name", name, "--kubeconfig", c.Kubeconfig}
	if r := framework.Seed(ctx, append([]string{"backup"}, flags...)...); r.Err != nil {
		t.Fatalf("seed backup: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	} else {
		t.Logf("seed backup took %s:\n%s", r.Duration.Round(100*time.Millisecond), r.Stdout)
	}

	r := framework.Seed(ctx, "down", "-f", c.SpecFile, "--kubeconfig", c.Kubeconfig)
	if r.Err != nil {
		t.Fatalf("seed down: %v\n%s", r.Err, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "are kept") {
		t.Errorf("seed down did not say the backups are kept:\n%s", r.Stderr)
	}

	up := func() framework.Result {
		return framework.Seed(ctx, "up", "-f", c.SpecFile, "--kubeconfig", c.Kubeconfig, "--agent-image", framework.AgentImage(t),
			"--restore-from", "latest", "--timeout", "15m")
	}
	r = up()
	if r.Err != nil {
		t.Fatalf("seed up --restore-from latest: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
	t.Logf("seed up --restore-from latest took %s:\n%s%s", r.Duration.Round(100*time.Millisecond), r.Stderr, r.Stdout)
	if !strings.Contains(r.Stdout, "is restored into it") {
		t.Errorf("seed up printed %q, want it to say what it restored", r.Stdout)
	}
	// A new cluster: new credentials.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c.Config, c.Client = cfg, kubernetes.NewForConfigOrDie(cfg)
	w.check(ctx, t, c.Client, true)

	r = up()
	if r.Err != nil || !strings.Contains(r.Stdout, "nothing was restored again") {
		t.Errorf("seed up --restore-from latest again: %v, printed %q; want nothing restored again\n%s", r.Err, r.Stdout, r.Stderr)
	}
}
