package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seedhq/seed/agent/controller"
	"github.com/seedhq/seed/agent/joiner"
	"github.com/seedhq/seed/agent/lb"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
	providermetrics "github.com/seedhq/seed/providers/metrics"
	"github.com/seedhq/seed/providers/registry"
)

// joinShareWindow is how long the joins of new machines share a token;
// the token lives for the spec's nodeStartupTimeout plus five minutes.
const joinShareWindow = 30 * time.Second

// Main runs the agent with the process's arguments until SIGTERM or SIGINT.
func Main() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stderr)
}

type flags struct {
	namespace    string
	kubeconfig   string
	metricsAddr  string
	self         string
	identity     string
	leaderElect  bool
	resync       time.Duration
	orphanGrace  time.Duration
	logFormatTxt bool
	profiling    bool
}

// Run runs the agent until ctx ends or it loses leadership. `agent lb ...`
// runs the API server load balancer instead (package lb), which the Docker
// provider's load-balancer container runs from the agent's image.
func Run(ctx context.Context, args []string, logOut io.Writer) error {
	if len(args) > 0 && args[0] == "lb" {
		return lb.Run(ctx, args[1:], logOut)
	}
	f := flags{}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(logOut)
	fs.StringVar(&f.namespace, "namespace", v1alpha1.DefaultNamespace, "namespace of the spec, status, ledger and lease")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig to use outside a cluster (default: in-cluster config)")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":10360", "address of /metrics, /healthz and /readyz")
	fs.StringVar(&f.self, "self", os.Getenv("NODE_NAME"), "machine (node) the agent runs on; never deleted (default $NODE_NAME)")
	fs.StringVar(&f.identity, "identity", os.Getenv("POD_NAME"), "leader-election identity (default $POD_NAME)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "hold a Lease so only one replica acts")
	fs.DurationVar(&f.resync, "resync", 30*time.Second, "how often to look again with nothing happening (catches drift only the provider sees)")
	fs.DurationVar(&f.orphanGrace, "orphan-grace-period", 2*time.Minute, "how long a machine of the cluster that belongs to no pool may live")
	fs.BoolVar(&f.logFormatTxt, "log-text", false, "log as text instead of JSON")
	fs.BoolVar(&f.profiling, "profiling", false, "also serve Go profiles on the metrics address: /debug/pprof/heap and /debug/pprof/profile?seconds=N (CPU), for go tool pprof")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.self == "" {
		return errors.New("the agent needs to know the machine it runs on: set --self or $NODE_NAME")
	}
	if f.identity == "" {
		host, _ := os.Hostname()
		f.identity = host
	}

	var handler slog.Handler = slog.NewJSONHandler(logOut, nil)
	if f.logFormatTxt {
		handler = slog.NewTextHandler(logOut, nil)
	}
	log := logr.FromSlogHandler(handler)
	if err := tuneMemory(log); err != nil {
		return err
	}

	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg.UserAgent = "seed-agent"
	// A scale-up costs two requests a machine (the join's cluster-info and
	// its bootstrap token) plus the ledger, status and Events. client-go's
	// default limit (5 a second, bursts of 10) would spread a scale-up of
	// 20 machines over seconds before the first provider call.
	cfg.QPS, cfg.Burst = 20, 60
	reg := prometheus.NewRegistry()
	countRequests(cfg, reg)
	// Built-in types travel as protobuf, as kube-controller-manager's do:
	// decoding each watched pod's update as JSON costs several times the
	// CPU, with 30 pods a node. The dynamic client (Velero's objects) and
	// the providers' clients choose their own.
	typed := rest.CopyConfig(cfg)
	typed.ContentType = kruntime.ContentTypeProtobuf
	typed.AcceptContentTypes = kruntime.ContentTypeProtobuf + "," + kruntime.ContentTypeJSON
	client, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	// Events have a rate limit of their own (NewForConfig gives each
	// clientset its own), so pod Events of a large scale-up cannot delay
	// the ledger writes its creates wait for.
	eventClient, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return fmt.Errorf("creating the Kubernetes client for Events: %w", err)
	}
	// Velero's objects are read and applied as unstructured data.
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the dynamic Kubernetes client: %w", err)
	}

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pm := providermetrics.NewMetrics(reg)
	// The provider is built from the first valid spec; the joiner renders
	// joins for whichever one that is.
	var caps atomic.Pointer[providers.Capabilities]
	var resign atomic.Pointer[context.CancelFunc]
	r, err := controller.New(controller.Options{
		Client:      client,
		EventClient: eventClient,
		Dynamic:     dyn,
		NewProvider: func(ctx context.Context, c *v1alpha1.Cluster) (providers.Provider, error) {
			p, err := registry.New(ctx, c, registry.Env{Logger: log.WithName("provider"), Kube: cfg})
			if err != nil {
				return nil, err
			}
			declared := p.Capabilities()
			caps.Store(&declared)
			return pm.Decorate(p), nil
		},
		// One token and one cluster-info read per burst of creations.
		Bootstrapper: joiner.Joiner{Client: client, Share: joiner.NewShare(joinShareWindow), Capabilities: func() providers.Capabilities {
			if c := caps.Load(); c != nil {
				return *c
			}
			return providers.Capabilities{}
		}},
		Namespace:         f.namespace,
		Self:              f.self,
		Identity:          f.identity,
		Resync:            f.resync,
		OrphanGracePeriod: f.orphanGrace,
		Metrics:           controller.NewMetrics(reg),
		Resign: func() {
			if r := resign.Load(); r != nil {
				(*r)()
			}
		},
		Logger: log.WithName("reconciler"),
	})
	if err != nil {
		return err
	}

	var standby atomic.Bool
	standby.Store(f.leaderElect)
	srv, err := serve(f.metricsAddr, reg, f.profiling, func() bool { return standby.Load() || r.Ready() })
	if err != nil {
		return err
	}
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()

	if !f.leaderElect {
		return r.Run(ctx)
	}
	// Resigning (after a handover) ends the lead and releases the Lease;
	// the process then exits, its pod being deleted anyway.
	leadCtx, cancelLead := context.WithCancel(ctx)
	defer cancelLead()
	resign.Store(&cancelLead)
	return controller.RunAsLeader(leadCtx, controller.LeaderOptions{
		Client: client, Namespace: f.namespace, Lease: v1alpha1.LeaseName, Identity: f.identity, Logger: log.WithName("leader"),
	}, func(ctx context.Context) {
		standby.Store(false)
		if err := r.Run(ctx); err != nil {
			log.Error(err, "Reconciler stopped")
		}
	})
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("loading in-cluster config (outside a cluster, pass --kubeconfig): %w", err)
	}
	return cfg, nil
}

