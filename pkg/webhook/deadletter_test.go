package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intake-dev/intake/pkg/cli"
	"github.com/intake-dev/intake/pkg/webhook"
	"github.com/intake-dev/intake/pkg/webhook/webhooktest"
)

// intake runs the command tree in process.
func intake(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errw bytes.Buffer
	code = cli.Execute(t.Context(), args, &out, &errw)
	return out.String(), errw.String(), code
}

// eventView is a row of `intake events ls --json`.
type eventView struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	UploadID   string     `json:"upload_id"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	LastError  string     `json:"last_error"`
	DeadAt     *time.Time `json:"dead_at"`
	OccurredAt time.Time  `json:"occurred_at"`
}

func eventsLs(t *testing.T, b *bundle, args ...string) []eventView {
	t.Helper()
	out, stderr, code := intake(t, append(append([]string{"events", "ls", "--json"}, args...), b.settings()...)...)
	if code != 0 {
		t.Fatalf("events ls %v: exit %d: %s", args, code, stderr)
	}
	var views []eventView
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		t.Fatalf("events ls --json: %v\n%s", err, out)
	}
	return views
}

// TestDeadLetter is scenario (e): past the max age an event is given up
// on, listed by `intake events ls --failed`, and `intake events retry`
// makes it deliverable again.
func TestDeadLetter(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *bundle) {
		r := webhooktest.New(t, secret)
		var down atomic.Bool
		down.Store(true)
		r.Respond(func(int, string) int {
			if down.Load() {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		uploads(t, b.cat, "u", 1) // created and completed
		reg := prometheus.NewRegistry()
		opts := options(t, r.URL)
		opts.MaxAge = 300 * time.Millisecond
		opts.Metrics = webhook.NewMetrics(reg)
		stop := start(t, b.cat, opts)

		waitFor(t, 10*time.Second, "both events dead-lettered", func() bool {
			return len(eventsLs(t, b, "--failed")) == 2
		})
		stop()
		tries := r.Requests()
		if tries < 2 {
			t.Errorf("%d requests before giving up; want at least one per event", tries)
		}
		if got := counter(t, reg, "intake_webhook_dead_lettered_total"); got != 2 {
			t.Errorf("intake_webhook_dead_lettered_total = %v; want 2", got)
		}
		if got := counter(t, reg, "intake_webhook_deliveries_total"); got != float64(tries) {
			t.Errorf("intake_webhook_deliveries_total = %v; want the %d requests", got, tries)
		}

		dead := eventsLs(t, b, "--failed")
		for _, v := range dead {
			if v.Status != "dead" || v.DeadAt == nil || v.Attempts < 1 || v.LastError != "receiver answered 500 Internal Server Error" || v.UploadID != "u-0" {
				t.Errorf("dead event: %+v", v)
			}
		}
		if pending := eventsLs(t, b, "--pending"); len(pending) != 0 {
			t.Errorf("events ls --pending: %+v; want none", pending)
		}
		// Newest first.
		if dead[0].Type != "upload.completed" || dead[1].Type != "upload.created" {
			t.Errorf("events ls --failed: types %s, %s; want upload.completed, then upload.created", dead[0].Type, dead[1].Type)
		}
		table, _, _ := intake(t, append([]string{"events", "ls", "--failed"}, b.settings()...)...)
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], dead[0].ID) ||
			!strings.Contains(lines[1], " dead ") || !strings.Contains(lines[1], "receiver answered 500") {
			t.Errorf("events ls --failed:\n%s", table)
		}

		// The receiver is fixed; the dispatcher runs again. Dead events stay
		// dead until retried.
		down.Store(false)
		opts.Metrics = nil
		start(t, b.cat, opts)
		time.Sleep(200 * time.Millisecond)
		if n := r.Requests(); n != tries {
			t.Fatalf("%d new requests for dead events; want none before a retry", n-tries)
		}
		revived := dead[1].ID
		out, stderr, code := intake(t, append([]string{"events", "retry", revived}, b.settings()...)...)
		if code != 0 || out != "event "+revived+" is due again\n" {
			t.Fatalf("events retry: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		processed := r.WaitProcessed(t.Context(), 1, 10*time.Second)
		if processed[0].ID != revived {
			t.Errorf("processed %s; want the retried %s", processed[0].ID, revived)
		}
		waitFor(t, 10*time.Second, "the retried event recorded delivered", func() bool {
			for _, v := range eventsLs(t, b) {
				if v.ID == revived {
					return v.Status == "delivered"
				}
			}
			return false
		})
		if still := eventsLs(t, b, "--failed"); len(still) != 1 || still[0].ID != dead[0].ID {
			t.Errorf("events ls --failed after one retry: %+v; want only %s", still, dead[0].ID)
		}

		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"events", "retry", revived}, `event "` + revived + `" was already delivered`},
			{[]string{"events", "retry", "no-such-event"}, `no event with id "no-such-event"`},
			{[]string{"events", "retry"}, "accepts 1 arg"},
			{[]string{"events", "ls", "--failed", "--pending"}, "--failed and --pending exclude each other"},
			{[]string{"events", "ls", "--limit", "0"}, "--limit must be at least 1"},
		} {
			out, stderr, code := intake(t, append(tc.args, b.settings()...)...)
			if code != 1 || out != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("intake %v: exit %d, stdout %q, stderr %q; want exit 1 saying %q", tc.args, code, out, stderr, tc.want)
			}
		}
		if ids := ids(eventsLs(t, b, "--limit", "1"), func(v eventView) string { return v.ID }); !slices.Equal(ids, []string{dead[0].ID}) {
			t.Errorf("events ls --limit 1: %q; want the newest, %s", ids, dead[0].ID)
		}
	})
}

// counter sums the values of the counter family name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
