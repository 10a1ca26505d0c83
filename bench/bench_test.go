package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := []time.Duration{percentile(d, 0.5), percentile(d, 0.9), percentile(d, 0.99), percentile(d, 1)}
	want := []time.Duration{50 * time.Millisecond, 90 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("percentiles (-want +got):\n%s", diff)
	}
	if d[0] != 100*time.Millisecond {
		t.Error("percentile sorted its argument in place")
	}
	if p := percentile(nil, 0.99); p != 0 {
		t.Errorf("percentile of nothing = %v, want 0", p)
	}
}
