// Package jsonerr writes intake's one error shape:
//
//	{"error":{"code":"mismatched_offset","message":"..."}}
//
// Every 4xx and 5xx that intake sends, whether it comes from the tus handler
// or from intake's own endpoints, goes through Write so that clients parse
// one format. It must never put internal detail (DSNs, keys, paths, driver
// messages) into a message: callers pass human text, and 5xx messages should
// be generic.
package jsonerr

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Body is the JSON document of an error response.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inner object of Body.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Encode returns the JSON bytes of an error body, newline-terminated.
func Encode(code, message string) []byte {
	b, err := json.Marshal(Body{Error: Detail{Code: code, Message: message}})
	if err != nil { // unreachable: two strings always marshal
		return []byte(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
	}
	return append(b, '\n')
}

// Write sends status with an error body. For HEAD requests only the headers
// are sent, as HTTP requires.
func Write(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	body := Encode(code, message)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
