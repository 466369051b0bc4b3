package testenv

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Namespace creates a namespace with a generated name for t, so tests that
// share an Env do not see each other's objects. It is not deleted
// afterwards: no namespace controller runs to empty it, and the Env's data
// goes when the Env stops.
func (e *Env) Namespace(ctx context.Context, t testing.TB) string {
	t.Helper()
	ns, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testenv: creating a namespace: %v", err)
	}
	return ns.Name
}
