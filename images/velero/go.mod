// The wrapper module that hack/build-velero.sh builds Velero and its AWS
// (S3) plugin through. Velero's go.mod replaces kopia with Velero's fork,
// and a replace in a dependency does not apply to the module that requires
// it, so the replace is copied here; cli-runtime is held at v0.33.10 because
// the Go module proxy refuses the v0.33.12 Velero asks for. The script
// copies this directory into its cache and adds the requirements.
module github.com/seedhq/seed/images/velero

go 1.25.0

replace github.com/kopia/kopia => github.com/project-velero/kopia v0.0.0-20251230033609-d946b1e75197

replace k8s.io/cli-runtime => k8s.io/cli-runtime v0.33.10
