package manifests

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/internal/tmpl"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

//go:embed agent/*.yaml
var agentFS embed.FS

// DefaultMetricsPort is the agent's /metrics, /healthz and /readyz port. It
// is on the host network of the control-plane node, so it avoids the
// well-known ports of the control plane's own components.
const DefaultMetricsPort = 10360

// Params are what one cluster's agent manifests differ by.
type Params struct {
	// Namespace of the agent (default seed-system).
	Namespace string
	// AgentImage is the agent's image reference, with a content or version tag.
	AgentImage string
	// PullPolicy is the agent container's imagePullPolicy: Never (the
	// default) for an image the seed ships to the node, IfNotPresent or
	// Always for an image the nodes pull from a registry.
	PullPolicy string
	// SpecYAML is the cluster spec written into the spec ConfigMap.
	SpecYAML []byte
	// DockerSocket mounts the host's Docker socket into the agent.
	DockerSocket bool
	// CredentialsSecret names a Secret whose keys become the agent's
	// environment (provider credentials).
	CredentialsSecret string
	// Replicas of the agent Deployment (default 2: leader and standby).
	Replicas    int
	MetricsPort int
}

// Agent renders the agent's objects in the order they must be created.
func Agent(p Params) ([]*unstructured.Unstructured, error) {
	if p.Namespace == "" {
		p.Namespace = v1alpha1.DefaultNamespace
	}
	if p.AgentImage == "" {
		return nil, fmt.Errorf("rendering agent manifests: the agent image is not set")
	}
	if p.PullPolicy == "" {
		p.PullPolicy = "Never"
	}
	if p.Replicas == 0 {
		// A leader and a standby: replacing the control plane hands the
		// work to the standby, Ready on the new machine, before the leader
		// leaves.
		p.Replicas = 2
	}
	if p.MetricsPort == 0 {
		p.MetricsPort = DefaultMetricsPort
	}
	data := struct {
		Params
		SpecYAML   string
		NameSuffix string
	}{Params: p, SpecYAML: string(p.SpecYAML)}
	// Cluster-scoped objects (and those in shared namespaces) carry the
	// namespace in their name when it is not the default, so agents of
	// several namespaces (as in tests) never share them.
	if p.Namespace != v1alpha1.DefaultNamespace {
		data.NameSuffix = "-" + p.Namespace
	}
	return render(agentFS, "agent", data)
}

func render(fsys fs.FS, dir string, data any) ([]*unstructured.Unstructured, error) {
	files, err := fs.Glob(fsys, dir+"/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	funcs := map[string]tmpl.Func{"indent": indent}
	var out []*unstructured.Unstructured
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		// Not text/template: see internal/tmpl for why.
		rendered, err := tmpl.Execute(f, string(raw), data, funcs)
		if err != nil {
			return nil, fmt.Errorf("rendering manifest %s: %w", f, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(rendered), 4096)
		for {
			var obj unstructured.Unstructured
			if err := dec.Decode(&obj.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("decoding rendered manifest %s: %w", f, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			out = append(out, &obj)
		}
	}
	return out, nil
}

// indent is {{indent N .Field}}: the text with every line that is not empty
// indented by N spaces, and no final newline.
func indent(args ...string) (string, error) {
	if len(args) != 2 {
		return "", fmt.Errorf("indent takes a width and a text, not %d arguments", len(args))
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		return "", fmt.Errorf("indent: %q is not a width", args[0])
	}
	s := args[1]
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n"), nil
}

// YAML renders objects as one multi-document YAML file, in order, for
// machines that apply manifests themselves at boot.
func YAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, obj := range objs {
		b, err := yaml.Marshal(obj.Object)
		if err != nil {
			return nil, fmt.Errorf("encoding %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
