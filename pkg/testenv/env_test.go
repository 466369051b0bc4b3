package testenv_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/seedhq/seed/pkg/testenv"
)

// The identity the agent runs as, whose permissions Seed keeps minimal.
const (
	agentNamespace = "seed-system"
	agentAccount   = "seed-agent"
)

var shared testenv.Shared

func TestMain(m *testing.M) {
	os.Exit(shared.Run(m))
}

func TestAdminCanCreateConfigMap(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)

	want := map[string]string{"spec.yaml": "pools: []\n"}
	_, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "seed-spec"},
		Data:       want,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating ConfigMap: %v", err)
	}
	got, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "seed-spec", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting ConfigMap: %v", err)
	}
	if got.Data["spec.yaml"] != want["spec.yaml"] {
		t.Errorf("ConfigMap data = %q, want %q", got.Data, want)
	}
}

func TestServiceAccountRBAC(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()

	_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: agentNamespace},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	agent, err := kubernetes.NewForConfig(env.ServiceAccountConfig(agentNamespace, agentAccount))
	if err != nil {
		t.Fatalf("building the agent's client: %v", err)
	}
	listConfigMaps := func(ns string) error {
		_, err := agent.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		return err
	}

	// Unbound, the account may do nothing of interest.
	if err := listConfigMaps(agentNamespace); !apierrors.IsForbidden(err) {
		t.Fatalf("unbound: listing ConfigMaps: got %v, want Forbidden", err)
	}
	if _, err := agent.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("unbound: listing Nodes: got %v, want Forbidden", err)
	}

	// Bound to a Role for ConfigMaps in its namespace, it gains exactly that.
	_, err = env.Client.RbacV1().Roles(agentNamespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""},
			Resources: []string{"configmaps"},
			Verbs:     []string{"get", "list"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Role: %v", err)
	}
	_, err = env.Client.RbacV1().RoleBindings(agentNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: agentNamespace, Name: agentAccount}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating RoleBinding: %v", err)
	}
	// The authorizer reads RBAC objects through an informer, so the
	// binding takes a moment to count.
	if err := eventually(ctx, func() error { return listConfigMaps(agentNamespace) }); err != nil {
		t.Fatalf("bound: listing ConfigMaps in %s: %v", agentNamespace, err)
	}
	if err := listConfigMaps("kube-system"); !apierrors.IsForbidden(err) {
		t.Errorf("bound: listing ConfigMaps in kube-system: got %v, want Forbidden", err)
	}
	if _, err := agent.CoreV1().Secrets(agentNamespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("bound: listing Secrets: got %v, want Forbidden", err)
	}
}

func TestStopKillsProcessesAndRemovesFiles(t *testing.T) {
	env := testenv.Start(t.Context(), t)
	kubeconfig := env.KubeconfigPath
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}

	env.Stop()

	if _, err := os.Stat(kubeconfig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop, stat %s: got %v, want not exist", kubeconfig, err)
	}
	if _, err := env.Client.Discovery().ServerVersion(); err == nil {
		t.Errorf("after Stop, the apiserver still answers")
	}
	if resp, err := http.Get(env.EtcdURL + "/health"); err == nil {
		resp.Body.Close()
		t.Errorf("after Stop, etcd still answers")
	}
	env.Stop() // A second call, as t.Cleanup makes, must be harmless.
}

// eventually retries f until it succeeds or ten seconds pass.
func eventually(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
