package main

import (
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{900, 100, 500}, 500}, // unsorted: not the middle element
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, 1, 100}, 1}, // an outlier does not move it
	} {
		in := slices.Clone(tc.xs)
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v; want %v", in, got, tc.want)
		}
		if !slices.Equal(tc.xs, in) {
			t.Errorf("median(%v) reordered its input to %v", in, tc.xs)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	seq := func(n int) []time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = time.Duration(n-i) * time.Millisecond // descending: must be sorted
		}
		return ds
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one p50", seq(1), 50, 1 * time.Millisecond},
		{"one p99", seq(1), 99, 1 * time.Millisecond},
		{"100 p50", seq(100), 50, 50 * time.Millisecond},
		{"100 p99", seq(100), 99, 99 * time.Millisecond},
		{"100 p100", seq(100), 100, 100 * time.Millisecond},
		{"2000 p99 is the 1980th", seq(2000), 99, 1980 * time.Millisecond},
		{"2000 p50 is the 1000th", seq(2000), 50, 1000 * time.Millisecond},
		{"3 p99 is the largest", seq(3), 99, 3 * time.Millisecond},
		{"two p50 is the lower", seq(2), 50, 1 * time.Millisecond},
	} {
		in := slices.Clone(tc.ds)
		if got := percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("%s: percentile(p%v) = %v; want %v", tc.name, tc.p, got, tc.want)
		}
		if !slices.Equal(tc.ds, in) {
			t.Errorf("%s: percentile reordered its input", tc.name)
		}
	}
}
