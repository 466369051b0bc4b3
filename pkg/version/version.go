// Package version carries what the build stamps into the binaries: the seed's
// own version and the agent image it installs by default.
package version

// Set with -ldflags "-X github.com/seedhq/seed/pkg/version.Version=..." by hack/build.sh.
var (
	// Version is the seed's version.
	Version = "dev"
	// AgentImage is the agent image the seed installs unless told otherwise.
	AgentImage = "seed-agent:dev"
)
