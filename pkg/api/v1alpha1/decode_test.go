package v1alpha1

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// wantProblems checks that err is an *InvalidSpecError holding exactly the
// wanted problems, in order; a wanted Detail only has to be contained in the
// actual one, so tests pin the field and the gist, not every word.
func wantProblems(t *testing.T, err error, want []FieldError) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	var invalid *InvalidSpecError
	if !errors.As(err, &invalid) {
		t.Fatalf("got error %v (%T), want an *InvalidSpecError", err, err)
	}
	if !IsInvalidSpec(err) {
		t.Errorf("IsInvalidSpec(%v) = false", err)
	}
	got := invalid.Errors
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			t.Errorf("missing problem %s: ...%s...", want[i].Field, want[i].Detail)
		case i >= len(want):
			t.Errorf("unexpected problem %v", got[i])
		case got[i].Field != want[i].Field || !strings.Contains(got[i].Detail, want[i].Detail):
			t.Errorf("problem %d:\n got  %v\n want %s: ...%s...", i, got[i], want[i].Field, want[i].Detail)
		}
	}
	if t.Failed() {
		t.Logf("all problems:\n%v", err)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeTestdata(t *testing.T) {
	tests := []struct {
		file string
		want *Cluster
	}{
		{
			file: "docker-minimal.yaml",
			want: &Cluster{
				APIVersion: APIVersion, Kind: KindCluster,
				Metadata: ObjectMeta{Name: "dev"},
				Spec:     ClusterSpec{Provider: ProviderSpec{Docker: &DockerProviderSpec{}}},
			},
		},
		{
			file: "docker-full.yaml",
			want: &Cluster{
				APIVersion: APIVersion, Kind: KindCluster,
				Metadata: ObjectMeta{Name: "lab"},
				Spec: ClusterSpec{
					KubernetesVersion: "v1.34.2",
					Provider: ProviderSpec{Docker: &DockerProviderSpec{
						NodeImage: "seed-node:v1.34.2", Privileged: true, APIServerPort: 6443,
					}},
					ControlPlane: ControlPlaneSpec{MachineType: "2x4Gi"},
					NodePools: []NodePool{
						{
							Name: "workers", MinReplicas: ptr[int32](1), MaxReplicas: ptr[int32](5),
							Labels: map[string]string{"tier": "general", "example.com/team": "platform"},
						},
						{
							Name: "gpu", Replicas: 1, KubernetesVersion: "v1.33.6",
							Labels: map[string]string{"accelerator": "nvidia"},
							Taints: []Taint{
								{Key: "nvidia.com/gpu", Value: "true", Effect: "NoSchedule"},
								{Key: "dedicated", Effect: "PreferNoSchedule"},
							},
						},
					},
					Health: HealthSpec{
						NodeStartupTimeout:  NewDuration(15 * time.Minute),
						NodeNotReadyTimeout: NewDuration(3*time.Minute + 30*time.Second),
						MaxUnhealthy:        NewCount(2),
					},
					Rollout: RolloutSpec{MaxSurge: ptr[int32](2), MaxUnavailable: ptr[int32](1), DrainTimeout: NewDuration(20 * time.Minute)},
					Backup:  BackupSpec{Enabled: false, StorageLocation: "default", BeforeUpgrade: ptr(false), Schedule: "0 3 * * *"},
				},
			},
		},
		{
			file: "aws.yaml",
			want: &Cluster{
				APIVersion: APIVersion, Kind: KindCluster,
				Metadata: ObjectMeta{Name: "prod"},
				Spec: ClusterSpec{
					KubernetesVersion: "v1.35.1",
					Provider: ProviderSpec{AWS: &AWSProviderSpec{
						Region:            "eu-west-1",
						VPCID:             "vpc-0a1b2c3d4e5f60718",
						SubnetIDs:         []string{"subnet-0123456789abcdef0", "subnet-0fedcba9876543210"},
						AvailabilityZones: []string{"eu-west-1a", "eu-west-1b"},
						SSHKeyName:        "ops",
						CredentialsSecret: "aws-credentials",
					}},
					ControlPlane: ControlPlaneSpec{MachineType: "m7i.large"},
					NodePools:    []NodePool{{Name: "general", Replicas: 2, MachineType: "m7i.xlarge"}},
					Health:       HealthSpec{MaxUnhealthy: NewPercent(30)},
				},
			},
		},
		{
			file: "docker.json",
			want: &Cluster{
				APIVersion: APIVersion, Kind: KindCluster,
				Metadata: ObjectMeta{Name: "json"},
				Spec: ClusterSpec{
					Provider:  ProviderSpec{Docker: &DockerProviderSpec{}},
					NodePools: []NodePool{{Name: "workers", Replicas: 2, Labels: map[string]string{"role": "worker"}}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Decode(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode:\n got  %#v\n want %#v", got.Spec, tt.want.Spec)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	const head = "apiVersion: seed.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\n"
	tests := []struct {
		name string
		in   string
		want []FieldError
	}{
		{
			name: "empty file",
			in:   "",
			want: []FieldError{{Detail: "the document is empty"}},
		},
		{
			name: "only comments",
			in:   "# nothing here\n\n",
			want: []FieldError{{Detail: "the document is empty"}},
		},
		{
			name: "null document",
			in:   "---\nnull\n",
			want: []FieldError{{Detail: "the document is empty"}},
		},
		{
			name: "empty mapping",
			in:   "{}",
			want: []FieldError{{Detail: "the document is empty"}},
		},
		{
			name: "document is a list",
			in:   "- apiVersion: seed.dev/v1alpha1\n",
			want: []FieldError{{Detail: "the document is a list: a cluster spec is a mapping"}},
		},
		{
			name: "document is a string",
			in:   "hello",
			want: []FieldError{{Detail: `the document is the string "hello"`}},
		},
		{
			name: "invalid YAML names the line",
			in:   head + "spec:\n  provider:\n    docker: {}\n   nodePools: []\n",
			want: []FieldError{{Detail: "invalid YAML: line 6: did not find expected key"}},
		},
		{
			name: "tab indentation",
			in:   head + "spec:\n\tprovider: {}\n",
			want: []FieldError{{Detail: "invalid YAML: line 5:"}},
		},
		{
			name: "invalid JSON",
			in:   `{"apiVersion": "seed.dev/v1alpha1", "kind": "Cluster"`,
			want: []FieldError{{Detail: "invalid YAML: line 1:"}},
		},
		{
			name: "two documents",
			in:   head + "---\n" + head,
			want: []FieldError{{Detail: "more than one YAML document"}},
		},
		{
			name: "merge keys",
			in:   head + "defaults: &d {replicas: 2}\nspec:\n  nodePools:\n  - name: a\n    <<: *d\n",
			want: []FieldError{{Detail: "YAML merge keys (<<) are not supported"}},
		},
		{
			name: "unknown field with a suggestion",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    replica: 3\n",
			want: []FieldError{{Field: "spec.nodePools[0].replica", Detail: `unknown field; did you mean "replicas"?`}},
		},
		{
			name: "unknown field, wrong case",
			in:   head + "spec:\n  nodepools: []\n",
			want: []FieldError{{Field: "spec.nodepools", Detail: `unknown field; did you mean "nodePools"?`}},
		},
		{
			name: "unknown field, swapped letters",
			in:   head + "spec:\n  kubernetesVerison: v1.34.2\n",
			want: []FieldError{{Field: "spec.kubernetesVerison", Detail: `did you mean "kubernetesVersion"?`}},
		},
		{
			name: "unknown field without a suggestion lists the valid ones",
			in:   head + "spec:\n  provider:\n    docker:\n      region: x\n",
			want: []FieldError{{Field: "spec.provider.docker.region", Detail: "unknown field; the fields allowed here are nodeImage, privileged, apiServerPort"}},
		},
		{
			name: "unknown top-level field",
			in:   head + "status: {}\n",
			want: []FieldError{{Field: "status", Detail: "the fields allowed here are apiVersion, kind, metadata, spec"}},
		},
		{
			name: "non-string key in a struct",
			in:   head + "spec:\n  1: x\n",
			want: []FieldError{{Field: "spec.1", Detail: "unknown field"}},
		},
		{
			name: "duplicate field",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    replicas: 1\n    replicas: 2\n",
			want: []FieldError{{Field: "spec.nodePools[0].replicas", Detail: "duplicate field"}},
		},
		{
			name: "duplicate top-level field",
			in:   head + "kind: Cluster\n",
			want: []FieldError{{Field: "kind", Detail: "duplicate field"}},
		},
		{
			name: "duplicate label key",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    labels: {tier: a, tier: b}\n",
			want: []FieldError{{Field: "spec.nodePools[0].labels[tier]", Detail: "duplicate key"}},
		},
		{
			name: "duplicate key in JSON",
			in:   `{"apiVersion": "seed.dev/v1alpha1", "kind": "Cluster", "kind": "Cluster"}`,
			want: []FieldError{{Field: "kind", Detail: "duplicate field"}},
		},
		{
			name: "unknown field in JSON",
			in:   `{"apiVersion": "seed.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "a", "namespace": "b"}}`,
			want: []FieldError{{Field: "metadata.namespace", Detail: "unknown field"}},
		},
		{
			name: "whole number given a word",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    replicas: three\n",
			want: []FieldError{{Field: "spec.nodePools[0].replicas", Detail: `must be a whole number, not the string "three"`}},
		},
		{
			name: "whole number given in quotes",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    replicas: \"3\"\n",
			want: []FieldError{{Field: "spec.nodePools[0].replicas", Detail: "must be a whole number, not the string \"3\"; remove the quotes"}},
		},
		{
			name: "whole number given a fraction",
			in:   head + "spec:\n  rollout:\n    maxSurge: 1.5\n",
			want: []FieldError{{Field: "spec.rollout.maxSurge", Detail: "must be a whole number, not the number 1.5"}},
		},
		{
			name: "whole number too large for int32",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    replicas: 4294967296\n",
			want: []FieldError{{Field: "spec.nodePools[0].replicas", Detail: "must be a whole number between -2147483648 and 2147483647, not 4294967296"}},
		},
		{
			name: "whole number too large for int64",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    minReplicas: 18446744073709551615\n",
			want: []FieldError{{Field: "spec.nodePools[0].minReplicas", Detail: "not 18446744073709551615"}},
		},
		{
			name: "string given a number",
			in:   head + "spec:\n  kubernetesVersion: 1.30\n",
			want: []FieldError{{Field: "spec.kubernetesVersion", Detail: "must be a string, not the number 1.3; put the value in quotes"}},
		},
		{
			name: "label value given a boolean",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    labels: {gpu: true}\n",
			want: []FieldError{{Field: "spec.nodePools[0].labels[gpu]", Detail: "must be a string, not true; put the value in quotes"}},
		},
		{
			name: "label key not a string",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    labels: {1: a}\n",
			want: []FieldError{{Field: "spec.nodePools[0].labels[1]", Detail: "must be a string key, not the number 1; put the key in quotes"}},
		},
		{
			name: "boolean given in quotes",
			in:   head + "spec:\n  paused: \"true\"\n",
			want: []FieldError{{Field: "spec.paused", Detail: `must be true or false, not the string "true"; remove the quotes`}},
		},
		{
			name: "boolean given a number",
			in:   head + "spec:\n  paused: 1\n",
			want: []FieldError{{Field: "spec.paused", Detail: "must be true or false, not the number 1"}},
		},
		{
			name: "struct given a list",
			in:   head + "spec:\n  provider: [docker]\n",
			want: []FieldError{{Field: "spec.provider", Detail: "must be a mapping of fields, not a list"}},
		},
		{
			name: "list given a mapping",
			in:   head + "spec:\n  nodePools: {name: a}\n",
			want: []FieldError{{Field: "spec.nodePools", Detail: "must be a list, not a mapping"}},
		},
		{
			name: "list item of the wrong type",
			in:   head + "spec:\n  provider:\n    aws:\n      region: eu-west-1\n      subnetIDs: [subnet-a, {id: b}]\n",
			want: []FieldError{{Field: "spec.provider.aws.subnetIDs[1]", Detail: "must be a string, not a mapping"}},
		},
		{
			name: "map given a string",
			in:   head + "spec:\n  nodePools:\n  - name: a\n    labels: tier=a\n",
			want: []FieldError{{Field: "spec.nodePools[0].labels", Detail: `must be a mapping of keys to values, not the string "tier=a"`}},
		},
		{
			name: "every problem at once, in document order",
			in: "apiVersion: seed.dev/v1alpha1\nkind: Cluster\nkind: Cluster\nmetadata: {nmae: a}\n" +
				"spec:\n  nodePools:\n  - name: a\n    replicas: x\n  - name: b\n    taints: [{key: k, effects: NoSchedule}]\n  paused: 3\n",
			want: []FieldError{
				{Field: "kind", Detail: "duplicate field"},
				{Field: "metadata.nmae", Detail: `did you mean "name"?`},
				{Field: "spec.nodePools[0].replicas", Detail: "must be a whole number"},
				{Field: "spec.nodePools[1].taints[0].effects", Detail: `did you mean "effect"?`},
				{Field: "spec.paused", Detail: "must be true or false"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode([]byte(tt.in))
			if c != nil {
				t.Errorf("Decode returned a cluster along with an error")
			}
			wantProblems(t, err, tt.want)
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(*Cluster) bool
	}{
		{
			name: "a trailing document separator",
			in:   "metadata: {name: a}\n---\n",
			want: func(c *Cluster) bool { return c.Metadata.Name == "a" },
		},
		{
			name: "a leading document separator",
			in:   "---\nmetadata: {name: a}\n",
			want: func(c *Cluster) bool { return c.Metadata.Name == "a" },
		},
		{
			name: "null leaves a field unset",
			in:   "metadata: {name: a}\nspec:\n  rollout: {maxSurge: null, drainTimeout: ~}\n",
			want: func(c *Cluster) bool { return c.Spec.Rollout.MaxSurge == nil && c.Spec.Rollout.DrainTimeout == nil },
		},
		{
			name: "empty lists and maps are the same as none",
			in:   "metadata: {name: a}\nspec:\n  nodePools:\n  - name: a\n    labels: {}\n    taints: []\n",
			want: func(c *Cluster) bool { return c.Spec.NodePools[0].Labels == nil && c.Spec.NodePools[0].Taints == nil },
		},
		{
			name: "an empty provider mapping selects it",
			in:   "metadata: {name: a}\nspec: {provider: {docker: {}}}\n",
			want: func(c *Cluster) bool { return c.Spec.Provider.Docker != nil && c.Spec.Provider.AWS == nil },
		},
		{
			name: "anchors and aliases",
			in:   "metadata: {name: a}\nspec:\n  nodePools:\n  - name: a\n    labels: &l {tier: x}\n  - name: b\n    labels: *l\n",
			want: func(c *Cluster) bool { return c.Spec.NodePools[1].Labels["tier"] == "x" },
		},
		{
			name: "a malformed duration is kept for Validate",
			in:   "metadata: {name: a}\nspec: {health: {nodeStartupTimeout: 5 minutes}}\n",
			want: func(c *Cluster) bool { return c.Spec.Health.NodeStartupTimeout.Err() != nil },
		},
		{
			name: "a duration given a mapping is kept for Validate",
			in:   "metadata: {name: a}\nspec: {rollout: {drainTimeout: {minutes: 5}}}\n",
			want: func(c *Cluster) bool { return c.Spec.Rollout.DrainTimeout.Err() != nil },
		},
		{
			name: "a duration given an infinite number is kept for Validate",
			in:   "metadata: {name: a}\nspec: {rollout: {drainTimeout: .inf}}\n",
			want: func(c *Cluster) bool { return c.Spec.Rollout.DrainTimeout.Err() != nil },
		},
		{
			name: "a percentage",
			in:   "metadata: {name: a}\nspec: {health: {maxUnhealthy: 25%}}\n",
			want: func(c *Cluster) bool { return *c.Spec.Health.MaxUnhealthy == *NewPercent(25) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !tt.want(c) {
				t.Errorf("Decode gave %+v", c)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	fields := []string{"name", "replicas", "minReplicas", "maxReplicas", "machineType", "labels", "taints", "kubernetesVersion"}
	tests := []struct {
		in, want string
	}{
		{"replica", "replicas"},
		{"Replicas", "replicas"},
		{"nmae", "name"},
		{"label", "labels"},
		{"taint", "taints"},
		{"min_replicas", "minReplicas"},
		{"kubernetesVerison", "kubernetesVersion"},
		{"version", ""},
		{"zone", ""},
		{"x", ""},
		{strings.Repeat("a", 200), ""},
	}
	for _, tt := range tests {
		if got := closest(tt.in, fields); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "abc", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"abc", "abd", 1},
		{"abc", "acb", 1},
		{"abc", "abcd", 1},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// A JSON null is a no-op for every Go value; the spec's own value types must
// not read it as an invalid duration or a count of 0.
func TestValuesIgnoreNull(t *testing.T) {
	d := NewDuration(time.Minute)
	if err := d.UnmarshalJSON([]byte("null")); err != nil || d.Err() != nil || d.Duration != time.Minute {
		t.Errorf("Duration after null = %v (err %v, Err %v), want 1m0s unchanged", d.Duration, err, d.Err())
	}
	v := NewPercent(40)
	if err := v.UnmarshalJSON([]byte("null")); err != nil || v.Err() != nil || *v != *NewPercent(40) {
		t.Errorf("IntOrPercent after null = %v (err %v), want 40%% unchanged", v, err)
	}
}