// cpuProfile serves a CPU profile of the next ?seconds=N (1 to 300,
// default 30).
func cpuProfile(w http.ResponseWriter, req *http.Request) {
	seconds := 30
	if v := req.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 300 {
			http.Error(w, "seconds must be a whole number from 1 to 300", http.StatusBadRequest)
			return
		}
		seconds = n
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := pprof.StartCPUProfile(w); err != nil {
		// One at a time: the runtime has a single CPU profiler.
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	select {
	case <-time.After(time.Duration(seconds) * time.Second):
	case <-req.Context().Done():
	}
	pprof.StopCPUProfile()
}

// tuneMemory sets the garbage collector for an agent that is idle most of
// the time and must fit its container. Unless GOGC says otherwise, a
// collection runs when the heap has grown by half since the last one, not
// doubled: the live heap is mostly the informers' caches, and doubling it
// would double the footprint. Unless GOMEMLIMIT says otherwise, the soft
// limit is 85 % of SEED_MEMORY_LIMIT (the container's limit, through the
// Deployment's resourceFieldRef), the rest left for stacks and the
// runtime: near it the collector works harder instead of the kernel
// killing the agent in the middle of a step.
func tuneMemory(log logr.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	s := os.Getenv("SEED_MEMORY_LIMIT")
	if s == "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	limit, err := strconv.ParseInt(s, 10, 64)
	if err != nil || limit <= 0 {
		return fmt.Errorf("SEED_MEMORY_LIMIT=%q is not a number of bytes: set it from the container's limits.memory (resourceFieldRef), or unset it", s)
	}
	debug.SetMemoryLimit(limit / 100 * 85)
	log.V(1).Info("Go memory limit set", "bytes", limit/100*85, "containerLimit", limit)
	return nil
}

// serve starts /metrics, /healthz and /readyz, and with profiling the heap
// and CPU profiles. A standby replica is ready: it is healthy and waiting
// for the Lease.
func serve(addr string, reg *prometheus.Registry, profiling bool, ready func() bool) (*http.Server, error) {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/heap", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			runtime.GC() // the profile's in-use figures are as of the last collection
			if err := pprof.Lookup("heap").WriteTo(w, 0); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
		mux.HandleFunc("/debug/pprof/profile", cpuProfile)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "informers not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s for metrics: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
