package cluster

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

func TestDownKeepsTheBackupStoreUnlessAsked(t *testing.T) {
	for _, c := range []struct {
		name          string
		deleteBackups bool
		wantStore     bool
		wantNote      string
	}{
		{"kept by default", false, true, "are kept"},
		{"deleted with --delete-backups", true, false, "Deleting the backup store"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			p := fake.New(nil)
			p.SetCapabilities(providers.Capabilities{KeepsBackupStore: true})
			var out bytes.Buffer
			if err := Down(ctx, p, "demo", DownOptions{DeleteBackups: c.deleteBackups, Progress: &out}); err != nil {
				t.Fatal(err)
			}
			if p.Calls(fake.MethodDestroyInfrastructure) != 1 {
				t.Errorf("DestroyInfrastructure called %d times, want 1", p.Calls(fake.MethodDestroyInfrastructure))
			}
			if deleted := p.Calls(fake.MethodDeleteBackupStore) == 1; deleted == c.wantStore {
				t.Errorf("DeleteBackupStore called: %v, want %v", deleted, !c.wantStore)
			}
			if !strings.Contains(out.String(), c.wantNote) {
				t.Errorf("progress %q does not say %q", out.String(), c.wantNote)
			}
		})
	}
}

func TestUpStartsTheBackupStoreBeforeTheControlPlane(t *testing.T) {
	for _, c := range []struct {
		name      string
		enabled   bool
		keeps     bool
		wantStore bool
	}{
		{"enabled, the provider keeps a store", true, true, true},
		{"disabled", false, true, false},
		{"enabled, the provider keeps none (the spec names a store)", true, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			caps := preloadedImages
			caps.KeepsBackupStore = c.keeps
			p := newRecorder(caps)
			spec := awsSpec(t)
			spec.Spec.Backup.Enabled = c.enabled
			// Stop Up at the control plane: what came before it is the test.
			stop := errors.New("stop here")
			p.FailNext(fake.MethodCreateMachine, stop)
			_, err := Up(context.Background(), UpOptions{Spec: spec, Provider: p, AgentImage: "seed.local/agent:abc", ImageSource: localImages})
			if !errors.Is(err, stop) {
				t.Fatalf("Up = %v, want it to stop at CreateMachine", err)
			}
			if got := p.Calls(fake.MethodEnsureBackupStore) == 1; got != c.wantStore {
				t.Errorf("EnsureBackupStore called: %v, want %v", got, c.wantStore)
			}
		})
	}
}
