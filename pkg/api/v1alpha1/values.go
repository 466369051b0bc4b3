package v1alpha1

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("90s", "10m").
// Decoding never fails on a malformed string: the text is kept and Validate
// reports it with the field's path, so one pass lists every problem.
type Duration struct {
	time.Duration
	invalid string
}

// NewDuration returns a valid Duration.
func NewDuration(d time.Duration) *Duration { return &Duration{Duration: d} }

// Err says why the written value is not a duration, or nil.
func (d Duration) Err() error {
	if d.invalid == "" {
		return nil
	}
	return fmt.Errorf("invalid duration %q: write a Go duration such as 90s, 10m or 1h30m", d.invalid)
}

// MarshalJSON writes the duration as a string; an invalid one as it was written.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d.invalid != "" {
		return json.Marshal(d.invalid)
	}
	return json.Marshal(d.String())
}

// UnmarshalJSON reads a duration string. null leaves d alone, as it does
// every other Go value.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	*d = Duration{}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		d.invalid = string(b)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		d.invalid = s
		if d.invalid == "" {
			d.invalid = `""`
		}
		return nil
	}
	d.Duration = v
	return nil
}

// IntOrPercent is either a whole number (3) or a percentage ("40%").
type IntOrPercent struct {
	Value   int32
	Percent bool
	invalid string
}

// NewPercent returns a percentage.
func NewPercent(p int32) *IntOrPercent { return &IntOrPercent{Value: p, Percent: true} }

// NewCount returns a count.
func NewCount(n int32) *IntOrPercent { return &IntOrPercent{Value: n} }

// Err says why the written value is neither a count nor a percentage, or nil.
func (v IntOrPercent) Err() error {
	if v.invalid == "" {
		return nil
	}
	return fmt.Errorf("invalid value %s: write a whole number such as 2 or a percentage such as \"40%%\"", v.invalid)
}

// Of scales the value against total, rounding a percentage up (as Cluster
// API does for maxUnhealthy): rounding down would make "40%" of one or two
// workers zero, and a small cluster could never heal a single sick machine.
func (v IntOrPercent) Of(total int) int {
	if !v.Percent {
		return int(v.Value)
	}
	return (total*int(v.Value) + 99) / 100
}

// String renders the value as written in a spec.
func (v IntOrPercent) String() string {
	if v.invalid != "" {
		return v.invalid
	}
	if v.Percent {
		return strconv.Itoa(int(v.Value)) + "%"
	}
	return strconv.Itoa(int(v.Value))
}

// MarshalJSON writes a count as a number and a percentage as a string.
func (v IntOrPercent) MarshalJSON() ([]byte, error) {
	if v.invalid != "" || v.Percent {
		return json.Marshal(v.String())
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads 3 or "40%". null leaves v alone rather than reading
// as a count of 0.
func (v *IntOrPercent) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	*v = IntOrPercent{}
	var n int32
	if err := json.Unmarshal(b, &n); err == nil {
		v.Value = n
		if n < 0 {
			v.invalid = string(b)
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		v.invalid = string(b)
		return nil
	}
	num, isPercent := strings.CutSuffix(s, "%")
	p, err := strconv.ParseInt(num, 10, 32)
	if err != nil || p < 0 || (isPercent && p > 100) {
		v.invalid = strconv.Quote(s)
		return nil
	}
	v.Value, v.Percent = int32(p), isPercent
	return nil
}
