package bootstrap

import (
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// Registration is what a joining machine's kubelet registers its Node
// with, as its kubeadm join configuration says.
type Registration struct {
	Name   string
	Labels map[string]string
	Taints []v1alpha1.Taint
}

// ReadRegistration reads the Node registration out of a bootstrap that Join
// or JoinControlPlane rendered. It is how a machine that runs no kubeadm
// (the simulated provider's) registers exactly as a real one would, from
// the same rendered join.
func ReadRegistration(b providers.Bootstrap) (Registration, error) {
	var config []byte
	for _, f := range b.Files {
		if f.Path == KubeadmConfigPath {
			config = f.Content
		}
	}
	if config == nil {
		return Registration{}, fmt.Errorf("the bootstrap has no %s", KubeadmConfigPath)
	}
	for _, doc := range bytes.Split(config, []byte("\n---\n")) {
		var jc joinConfiguration
		if err := yaml.Unmarshal(doc, &jc); err != nil {
			return Registration{}, fmt.Errorf("reading %s: %w", KubeadmConfigPath, err)
		}
		if jc.Kind != "JoinConfiguration" {
			continue
		}
		r := Registration{Name: jc.NodeRegistration.Name, Labels: map[string]string{}}
		for _, t := range jc.NodeRegistration.Taints {
			r.Taints = append(r.Taints, v1alpha1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
		}
		for _, a := range jc.NodeRegistration.KubeletExtraArgs {
			if a.Name != "node-labels" {
				continue
			}
			for pair := range strings.SplitSeq(a.Value, ",") {
				if k, v, ok := strings.Cut(pair, "="); ok {
					r.Labels[k] = v
				}
			}
		}
		return r, nil
	}
	return Registration{}, fmt.Errorf("%s holds no JoinConfiguration", KubeadmConfigPath)
}
