package storage_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/storage"
)

// A tiny ELF header: what an executable renamed .png starts with.
var elf = append([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0}, bytes.Repeat([]byte{0}, 120)...)

// A PNG signature and IHDR chunk.
var png = append([]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'}, bytes.Repeat([]byte{1}, 112)...)

// TestSniffedTypeDecides: the type is sniffed from the stored bytes, not
// taken from the declared filetype. Under --allowed-types image/* an
// executable declared as image/png is rejected (415), its bytes released
// and its session rejected; a real PNG completes with its type recorded.
func TestSniffedTypeDecides(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{AllowedTypes: []string{"image/*"}}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		md := handler.MetaData{"filename": "cat.png", "filetype": "image/png"}

		up, id := b.create(t, ctx, handler.FileInfo{Size: int64(len(elf)), MetaData: md})
		if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(elf)); err != nil {
			t.Fatal(err)
		}
		err := b.get(t, ctx, id).FinishUpload(ctx)
		var herr handler.Error
		if !errors.As(err, &herr) || herr.HTTPResponse.StatusCode != 415 || herr.ErrorCode != "ERR_TYPE_NOT_ALLOWED" {
			t.Fatalf("finishing an executable declared image/png: %v; want 415 ERR_TYPE_NOT_ALLOWED", err)
		}
		if s := b.session(t, id); s.State != catalog.StateRejected {
			t.Fatalf("session = %s; want rejected", s.State)
		}
		if entries, _ := os.ReadDir(b.dir); len(entries) != 0 {
			t.Fatalf("rejected upload left %d files behind", len(entries))
		}

		up, id = b.create(t, ctx, handler.FileInfo{Size: int64(len(png)), MetaData: md})
		if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(png)); err != nil {
			t.Fatal(err)
		}
		if err := b.get(t, ctx, id).FinishUpload(ctx); err != nil {
			t.Fatalf("finishing a PNG: %v", err)
		}
		s := b.session(t, id)
		if s.State != catalog.StateComplete || s.ContentType != "image/png" {
			t.Fatalf("PNG session = %s, content type %q; want complete, image/png", s.State, s.ContentType)
		}
		blob, err := b.catalog.GetBlob(ctx, s.BlobSHA256)
		if err != nil || blob.ContentType != "image/png" {
			t.Fatalf("blob = %+v, %v; want content type image/png", blob, err)
		}
	})
}
