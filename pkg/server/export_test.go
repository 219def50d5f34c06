package server

import (
	"context"
	"testing"
)

// HoldLock takes id's upload lock as a request that never yields would,
// until the returned function is called.
func (s *Server) HoldLock(t testing.TB, id string) (unlock func()) {
	t.Helper()
	lk, err := s.locker.NewLock(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Lock(context.Background(), func() {}); err != nil {
		t.Fatalf("holding %s: %v", id, err)
	}
	return func() { _ = lk.Unlock() }
}
