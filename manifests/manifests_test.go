package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func TestAgentManifests(t *testing.T) {
	spec := "apiVersion: seed.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c1\n"
	for _, tc := range []struct {
		name       string
		params     Params
		wantSuffix string
		wantSocket bool
	}{
		{"default namespace, docker", Params{AgentImage: "seed-agent:abc", SpecYAML: []byte(spec), DockerSocket: true}, "", true},
		{"other namespace, no socket", Params{Namespace: "t1", AgentImage: "seed-agent:abc", SpecYAML: []byte(spec)}, "-t1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Agent(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if objs[0].GetKind() != "Namespace" {
				t.Errorf("first object is %s, want the Namespace", objs[0].GetKind())
			}
			kinds := map[string]*unstructured.Unstructured{}
			for _, o := range objs {
				kinds[o.GetKind()+"/"+o.GetName()] = o
			}
			for _, want := range []string{"ServiceAccount/seed-agent", "Role/seed-agent", "ClusterRole/seed-agent" + tc.wantSuffix,
				"ClusterRoleBinding/seed-agent" + tc.wantSuffix, "ConfigMap/seed-cluster", "Deployment/seed-agent", "Service/seed-agent-metrics"} {
				if kinds[want] == nil {
					t.Errorf("missing %s", want)
				}
			}
			cm := kinds["ConfigMap/seed-cluster"]
			if got, _, _ := unstructured.NestedString(cm.Object, "data", "cluster.yaml"); got != spec {
				t.Errorf("spec ConfigMap holds %q, want the spec as written", got)
			}
			// No wildcard and no cluster-admin anywhere in the RBAC.
			for key, o := range kinds {
				raw, _ := yaml.Marshal(o.Object)
				if strings.Contains(string(raw), `"*"`) || strings.Contains(string(raw), "cluster-admin") {
					t.Errorf("%s grants too much:\n%s", key, raw)
				}
			}
			d := kinds["Deployment/seed-agent"]
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			c := containers[0].(map[string]any)
			if c["image"] != "seed-agent:abc" || c["imagePullPolicy"] != "Never" {
				t.Errorf("agent container image %v policy %v", c["image"], c["imagePullPolicy"])
			}
			volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
			paths := map[string]bool{}
			for _, v := range volumes {
				path, _, _ := unstructured.NestedString(v.(map[string]any), "hostPath", "path")
				paths[path] = true
			}
			if paths["/var/run/docker.sock"] != tc.wantSocket {
				t.Errorf("docker socket mounted: %t, want %t", paths["/var/run/docker.sock"], tc.wantSocket)
			}
			if !paths["/etc/kubernetes/pki"] {
				t.Error("the control plane's certificates are not mounted: replacing the control plane needs them")
			}
			// The root filesystem is read-only, so an etcd snapshot waits in
			// an emptyDir at /tmp, with a limit.
			if ro, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem"); !ro {
				t.Error("the agent's root filesystem is writable")
			}
			scratch := map[string]string{}
			for _, v := range volumes {
				if limit, ok, _ := unstructured.NestedString(v.(map[string]any), "emptyDir", "sizeLimit"); ok {
					scratch[v.(map[string]any)["name"].(string)] = limit
				}
			}
			mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
			tmp := ""
			for _, m := range mounts {
				if m := m.(map[string]any); m["mountPath"] == "/tmp" {
					tmp, _ = m["name"].(string)
				}
			}
			if scratch[tmp] == "" {
				t.Errorf("/tmp is mounted from %q, want an emptyDir with a sizeLimit (emptyDirs with limits: %v)", tmp, scratch)
			}

			doc, err := YAML(objs)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(doc), "\n---\n") + 1; n != len(objs) {
				t.Errorf("YAML has %d documents, want %d", n, len(objs))
			}
		})
	}
	objs, err := Agent(Params{AgentImage: "a:1", CredentialsSecret: "aws-creds"})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := YAML(objs)
	// Named once, in envFrom: no grant on it (the kubelet reads it).
	if !strings.Contains(string(doc), "name: aws-creds") || strings.Count(string(doc), "aws-creds") != 1 {
		t.Errorf("credentials Secret must reach the agent as env, with no RBAC on secrets in its namespace:\n%s", doc)
	}
	if _, err := Agent(Params{}); err == nil {
		t.Error("rendering without an agent image must fail")
	}
}

func TestNetwork(t *testing.T) {
	doc, err := Network("seed.local/seednet:0123456789ab", NetworkVXLAN)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeAll(doc)
	if err != nil {
		t.Fatalf("rendered manifest does not decode: %v", err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if o.GetKind() != "DaemonSet" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		c := containers[0].(map[string]any)
		if c["image"] != "seed.local/seednet:0123456789ab" {
			t.Errorf("image = %v", c["image"])
		}
		if args := fmt.Sprint(c["args"]); !strings.Contains(args, "--backend=vxlan") {
			t.Errorf("args = %s, want --backend=vxlan", args)
		}
	}
	if got, want := strings.Join(kinds, ","), "ServiceAccount,ClusterRole,ClusterRoleBinding,Role,RoleBinding,DaemonSet"; got != want {
		t.Errorf("kinds = %s, want %s", got, want)
	}
	for _, tc := range []struct{ image, backend, want string }{
		{"seed.local/seednet:x", "geneve", `backend "geneve"`},
		{"", NetworkRoute, "not an image reference"},
		{"a b", NetworkRoute, "not an image reference"},
	} {
		if _, err := Network(tc.image, tc.backend); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Network(%q, %q) = %v, want an error containing %q", tc.image, tc.backend, err, tc.want)
		}
	}
}

func decodeAll(doc []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}
