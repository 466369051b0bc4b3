//go:build tools

// Package tools names the programs hack/build-velero.sh builds, so that
// go mod tidy keeps their modules; nothing compiles this file.
package tools

import (
	_ "github.com/vmware-tanzu/velero-plugin-for-aws/hack/cp-plugin"
	_ "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws"
	_ "github.com/vmware-tanzu/velero/cmd/velero"
)
