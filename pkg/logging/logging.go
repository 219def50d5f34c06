// Package logging builds intake's log/slog logger and bridges tusd, which
// logs through golang.org/x/exp/slog, onto the same handler so that every
// line has one format and one destination.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	xslog "golang.org/x/exp/slog"
)

// New returns a logger writing format ("text" or "json") at level
// ("debug", "info", "warn", "error") to w.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid log format %q: want text or json", format)
	}
}

// Tusd returns an x/exp/slog logger for tusd that writes through h. tusd
// logs several lines per request at info (RequestIncoming, ChunkWriteStart,
// ResponseOutgoing, ...); they are demoted to debug, because intake writes
// its own one-line access log. tusd's warnings and errors keep their level.
func Tusd(h slog.Handler) *xslog.Logger {
	return xslog.New(bridge{h: h})
}

type bridge struct{ h slog.Handler }

func level(l xslog.Level) slog.Level {
	if l <= xslog.LevelInfo {
		return slog.LevelDebug
	}
	return slog.Level(l)
}

func (b bridge) Enabled(ctx context.Context, l xslog.Level) bool {
	return b.h.Enabled(ctx, level(l))
}

func (b bridge) Handle(ctx context.Context, r xslog.Record) error {
	out := slog.NewRecord(r.Time, level(r.Level), r.Message, r.PC)
	r.Attrs(func(a xslog.Attr) bool {
		out.AddAttrs(attr(a))
		return true
	})
	return b.h.Handle(ctx, out)
}

func (b bridge) WithAttrs(as []xslog.Attr) xslog.Handler {
	conv := make([]slog.Attr, len(as))
	for i, a := range as {
		conv[i] = attr(a)
	}
	return bridge{h: b.h.WithAttrs(conv)}
}

func (b bridge) WithGroup(name string) xslog.Handler {
	return bridge{h: b.h.WithGroup(name)}
}

func attr(a xslog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == xslog.KindGroup {
		group := v.Group()
		as := make([]any, len(group))
		for i, g := range group {
			as[i] = attr(g)
		}
		return slog.Group(a.Key, as...)
	}
	return slog.Any(a.Key, v.Any())
}
