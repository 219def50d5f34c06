package logging

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestTusdBridge(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := New(&buf, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	tl := Tusd(l.Handler()).With("method", "PATCH")
	tl.Warn("BodyReadError", "error", "boom", "n", 3)
	tl.Info("ChunkWriteStart", "offset", int64(5))

	dec := json.NewDecoder(&buf)
	var warn, info map[string]any
	if err := dec.Decode(&warn); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&info); err != nil {
		t.Fatal(err)
	}
	if warn["level"] != "WARN" || warn["msg"] != "BodyReadError" || warn["method"] != "PATCH" || warn["n"] != float64(3) {
		t.Errorf("warn record = %v", warn)
	}
	if info["level"] != "DEBUG" || info["offset"] != float64(5) {
		t.Errorf("tusd info should be demoted to debug; got %v", info)
	}
}

func TestTusdBridgeFiltersDemoted(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := New(&buf, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	Tusd(l.Handler()).Info("RequestIncoming")
	if buf.Len() != 0 {
		t.Errorf("got %q; want tusd info hidden at level info", buf.String())
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	t.Parallel()
	if _, err := New(&bytes.Buffer{}, "xml", "info"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := New(&bytes.Buffer{}, "text", "loud"); err == nil {
		t.Error("level loud accepted")
	}
}
