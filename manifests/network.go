package manifests

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

//go:embed network/seednet.yaml
var seednetYAML string

// Pod network backends seednet supports.
const (
	// NetworkRoute routes each node's pod CIDR via that node's address. The
	// network between nodes must deliver packets addressed to pods (a
	// Docker bridge does; an AWS VPC drops them at source/destination
	// checks).
	NetworkRoute = "route"
	// NetworkVXLAN encapsulates pod traffic between nodes in VXLAN (UDP
	// 4789), so the network between nodes only sees node addresses.
	NetworkVXLAN = "vxlan"
)

var imageRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:@-]*$`)

// Network renders seednet's manifest (ServiceAccount, RBAC, DaemonSet) for
// an image and a backend, as one YAML stream.
func Network(image, backend string) ([]byte, error) {
	if !imageRef.MatchString(image) {
		return nil, fmt.Errorf("rendering the pod network manifest: %q is not an image reference", image)
	}
	if backend != NetworkRoute && backend != NetworkVXLAN {
		return nil, fmt.Errorf("rendering the pod network manifest: backend %q must be %q or %q", backend, NetworkRoute, NetworkVXLAN)
	}
	return []byte(strings.NewReplacer("@IMAGE@", image, "@BACKEND@", backend).Replace(seednetYAML)), nil
}
