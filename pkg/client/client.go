// Package client is a small tus 1.0 client: create, patch, head, delete and
// a resumable Upload loop. intake's tests and benchmarks use it, and it is
// what a Go program needs to send a file to intake.
//
// It speaks only the protocol: it never assumes anything intake-specific
// beyond the JSON error body, which it surfaces in errors when present.
package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Client talks to one tus endpoint.
type Client struct {
	// Endpoint is the creation URL, e.g. http://127.0.0.1:8080/files/.
	Endpoint string
	// HTTP is the client used for requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Header is added to every request (e.g. Authorization).
	Header http.Header
}

// StatusError is a response with an unexpected status.
type StatusError struct {
	Method string
	Status int
	Code   string // intake's error code, when the body had one
	Body   string
}

func (e *StatusError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("tus %s: status %d (%s): %s", e.Method, e.Status, e.Code, e.Body)
	}
	return fmt.Sprintf("tus %s: status %d: %s", e.Method, e.Status, e.Body)
}

// Upload describes an upload to create.
type Upload struct {
	Size     int64 // ignored when DeferLength
	Defer    bool  // Upload-Defer-Length: 1
	Metadata map[string]string
	Partial  bool     // Upload-Concat: partial
	Final    []string // Upload-Concat: final;<urls>
}

// Info is what HEAD reports.
type Info struct {
	Offset   int64
	Size     int64 // -1 when deferred
	Metadata string
	Concat   string
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	return req, nil
}

// EncodeMetadata renders an Upload-Metadata header, keys sorted.
func EncodeMetadata(md map[string]string) string {
	parts := make([]string, 0, len(md))
	for _, k := range slices.Sorted(maps.Keys(md)) {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(md[k])))
	}
	return strings.Join(parts, ",")
}

// Create creates an upload and returns its absolute URL. With body non-nil
// it uses creation-with-upload and also returns the new offset.
func (c *Client) Create(ctx context.Context, up Upload, body io.Reader, bodyLen int64) (string, int64, error) {
	req, err := c.newRequest(ctx, http.MethodPost, c.Endpoint, body)
	if err != nil {
		return "", 0, err
	}
	switch {
	case len(up.Final) > 0:
		req.Header.Set("Upload-Concat", "final;"+strings.Join(up.Final, " "))
	case up.Defer:
		req.Header.Set("Upload-Defer-Length", "1")
	default:
		req.Header.Set("Upload-Length", strconv.FormatInt(up.Size, 10))
	}
	if up.Partial {
		req.Header.Set("Upload-Concat", "partial")
	}
	if len(up.Metadata) > 0 {
		req.Header.Set("Upload-Metadata", EncodeMetadata(up.Metadata))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.ContentLength = bodyLen
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return "", 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return "", 0, statusError(resp)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", 0, fmt.Errorf("tus POST: bad Location: %w", err)
	}
	var off int64
	if h := resp.Header.Get("Upload-Offset"); h != "" {
		if off, err = strconv.ParseInt(h, 10, 64); err != nil {
			return "", 0, fmt.Errorf("tus POST: bad Upload-Offset %q", h)
		}
	}
	return loc.String(), off, nil
}

// Patch sends body at offset and returns the server's new offset. length
// is the body's length, or -1 to send it chunked. declare, when >= 0, sends
// Upload-Length with the request (deferred-length uploads).
func (c *Client) Patch(ctx context.Context, u string, offset int64, body io.Reader, length, declare int64) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodPatch, u, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	if declare >= 0 {
		req.Header.Set("Upload-Length", strconv.FormatInt(declare, 10))
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent {
		return 0, statusError(resp)
	}
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("tus PATCH: bad Upload-Offset %q", resp.Header.Get("Upload-Offset"))
	}
	return off, nil
}

// Head returns the upload's offset and size.
func (c *Client) Head(ctx context.Context, u string) (Info, error) {
	req, err := c.newRequest(ctx, http.MethodHead, u, nil)
	if err != nil {
		return Info{}, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return Info{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return Info{}, statusError(resp)
	}
	info := Info{Size: -1, Metadata: resp.Header.Get("Upload-Metadata"), Concat: resp.Header.Get("Upload-Concat")}
	if info.Offset, err = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64); err != nil {
		return Info{}, fmt.Errorf("tus HEAD: bad Upload-Offset %q", resp.Header.Get("Upload-Offset"))
	}
	if h := resp.Header.Get("Upload-Length"); h != "" {
		if info.Size, err = strconv.ParseInt(h, 10, 64); err != nil {
			return Info{}, fmt.Errorf("tus HEAD: bad Upload-Length %q", h)
		}
	}
	return info, nil
}

// Delete terminates an upload.
func (c *Client) Delete(ctx context.Context, u string) error {
	req, err := c.newRequest(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent {
		return statusError(resp)
	}
	return nil
}

// Upload sends size bytes from src (an io.ReaderAt, so a chunk can be sent
// again) in PATCHes of chunk bytes (0: one PATCH), resuming from the
// server's offset after a failed request up to retries times. It returns
// the upload URL.
func (c *Client) Upload(ctx context.Context, src io.ReaderAt, size, chunk int64, md map[string]string, retries int) (string, error) {
	u, _, err := c.Create(ctx, Upload{Size: size, Metadata: md}, nil, 0)
	if err != nil {
		return "", err
	}
	return u, c.Resume(ctx, u, src, size, chunk, retries)
}

// Resume continues an upload from the offset the server reports.
func (c *Client) Resume(ctx context.Context, u string, src io.ReaderAt, size, chunk int64, retries int) error {
	if chunk <= 0 {
		chunk = size
	}
	info, err := c.Head(ctx, u)
	if err != nil {
		return err
	}
	off := info.Offset
	for off < size {
		n := min(chunk, size-off)
		next, err := c.Patch(ctx, u, off, io.NewSectionReader(src, off, n), n, -1)
		if err != nil {
			if retries <= 0 || ctx.Err() != nil {
				return err
			}
			retries--
			if info, err = c.Head(ctx, u); err != nil {
				return err
			}
			off = info.Offset
			continue
		}
		off = next
	}
	return nil
}

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	e := &StatusError{Method: resp.Request.Method, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Body = body.Error.Code, body.Error.Message
	}
	return e
}

// IsStatus reports whether err is a StatusError with the given status.
func IsStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}
