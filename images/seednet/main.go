package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		klog.ErrorS(err, "seednet failed")
		klog.Flush()
		os.Exit(1)
	}
}

// options are seednet's flags.
type options struct {
	nodeName   string
	backend    string
	kubeconfig string
	serverFrom string
	cniConfDir string
	resync     time.Duration
	retry      time.Duration
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seednet", flag.ContinueOnError)
	o := options{}
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "name of the Node seednet runs on (default $NODE_NAME)")
	fs.StringVar(&o.backend, "backend", backendRoute, "how pod traffic travels between nodes: route (via each node's address, for networks that deliver packets addressed to pods) or vxlan (encapsulated in UDP 4789 between node addresses)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig to use outside a pod")
	fs.StringVar(&o.serverFrom, "server-from", "", "a kubeconfig (the kubelet's) whose server URL to use instead of the kubernetes Service's address, which works only once kube-proxy has programmed it; its credentials are not used")
	fs.StringVar(&o.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory containerd reads CNI configs from")
	fs.DurationVar(&o.resync, "resync", 30*time.Second, "how often to repair routes and rules even when no Node changed")
	fs.DurationVar(&o.retry, "retry", 2*time.Second, "how soon to try again after a failed pass")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.nodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required")
	}
	if o.backend != backendRoute && o.backend != backendVXLAN {
		return fmt.Errorf("--backend=%q: must be %q or %q", o.backend, backendRoute, backendVXLAN)
	}

	cfg, err := restConfig(o.kubeconfig, o.serverFrom)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	if err := enableForwarding(); err != nil {
		return err
	}
	s := &syncer{
		self:    o.nodeName,
		backend: o.backend,
		host:    &execHost{confPath: filepath.Join(o.cniConfDir, "10-seednet.conflist")},
		mtu:     mtuOf,
	}
	klog.InfoS("Starting seednet", "node", klog.KRef("", o.nodeName), "backend", o.backend, "cniConfDir", o.cniConfDir)
	return watch(ctx, client, s, o.resync, o.retry)
}

func restConfig(kubeconfig, serverFrom string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("loading in-cluster config: %w", err)
	}
	if serverFrom != "" {
		// The pod network comes up before kube-proxy has programmed the
		// Service address on a new node; the kubelet's server does not
		// wait for either.
		server, err := serverOf(serverFrom)
		if err != nil {
			klog.InfoS("Using the kubernetes Service address", "reason", err)
		} else {
			cfg.Host = server
		}
	}
	return cfg, nil
}

// serverOf returns the server URL of a kubeconfig's current context.
func serverOf(path string) (string, error) {
	c, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	ctx, ok := c.Contexts[c.CurrentContext]
	if !ok {
		return "", fmt.Errorf("%s has no current context", path)
	}
	cl, ok := c.Clusters[ctx.Cluster]
	if !ok || cl.Server == "" {
		return "", fmt.Errorf("%s names no server for context %s", path, c.CurrentContext)
	}
	return cl.Server, nil
}
