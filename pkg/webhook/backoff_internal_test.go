package webhook

import (
	"testing"
	"time"
)

// The n-th retry waits a random time within [0, min(cap, base*2^(n-1))],
// for any n, and the windows really grow: full jitter, not a fixed delay.
func TestBackoff(t *testing.T) {
	t.Parallel()
	d := New(nil, Options{URL: "http://127.0.0.1:1/"}) // defaults: 1s, 10m
	tests := []struct {
		attempt int
		window  time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{4, 8 * time.Second},
		{10, 512 * time.Second},
		{11, 10 * time.Minute},
		{64, 10 * time.Minute},
		{1 << 20, 10 * time.Minute},
	}
	for _, tt := range tests {
		var longest time.Duration
		for range 2000 {
			got := d.backoff(tt.attempt)
			if got < 0 || got > tt.window {
				t.Fatalf("backoff(%d) = %s; want within [0, %s]", tt.attempt, got, tt.window)
			}
			longest = max(longest, got)
		}
		// With 2000 draws, the longest is above 99% of the window but for
		// a chance of 0.99^2000.
		if longest < tt.window*99/100 {
			t.Errorf("backoff(%d): longest of 2000 draws %s; want close to %s", tt.attempt, longest, tt.window)
		}
	}
}
