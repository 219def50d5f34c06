package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/webhook"
	"github.com/intake-dev/intake/pkg/webhook/webhooktest"
)

const webhookSecret = "whsec-0123456789abcdef0123456789abcdef"

// TestWebhooksEndToEnd is scenario (f): an upload through intake with
// --webhook-url set reaches the receiver as upload.created and
// upload.completed with the documented JSON — and the download_url really
// downloads the bytes; deleting it sends upload.terminated.
func TestWebhooksEndToEnd(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		r := webhooktest.New(t, webhookSecret)
		r.FailFirst(1, http.StatusServiceUnavailable) // one retry on the way
		cfg.WebhookURL, cfg.WebhookSecret = r.URL, webhookSecret
		ts := startServer(t, cfg)
		ctx := context.Background()

		data := randomBytes(t, 300<<10)
		url, err := ts.client.Upload(ctx, bytes.NewReader(data), int64(len(data)), 100<<10,
			map[string]string{"filename": "report.bin", "team": "blue"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		id := idOf(url)
		got := r.WaitProcessed(ctx, 2, 15*time.Second)
		created, completed := got[0].Body, got[1].Body
		if created.Type != catalog.EventCreated || completed.Type != catalog.EventCompleted {
			t.Fatalf("events %s, %s; want upload.created, upload.completed", created.Type, completed.Type)
		}
		for _, b := range []webhook.Body{created, completed} {
			if b.Upload.ID != id || b.OccurredAt.IsZero() || time.Since(b.OccurredAt) > time.Minute {
				t.Errorf("%s: upload %s at %s; want %s, just now", b.Type, b.Upload.ID, b.OccurredAt, id)
			}
			if b.Upload.Filename == nil || *b.Upload.Filename != "report.bin" || b.Upload.Metadata["team"] != "blue" {
				t.Errorf("%s: filename %v, metadata %v", b.Type, b.Upload.Filename, b.Upload.Metadata)
			}
			if b.Upload.Storage == nil || *b.Upload.Storage != (webhook.Storage{Backend: "file", Key: id}) {
				t.Errorf("%s: storage %+v; want the file store's object %s", b.Type, b.Upload.Storage, id)
			}
		}
		if created.Upload.SHA256 != nil || created.Upload.DownloadURL != nil {
			t.Errorf("upload.created: sha256 %v, download_url %v; want null before completion", created.Upload.SHA256, created.Upload.DownloadURL)
		}

		up := completed.Upload
		sum := sha256.Sum256(data)
		if up.Size == nil || *up.Size != int64(len(data)) {
			t.Errorf("upload.completed: size %v; want %d", up.Size, len(data))
		}
		if up.SHA256 == nil || *up.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("upload.completed: sha256 %v; want %x", up.SHA256, sum)
		}
		// Without --public-url the link is the address intake listens on.
		if up.DownloadURL == nil || *up.DownloadURL != ts.base+cfg.BasePath+id {
			t.Fatalf("upload.completed: download_url %v; want %s", up.DownloadURL, ts.base+cfg.BasePath+id)
		}
		if b := ts.download(*up.DownloadURL); !bytes.Equal(b, data) {
			t.Errorf("download_url answered %d bytes; want the %d uploaded", len(b), len(data))
		}

		// The raw JSON has every documented field, null where unknown.
		raw := string(got[0].Raw)
		for _, key := range []string{`"id":`, `"type":`, `"occurred_at":`, `"upload":{`, `"owner":`, `"size":`,
			`"sha256":null`, `"content_type":`, `"filename":`, `"metadata":`, `"storage":{"backend":"file","bucket":null,"key":`, `"download_url":null`} {
			if !strings.Contains(raw, key) {
				t.Errorf("upload.created body lacks %s:\n%s", key, raw)
			}
		}

		if err := ts.client.Delete(ctx, url); err != nil {
			t.Fatal(err)
		}
		got = r.WaitProcessed(ctx, 3, 15*time.Second)
		if b := got[2].Body; b.Type != catalog.EventTerminated || b.Upload.ID != id || b.Upload.DownloadURL != nil {
			t.Errorf("after DELETE: %s of %s, download_url %v; want upload.terminated of %s without a download", b.Type, b.Upload.ID, b.Upload.DownloadURL, id)
		}

		// The deliveries are counted: three delivered, the one 503 failed.
		resp, body := ts.do("GET", ts.base+"/metrics", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %d", resp.StatusCode)
		}
		for outcome, want := range map[string]int{"delivered": 3, "failed": 1} {
			m := regexp.MustCompile(`(?m)^intake_webhook_deliveries_total\{outcome="` + outcome + `"\} (\d+)$`).FindSubmatch(body)
			if m == nil {
				t.Errorf("/metrics lacks intake_webhook_deliveries_total{outcome=%q}", outcome)
			} else if n, _ := strconv.Atoi(string(m[1])); n != want {
				t.Errorf("intake_webhook_deliveries_total{outcome=%q} = %d; want %d", outcome, n, want)
			}
		}
	})
}

// Without --webhook-url nothing is sent and no webhook metric is served;
// the events are still recorded, for a dispatcher configured later.
func TestWebhooksOff(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sqlite")
	ts := startServer(t, cfg)
	data := randomBytes(t, 1000)
	if _, err := ts.client.Upload(context.Background(), bytes.NewReader(data), int64(len(data)), 0, nil, 0); err != nil {
		t.Fatal(err)
	}
	list, err := ts.srv.Catalog().ListEvents(context.Background(), catalog.EventFilter{Pending: true})
	if err != nil || len(list) != 2 {
		t.Errorf("pending events: %d, %v; want 2 (created, completed)", len(list), err)
	}
	if _, body := ts.do("GET", ts.base+"/metrics", nil, nil); bytes.Contains(body, []byte("intake_webhook_")) {
		t.Error("/metrics has webhook metrics without --webhook-url")
	}
}
