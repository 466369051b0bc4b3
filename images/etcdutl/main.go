// Command etcdutl is etcd's offline tool (snapshot status and restore,
// defrag), rebuilt from etcd's own command constructors because etcdutl's
// main package cannot be imported. It is what restoring an etcd snapshot
// on a control-plane machine runs; hack/build-etcdutl.sh builds it at the
// version of the cluster's etcd.
package main

import (
	"os"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/etcdutl/v3/etcdutl"
)

func main() {
	root := &cobra.Command{
		Use:           "etcdutl",
		Short:         "An administrative command line tool for etcd3.",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.PersistentFlags().StringVarP(&etcdutl.OutputFormat, "write-out", "w", "simple",
		"set the output format (fields, json, protobuf, simple, table)")
	root.AddCommand(
		etcdutl.NewDefragCommand(),
		etcdutl.NewSnapshotCommand(),
		etcdutl.NewVersionCommand(),
	)
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
