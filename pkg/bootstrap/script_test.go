package bootstrap

import (
	"strings"
	"testing"
	"text/template"
)

// TestScriptRendersAsTextTemplateWould renders the bootstrap script with
// text/template, which the binaries no longer link, and wants the bytes
// renderScript produces, for both roles.
func TestScriptRendersAsTextTemplateWould(t *testing.T) {
	for _, d := range []scriptData{
		{Role: "control-plane", Cluster: "demo", Machine: "demo-control-plane", Version: "v1.34.2"},
		{Role: "worker", Join: true, Cluster: "demo", Machine: "demo-pool-a-x1", Version: "v1.35.0"},
	} {
		got, err := renderScript(d)
		if err != nil {
			t.Fatal(err)
		}
		d.Marker, d.Log, d.PatchesDir = MarkerPath, LogPath, PatchesDir
		d.ProviderIDPath, d.AllocatablePath, d.Config, d.ManifestsDir, d.ImagesDir = ProviderIDPath, AllocatablePath, KubeadmConfigPath, ManifestsDir, ImagesDir
		var want strings.Builder
		if err := template.Must(template.New("script").Option("missingkey=error").Parse(scriptTemplate)).Execute(&want, d); err != nil {
			t.Fatal(err)
		}
		if got != want.String() {
			t.Errorf("%s script renders differently from text/template:\ngot\n%s\nwant\n%s", d.Role, got, want.String())
		}
	}
}
