package providers

// Ownership labels (Docker) and tags (AWS) every machine carries. Listing by
// them is how Seed finds its machines when nothing else is left.
const (
	LabelCluster = "seed.dev/cluster"
	LabelPool    = "seed.dev/pool"
	LabelRole    = "seed.dev/role"
	LabelMachine = "seed.dev/machine"
	LabelVersion = "seed.dev/kubernetes-version"
	LabelType    = "seed.dev/machine-type"
)
