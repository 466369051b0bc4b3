package controller

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/seedhq/seed/providers"
)

func TestRetryAfterIsReadFromTheProviderError(t *testing.T) {
	throttled := &providers.Error{Kind: providers.KindThrottled, Op: "creating machines", RetryAfter: 7 * time.Second, Err: errors.New("slow down")}
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"a provider error that says when", throttled, 7 * time.Second},
		{"wrapped, and joined with others", errors.Join(errors.New("other"), fmt.Errorf("creating machine x: %w", throttled)), 7 * time.Second},
		{"a provider error that does not say", providers.NewError(providers.KindTransient, "listing", errors.New("eof")), 0},
		{"not a provider error", errors.New("conflict"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.err); got != tc.want {
				t.Errorf("retryAfter = %v, want %v", got, tc.want)
			}
		})
	}
}
