// Package ec2server serves the EC2 Query protocol over HTTP, backed by the
// in-memory fake EC2, so tests can point the real AWS SDK at it (through
// BaseEndpoint, with static credentials) and exercise request encoding,
// XML decoding, error codes, NextToken pagination and the SDK's retries.
// It speaks only the actions the AWS provider calls, and rejects
// parameters it does not understand, as EC2 does, with UnknownParameter.
package ec2server

import (
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/seedhq/seed/providers/aws/fake"
)

const (
	// APIVersion is the EC2 API version the SDK sends.
	APIVersion = "2016-11-15"
	xmlns      = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// Server is an http.Handler speaking EC2's Query protocol.
type Server struct {
	ec2 *fake.EC2

	mu           sync.Mutex
	requests     map[string]int
	operations   map[string]int
	throttleRate float64
	rng          *rand.Rand
	seq          int
}

// New serves the given fake.
func New(f *fake.EC2) *Server {
	return &Server{ec2: f, requests: map[string]int{}, operations: map[string]int{}, rng: rand.New(rand.NewSource(1))}
}

// SetThrottleRate makes the server answer RequestLimitExceeded (HTTP 503)
// to this share of requests before they reach the fake, so the SDK's
// retryer sees real throttling.
func (s *Server) SetThrottleRate(rate float64, seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleRate = rate
	s.rng = rand.New(rand.NewSource(seed))
}

// Requests is how many HTTP requests came for action.
func (s *Server) Requests(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[action]
}

// Operations is how many calls of action the SDK made: requests that were
// a call's first attempt. A retried call is one operation and several
// requests. The SDK retries on its own even where the server answered in
// full: it can close a connection under a response it is still reading
// (aws-sdk-go-v2#2737, retried since #2949), so a test that counts pages
// or launches counts operations.
func (s *Server) Operations(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.operations[action]
}

// TotalRequests is how many HTTP requests came, for every action.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

// ResetRequests zeroes the counts.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = map[string]int{}
	s.operations = map[string]int{}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seq++
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		writeError(w, reqID, http.StatusBadRequest, "InvalidAction", "EC2 Query requests are POSTs")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		writeError(w, reqID, http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, reqID, http.StatusBadRequest, "MalformedQueryString", err.Error())
		return
	}
	f := &form{v: r.PostForm, used: map[string]bool{"Action": true, "Version": true}}
	action := r.PostForm.Get("Action")
	if v := r.PostForm.Get("Version"); v != APIVersion {
		writeError(w, reqID, http.StatusBadRequest, "InvalidParameterValue", "unsupported API version "+v)
		return
	}
	s.mu.Lock()
	s.requests[action]++
	if firstAttempt(r) {
		s.operations[action]++
	}
	throttled := s.throttleRate > 0 && s.rng.Float64() < s.throttleRate
	s.mu.Unlock()
	if throttled {
		writeError(w, reqID, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
		return
	}
	h, ok := handlers[action]
	if !ok {
		writeError(w, reqID, http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
		return
	}
	out, err := h(r, s.ec2, f)
	if err == nil {
		if unknown := f.unused(); len(unknown) > 0 {
			err = fake.APIError("UnknownParameter", "The parameter %s is not recognized", unknown[0])
		}
	}
	if err != nil {
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			writeError(w, reqID, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		status := http.StatusBadRequest
		if ae.ErrorFault() == smithy.FaultServer {
			status = http.StatusInternalServerError
		}
		if ae.ErrorCode() == "RequestLimitExceeded" {
			status = http.StatusServiceUnavailable
		}
		writeError(w, reqID, status, ae.ErrorCode(), ae.ErrorMessage())
		return
	}
	writeXML(w, http.StatusOK, action+"Response", reqID, out)
}

// firstAttempt reports whether r is the first attempt of an SDK call, by
// the amz-sdk-request header ("attempt=1; max=10") the SDK sends. A
// request without it counts as a first attempt.
func firstAttempt(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("amz-sdk-request"), ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "attempt" {
			return v == "1"
		}
	}
	return true
}

func writeXML(w http.ResponseWriter, status int, root, reqID string, body any) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	b, err := xml.Marshal(body)
	if err != nil {
		panic(err)
	}
	// The body's own element is replaced by the action's root element.
	inner := string(b)
	inner = inner[strings.Index(inner, ">")+1 : strings.LastIndex(inner, "</")]
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%s xmlns="%s"><requestId>%s</requestId>%s</%s>`, root, xmlns, reqID, inner, root)
}

func writeError(w http.ResponseWriter, reqID string, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(msg))
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`, code, b.String(), reqID)
}

// form reads Query parameters and remembers which it read, so that a
// parameter nobody read is reported as unknown.
type form struct {
	v    url.Values
	used map[string]bool
}

func (f *form) str(k string) *string {
	if _, ok := f.v[k]; !ok {
		return nil
	}
	f.used[k] = true
	return aws.String(f.v.Get(k))
}

func (f *form) i32(k string) (*int32, error) {
	s := f.str(k)
	if s == nil {
		return nil, nil
	}
	n, err := strconv.ParseInt(*s, 10, 32)
	if err != nil {
		return nil, fake.APIError("InvalidParameterValue", "Value (%s) for parameter %s is invalid.", *s, k)
	}
	return aws.Int32(int32(n)), nil
}

func (f *form) boolean(k string) *bool {
	s := f.str(k)
	if s == nil {
		return nil
	}
	return aws.Bool(*s == "true")
}

// count is how many members a flat list "prefix.N..." has.
func (f *form) count(prefix string) int {
	n := 0
	for k := range f.v {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(idx); err == nil && i > n {
			n = i
		}
	}
	return n
}

func (f *form) list(prefix string) []string {
	var out []string
	for i := 1; i <= f.count(prefix); i++ {
		if s := f.str(fmt.Sprintf("%s.%d", prefix, i)); s != nil {
			out = append(out, *s)
		}
	}
	return out
}

func (f *form) filters() []types.Filter {
	var out []types.Filter
	for i := 1; i <= f.count("Filter"); i++ {
		p := fmt.Sprintf("Filter.%d", i)
		out = append(out, types.Filter{Name: f.str(p + ".Name"), Values: f.list(p + ".Value")})
	}
	return out
}

func (f *form) tagSpecs() []types.TagSpecification {
	var out []types.TagSpecification
	for i := 1; i <= f.count("TagSpecification"); i++ {
		p := fmt.Sprintf("TagSpecification.%d", i)
		ts := types.TagSpecification{ResourceType: types.ResourceType(aws.ToString(f.str(p + ".ResourceType")))}
		for j := 1; j <= f.count(p+".Tag"); j++ {
			q := fmt.Sprintf("%s.Tag.%d", p, j)
			ts.Tags = append(ts.Tags, types.Tag{Key: f.str(q + ".Key"), Value: f.str(q + ".Value")})
		}
		out = append(out, ts)
	}
	return out
}

func (f *form) unused() []string {
	var out []string
	for k := range f.v {
		if !f.used[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func isoTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
