#!/usr/bin/env bash
# Checks that manifests/velero/crds holds the CRDs of the Velero release
# hack/build-velero.sh builds.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/update-velero-crds.sh" --check
