package etcd

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/testenv"
)

// The gateway calls against a real etcd (the one testenv runs for its API
// server, plain HTTP on loopback).
func TestAgainstRealEtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := testenv.Start(ctx, t)
	c := &Client{HTTP: &http.Client{Timeout: 5 * time.Second}}
	eps := []string{"http://127.0.0.1:1", env.EtcdURL} // the first refuses: the next is tried

	members, err := c.Members(ctx, eps)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].ID == 0 || members[0].IsLearner || len(members[0].ClientURLs) == 0 {
		t.Fatalf("members = %+v, want one voting member with an ID and client URLs", members)
	}
	st, err := c.Status(ctx, env.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemberID != members[0].ID || st.Leader != members[0].ID || !strings.HasPrefix(st.Version, "3.") {
		t.Errorf("status = %+v, want member and leader %d and a 3.x version", st, members[0].ID)
	}
	if err := c.RemoveMember(ctx, eps, members[0].ID+1); err != nil {
		t.Errorf("removing a member that does not exist: %v, want success", err)
	}
	err = c.MoveLeader(ctx, env.EtcdURL, members[0].ID+1)
	var e *Error
	if err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("moving the leadership to no member: err = %v (%T), want etcd's refusal", err, e)
	}
}
