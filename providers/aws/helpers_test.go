package aws

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

var (
	_ EC2API      = (*fake.EC2)(nil)
	_ IAMAPI      = (*fake.IAM)(nil)
	_ S3API       = (*fake.S3)(nil)
	_ STSAPI      = (*fake.S3)(nil)
	_ S3Presigner = (*fake.S3)(nil)
)

const testRegion = "eu-west-1"

// env is a provider wired to fakes that share one manual clock.
type env struct {
	clock *fake.Clock
	ec2   *fake.EC2
	iam   *fake.IAM
	s3    *fake.S3
	logs  *logSink
	opts  Options
	p     *provider
}

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newEnv(t testing.TB, mods ...func(*Options)) *env {
	t.Helper()
	clock := fake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := &env{clock: clock, ec2: fake.NewEC2(clock, testRegion), iam: fake.NewIAM(clock), s3: fake.NewS3(clock), logs: &logSink{}}
	e.opts = Options{
		ClusterName: "demo",
		Region:      testRegion,
		MachineTypes: map[string]string{
			"spec.controlPlane.machineType": "t3.medium",
			"spec.nodePools[0].machineType": "m6i.large",
		},
		EC2: e.ec2, IAM: e.iam, S3: e.s3, STS: e.s3, Presigner: e.s3,
		Clock: clock,
		Logger: funcr.New(func(prefix, args string) {
			e.logs.mu.Lock()
			e.logs.lines = append(e.logs.lines, prefix+" "+args)
			e.logs.mu.Unlock()
		}, funcr.Options{Verbosity: 10}),
	}
	for _, m := range mods {
		m(&e.opts)
	}
	e.p = e.restart(t)
	return e
}

// restart is a new provider process over the same cloud: an agent that
// crashed and came back, or the CLI run again.
func (e *env) restart(t testing.TB) *provider {
	t.Helper()
	p, err := newProvider(context.Background(), e.opts)
	if err != nil {
		t.Fatalf("newProvider: %v", err)
	}
	return p
}

func (e *env) ensure(t testing.TB) providers.Infrastructure {
	t.Helper()
	infra, err := e.p.EnsureInfrastructure(context.Background())
	if err != nil {
		t.Fatalf("EnsureInfrastructure: %v", err)
	}
	return infra
}

func worker(name string) providers.MachineSpec {
	return providers.MachineSpec{
		Name: name, Pool: "workers", Role: providers.RoleWorker, MachineType: "m6i.large", KubernetesVersion: "v1.34.2",
		Bootstrap: providers.Bootstrap{
			Files:  []providers.File{{Path: "/etc/seed/join.yaml", Mode: 0o600, Content: []byte("token: abcdef.0123456789abcdef\n")}},
			Script: "#!/bin/bash\nkubeadm join --config /etc/seed/join.yaml\n",
		},
	}
}

func controlPlane(name string) providers.MachineSpec {
	return providers.MachineSpec{
		Name: name, Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane, MachineType: "t3.medium", KubernetesVersion: "v1.34.2",
		Bootstrap: providers.Bootstrap{
			Files:  []providers.File{{Path: "/etc/seed/init.yaml", Mode: 0o600, Content: []byte("token: abcdef.0123456789abcdef\n")}},
			Script: "#!/bin/bash\nkubeadm init --config /etc/seed/init.yaml\n",
		},
	}
}

func workers(prefix string, n int) []providers.MachineSpec {
	var out []providers.MachineSpec
	for i := 0; i < n; i++ {
		out = append(out, worker(prefix+"-"+string(rune('a'+i/26))+string(rune('a'+i%26))))
	}
	return out
}
