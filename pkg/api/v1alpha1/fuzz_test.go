package v1alpha1

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzLoad checks that no input makes Load panic, that every failure is an
// *InvalidSpecError listing at least one problem, and that every spec Load
// accepts survives being written out and read back unchanged: the agent
// keeps the last valid spec, written out, in its status ConfigMap, and a spec
// that changed meaning on the way would be a silent edit.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// Broken variants of each file: cut short, misspelt, mistyped.
		f.Add(b[:len(b)/2])
		f.Add([]byte(strings.Replace(string(b), "name:", "nmae:", 1)))
		f.Add([]byte(strings.Replace(string(b), "kind: Cluster", "kind: Cluster\nkind: Cluster", 1)))
		f.Add([]byte(strings.ReplaceAll(string(b), "v1.3", "1.3")))
		f.Add([]byte(strings.ReplaceAll(string(b), "  ", "\t")))
	}
	for _, s := range []string{
		"",
		"---\n---\n",
		"[]",
		"~",
		"{metadata: {name: a}, spec: {provider: {docker: {}}, nodePools: [{name: a, replicas: 1e3}]}}",
		"metadata: {name: a}\nspec:\n  provider: {docker: {}}\n  health: {maxUnhealthy: 101%, nodeStartupTimeout: .nan}\n",
		"metadata: {name: a}\nspec:\n  provider: {docker: {}}\n  nodePools:\n  - &p {name: a, labels: {x: \"\"}}\n  - *p\n",
		"metadata: {name: a}\nx: &a {k: 1}\nspec:\n  <<: *a\n",
		"metadata: {name: a}\nspec: {provider: {docker: {nodeImage: \"a\\u0085b\"}}}\n",
		"{\"metadata\": {\"name\": \"a\"}, \"spec\": {\"provider\": {\"aws\": {\"region\": \"eu-west-1\", \"agentImage\": \"x\\ty\"}}}}",
	} {
		f.Add([]byte(s))
	}

	// Strings YAML could read as something else if written back unquoted.
	for _, v := range []string{"yes", "0x10", "1e3", "~", "null", "- a", "a: b", "#x", " lead", "'", "&a", "!tag", "<<", "2001-12-14", "1:20", "\u00a0"} {
		f.Add([]byte(fmt.Sprintf("metadata: {name: a}\nspec: {provider: {docker: {nodeImage: %q}}, backup: {schedule: %q}}\n", v, v)))
	}

	f.Fuzz(checkLoadRoundTrip)
}

// FuzzLoadFields puts fuzzed values into the fields of a valid spec, where
// FuzzLoad's raw bytes rarely reach: most of its inputs are not even YAML,
// so few get as far as the round trip.
func FuzzLoadFields(f *testing.F) {
	f.Add("seed-node:v1.34.2", "m7i.large", "general", "0 3 * * *", "10m", "40%", int32(3), int32(1))
	f.Add("yes", "~", "a.b_c-d", "@every 1h", "1h30m", "2", int32(0), int32(0))
	f.Add("a\u0085b", "0x10", "", "- a", "0s", "101%", int32(-1), int32(1001))
	f.Fuzz(func(t *testing.T, image, machineType, label, schedule, timeout, maxUnhealthy string, replicas, surge int32) {
		q := func(s string) string {
			b, _ := json.Marshal(s)
			return string(b)
		}
		doc := fmt.Sprintf(`{"metadata": {"name": "fuzz"}, "spec": {
  "provider": {"docker": {"nodeImage": %s}},
  "controlPlane": {"machineType": %s},
  "nodePools": [{"name": "workers", "replicas": %d, "machineType": %s, "labels": {"tier": %s}}],
  "health": {"nodeStartupTimeout": %s, "maxUnhealthy": %s},
  "rollout": {"maxSurge": %d},
  "backup": {"enabled": false, "storageLocation": %s, "schedule": %s}}}`,
			q(image), q(machineType), replicas, q(machineType), q(label), q(timeout), q(maxUnhealthy), surge, q(label), q(schedule))
		checkLoadRoundTrip(t, []byte(doc))
	})
}

// checkLoadRoundTrip is the property both fuzz targets check.
func checkLoadRoundTrip(t *testing.T, data []byte) {
	c, err := Load(data, ValidateOptions{})
	if err != nil {
		var invalid *InvalidSpecError
		if !errors.As(err, &invalid) {
			t.Fatalf("Load failed with %T, want *InvalidSpecError: %v", err, err)
		}
		if len(invalid.Errors) == 0 {
			t.Fatalf("Load failed without saying why")
		}
		for _, fe := range invalid.Errors {
			if fe.Detail == "" {
				t.Fatalf("problem without detail at %q", fe.Field)
			}
		}
		return
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	again, err := Load(out, ValidateOptions{})
	if err != nil {
		t.Fatalf("Load of the written spec failed:\n%v\nwritten:\n%s", err, out)
	}
	if !reflect.DeepEqual(c, again) {
		t.Fatalf("spec changed on the round trip:\n first  %#v\n second %#v\nwritten:\n%s", c, again, out)
	}
}
