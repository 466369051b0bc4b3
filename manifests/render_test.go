package manifests

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/seedhq/seed/internal/tmpl"
)

// TestAgentManifestsRenderAsTextTemplateWould renders every agent manifest
// with text/template, which the binaries no longer link, and with
// internal/tmpl, which they use, and wants the same bytes.
func TestAgentManifestsRenderAsTextTemplateWould(t *testing.T) {
	spec := "apiVersion: seed.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c1\n\nspec:\n  kubernetesVersion: v1.34.2\n"
	files, err := fs.Glob(agentFS, "agent/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no agent manifests: %v", err)
	}
	// The shape Agent renders from: Params, the spec as text, the suffix.
	type data struct {
		Params
		SpecYAML   string
		NameSuffix string
	}
	for _, d := range []data{
		{Params: Params{Namespace: "seed-system", AgentImage: "seed-agent:abc", PullPolicy: "Never", DockerSocket: true, Replicas: 1, MetricsPort: DefaultMetricsPort}, SpecYAML: spec},
		{Params: Params{Namespace: "t1", AgentImage: "r.example/seed-agent:v1", PullPolicy: "IfNotPresent", CredentialsSecret: "aws-creds", Replicas: 2, MetricsPort: 9000}, SpecYAML: spec, NameSuffix: "-t1"},
		{Params: Params{Namespace: "t2", AgentImage: "a:1", PullPolicy: "Never", DockerSocket: true, CredentialsSecret: "c", Replicas: 1, MetricsPort: 1}, NameSuffix: "-t2"},
	} {
		for _, f := range files {
			raw, err := fs.ReadFile(agentFS, f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Execute(f, string(raw), d, map[string]tmpl.Func{"indent": indent})
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			tpl, err := template.New(f).Option("missingkey=error").Funcs(template.FuncMap{
				"indent": func(n int, s string) (string, error) { return indent(strconv.Itoa(n), s) },
			}).Parse(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			if err := tpl.Execute(&want, d); err != nil {
				t.Fatal(err)
			}
			if got != want.String() {
				t.Errorf("%s (namespace %s) renders differently from text/template:\ngot\n%s\nwant\n%s", f, d.Namespace, got, want.String())
			}
		}
	}
}
