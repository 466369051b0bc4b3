// Package etcd is the agent's etcd client for the few calls a
// control-plane replacement and a backup need: list members, remove one,
// move the leadership, read a member's status, take a snapshot. It speaks
// etcd's JSON gateway (the gRPC API over HTTP, served on every client port
// and on by default in etcd 3.5 and 3.6) with the standard library alone,
// so the agent carries no gRPC stack for five calls.
package etcd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Member is one etcd member.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Status is what a member says of itself.
type Status struct {
	MemberID uint64
	Version  string
	Leader   uint64
}

// Client calls etcd's JSON gateway.
type Client struct {
	HTTP *http.Client
}

// NewTLSClient returns a client authenticating with the certificate and key
// files in dir (kubeadm's /etc/kubernetes/pki/etcd: ca.crt and the
// healthcheck-client pair), trusting only the etcd CA.
func NewTLSClient(dir string) (*Client, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading the etcd CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no certificate", filepath.Join(dir, "ca.crt"))
	}
	// Read at every handshake: the files change when the control plane
	// the agent runs on does.
	getCert := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, "healthcheck-client.crt"), filepath.Join(dir, "healthcheck-client.key"))
		if err != nil {
			return nil, fmt.Errorf("loading the etcd client certificate: %w", err)
		}
		return &c, nil
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, GetClientCertificate: getCert, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 2,
	}
	return &Client{HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

// uint64s in the gateway's JSON are strings.
type id uint64

func (i *id) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*i = 0
		return nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	*i = id(v)
	return err
}

func (i id) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(i), 10) + `"`), nil
}

type memberJSON struct {
	ID         id       `json:"ID"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

type header struct {
	MemberID id `json:"member_id"`
}

// call POSTs body to path on the first endpoint that answers and decodes
// the answer into out. Endpoints are base URLs (https://10.0.0.2:2379).
func (c *Client) call(ctx context.Context, endpoints []string, path string, body, out any) error {
	if len(endpoints) == 0 {
		return errors.New("etcd: no endpoint to ask")
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var errs []error
	for _, ep := range endpoints {
		err := c.callOne(ctx, ep, path, payload, out)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (c *Client) callOne(ctx context.Context, endpoint, path string, payload []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+path, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s%s: %w", endpoint, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("etcd %s%s: reading the answer: %w", endpoint, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		msg := e.Message
		if msg == "" {
			msg = e.Error
		}
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		return &Error{Endpoint: endpoint, Status: resp.StatusCode, Message: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("etcd %s%s: decoding the answer: %w", endpoint, path, err)
	}
	return nil
}

// Error is a refusal from etcd.
type Error struct {
	Endpoint string
	Status   int
	Message  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("etcd %s: %s (HTTP %d)", e.Endpoint, e.Message, e.Status)
}

// Members lists the cluster's members.
func (c *Client) Members(ctx context.Context, endpoints []string) ([]Member, error) {
	var out struct {
		Members []memberJSON `json:"members"`
	}
	if err := c.call(ctx, endpoints, "/v3/cluster/member/list", map[string]any{"linearizable": true}, &out); err != nil {
		return nil, err
	}
	ms := make([]Member, 0, len(out.Members))
	for _, m := range out.Members {
		ms = append(ms, Member{ID: uint64(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return ms, nil
}

// RemoveMember removes member memberID. A member already gone is success.
func (c *Client) RemoveMember(ctx context.Context, endpoints []string, memberID uint64) error {
	err := c.call(ctx, endpoints, "/v3/cluster/member/remove", map[string]any{"ID": id(memberID)}, nil)
	var e *Error
	if errors.As(err, &e) && strings.Contains(e.Message, "member not found") {
		return nil
	}
	return err
}

// Status asks the member at endpoint about itself.
func (c *Client) Status(ctx context.Context, endpoint string) (Status, error) {
	var out struct {
		Header  header `json:"header"`
		Version string `json:"version"`
		Leader  id     `json:"leader"`
	}
	if err := c.call(ctx, []string{endpoint}, "/v3/maintenance/status", map[string]any{}, &out); err != nil {
		return Status{}, err
	}
	return Status{MemberID: uint64(out.Header.MemberID), Version: out.Version, Leader: uint64(out.Leader)}, nil
}

// MoveLeader asks the leader, at leaderEndpoint, to hand the leadership to
// member to.
func (c *Client) MoveLeader(ctx context.Context, leaderEndpoint string, to uint64) error {
	return c.call(ctx, []string{leaderEndpoint}, "/v3/maintenance/transfer-leadership", map[string]any{"targetID": id(to)}, nil)
}
