package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// The service account files every pod gets.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// APIReport is what one apiprobe pod has seen of the API server, from its
// own start. The e2e tests decode it from the ConfigMap the pod writes it
// to (one key per pod); the field names are that contract.
type APIReport struct {
	Pod  string `json:"pod"`
	Node string `json:"node"`
	// Start is when the pod began probing; FirstOK and LastOK bound the
	// time it covered.
	Start   time.Time `json:"start"`
	FirstOK time.Time `json:"firstOK,omitzero"`
	LastOK  time.Time `json:"lastOK,omitzero"`
	OK      int       `json:"ok"`
	Failed  int       `json:"failed"`
	// NotReady counts the /readyz answers that said not ready. Those are
	// no failed request: a stopping API server says so on purpose while it
	// goes on serving for its shutdown delay.
	NotReady int `json:"notReady"`
	// LongestGapMS is the longest time between two successful probes, and
	// LongestGapAt when it began.
	LongestGapMS int64     `json:"longestGapMS"`
	LongestGapAt time.Time `json:"longestGapAt,omitzero"`
	LastError    string    `json:"lastError,omitempty"`
	// Final is set by the report written on SIGTERM.
	Final bool `json:"final,omitempty"`
}

// apiProbe probes the kubernetes.default Service (its VIP) every
// interval with the pod's service account: a GET of a ConfigMap (a read
// that needs authentication, authorisation and etcd), which succeeds when
// it returns 200, and GET /readyz, whose not-ready answers are counted
// apart: clients never ask /readyz, and a stopping API server answers it
// not ready while it still serves their requests. Each request uses a new
// connection, so a dead apiserver behind a kept-alive connection is not
// mistaken for a slow one, and every probe sees what the VIP routes to now.
//
// Every second, and once more when it is told to stop, it writes its
// APIReport to the ConfigMap named by report (key: its pod name), so a
// test still has it after the pod, or its node, is gone. A gap is only
// ever measured inside one pod's life: a pod evicted from a draining node
// reports up to its end, and its replacement starts afresh.
func apiProbe(ctx context.Context, report string, interval time.Duration) error {
	ns, err := os.ReadFile(serviceAccountDir + "/namespace")
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(serviceAccountDir + "/ca.crt")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %s/ca.crt", serviceAccountDir)
	}
	// The Service VIP from the environment, as client-go's in-cluster
	// config has it: a name would make every probe a DNS lookup too, and
	// CoreDNS moving between nodes is not an API gap.
	h, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if h == "" || port == "" {
		return fmt.Errorf("KUBERNETES_SERVICE_HOST/PORT are not set: not in a pod")
	}
	host := "https://" + net.JoinHostPort(h, port)
	// A probe fails when the API refuses, resets, answers an error or has
	// not answered in 5 s (as the host's probes, e2e/upgrade_probes_test.go);
	// a slower answer is a gap, which the figures report.
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "kubernetes.default.svc", MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}
	p := &prober{
		client: client, host: host, namespace: strings.TrimSpace(string(ns)), report: report,
		r: APIReport{Pod: os.Getenv("POD_NAME"), Node: os.Getenv("NODE_NAME"), Start: time.Now()},
	}
	if p.r.Pod == "" {
		p.r.Pod, _ = os.Hostname()
	}
	fmt.Printf("apiprobe %s on %s: probing %s every %s, reporting to configmap %s/%s\n", p.r.Pod, p.r.Node, host, interval, p.namespace, report)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				p.write(ctx, false)
			}
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		p.probe(ctx)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	wg.Wait()
	// The pod is being stopped, and the API that asked for it is up: one
	// last report, with a fresh context, so its end is known exactly.
	final, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p.write(final, true)
	return nil
}

type prober struct {
	client    *http.Client
	host      string
	namespace string
	report    string

	mu        sync.Mutex
	r         APIReport
	lastError string
}

func (p *prober) token() string {
	// Re-read each time: projected tokens are rotated on disk.
	b, _ := os.ReadFile(serviceAccountDir + "/token")
	return strings.TrimSpace(string(b))
}

func (p *prober) do(ctx context.Context, method, path, contentType string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, p.host+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.token())
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

func (p *prober) probe(ctx context.Context) {
	notReady := p.do(ctx, http.MethodGet, "/readyz", "", nil) != nil
	err := p.do(ctx, http.MethodGet, "/api/v1/namespaces/"+p.namespace+"/configmaps/kube-root-ca.crt", "", nil)
	if ctx.Err() != nil {
		return // stopping, not an API failure
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if notReady {
		p.r.NotReady++
	}
	if err != nil {
		if p.r.Failed == 0 || p.lastError != err.Error() {
			fmt.Printf("%s apiprobe FAIL %v\n", now.Format(time.RFC3339Nano), err)
		}
		p.r.Failed++
		p.lastError = err.Error()
		p.r.LastError = now.Format(time.RFC3339Nano) + " " + err.Error()
		return
	}
	if p.lastError != "" {
		fmt.Printf("%s apiprobe OK again after %s\n", now.Format(time.RFC3339Nano), now.Sub(p.r.LastOK).Round(time.Millisecond))
		p.lastError = ""
	}
	if p.r.FirstOK.IsZero() {
		p.r.FirstOK = now
	} else if gap := now.Sub(p.r.LastOK); gap.Milliseconds() > p.r.LongestGapMS {
		p.r.LongestGapMS, p.r.LongestGapAt = gap.Milliseconds(), p.r.LastOK
	}
	p.r.LastOK = now
	p.r.OK++
}

// write merges this pod's report into the report ConfigMap; a failure is
// only logged, as the API may be what is down.
func (p *prober) write(ctx context.Context, final bool) {
	p.mu.Lock()
	p.r.Final = final
	raw, _ := json.Marshal(p.r)
	p.mu.Unlock()
	patch, _ := json.Marshal(map[string]any{"data": map[string]string{p.r.Pod: string(raw)}})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.do(ctx, http.MethodPatch, "/api/v1/namespaces/"+p.namespace+"/configmaps/"+p.report,
		"application/merge-patch+json", patch); err != nil && final {
		fmt.Printf("apiprobe: final report not written: %v\n", err)
	}
}
