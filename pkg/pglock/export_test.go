package pglock

// Key is the advisory lock key l uses for id.
func (l *Locker) Key(id string) int64 { return l.key(id) }
