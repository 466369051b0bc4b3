package bootstrap

import (
	_ "embed"
	"fmt"

	"github.com/seedhq/seed/internal/tmpl"
)

//go:embed script.sh.tmpl
var scriptTemplate string

type scriptData struct {
	Role, Cluster, Machine, Version string
	Join                            bool

	Marker, Log, PatchesDir, ProviderIDPath, AllocatablePath, Config, ManifestsDir, ImagesDir string
}

// renderScript fills the bootstrap script. Every value is validated before
// (names, versions) or a constant path, so none needs shell quoting.
func renderScript(d scriptData) (string, error) {
	d.Marker, d.Log, d.PatchesDir = MarkerPath, LogPath, PatchesDir
	d.ProviderIDPath, d.AllocatablePath, d.Config, d.ManifestsDir, d.ImagesDir = ProviderIDPath, AllocatablePath, KubeadmConfigPath, ManifestsDir, ImagesDir
	// Not text/template: see internal/tmpl for why.
	script, err := tmpl.Execute("script", scriptTemplate, d, nil)
	if err != nil {
		return "", fmt.Errorf("rendering bootstrap script: %w", err)
	}
	return script, nil
}
