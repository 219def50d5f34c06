package server_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
)

// TestExecutableDeclaredAsPNGIsRejected: under --allowed-types image/*, an
// executable named cat.png and declared image/png passes the early hint but
// is sniffed at finalization: the last PATCH gets 415 with a JSON error,
// the session is rejected, its bytes are released and it answers 410.
func TestExecutableDeclaredAsPNGIsRejected(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg.AllowedTypes = "image/*"
		ts := startServer(t, cfg)
		ctx := context.Background()
		exe := append([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0}, bytes.Repeat([]byte{0x90}, 4096)...)
		url, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(exe)), Metadata: map[string]string{"filename": "cat.png", "filetype": "image/png"}}, nil, 0)
		if err != nil {
			t.Fatalf("creating with a declared image/png: %v; want 201 (the hint passes)", err)
		}
		_, err = ts.client.Patch(ctx, url, 0, bytes.NewReader(exe), int64(len(exe)), -1)
		var se *client.StatusError
		if !asStatus(err, &se) || se.Status != http.StatusUnsupportedMediaType || se.Code != "type_not_allowed" {
			t.Fatalf("last PATCH of an executable: %v; want 415 type_not_allowed", err)
		}
		sess, err := ts.srv.Catalog().Get(ctx, idOf(url))
		if err != nil || sess.State != catalog.StateRejected {
			t.Fatalf("session = %+v, %v; want rejected", sess.State, err)
		}
		if entries, _ := os.ReadDir(cfg.UploadsDir()); len(entries) != 0 {
			t.Fatalf("the rejected upload left %d files", len(entries))
		}
		if _, err := ts.client.Head(ctx, url); !client.IsStatus(err, http.StatusGone) {
			t.Fatalf("HEAD of the rejected upload: %v; want 410", err)
		}
	})
}
