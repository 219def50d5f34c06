package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/intake-dev/intake/pkg/auth"
)

// secret is the HS256 key of the verifiers under test; otherSecret signs
// tokens that must not verify.
var (
	secret      = []byte("0123456789abcdef0123456789abcdef-intake")
	otherSecret = []byte("fedcba9876543210fedcba9876543210-other")
)

// now is the injected clock: whole seconds, as JWT dates are.
var now = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// testKeys are generated once per test binary: RSA generation is slow
// under the race detector.
type testKeys struct {
	rsa, otherRSA *rsa.PrivateKey
	ec, otherEC   *ecdsa.PrivateKey
}

var keys = sync.OnceValue(func() testKeys {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	genEC := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	return testKeys{rsa: gen(), otherRSA: gen(), ec: genEC(), otherEC: genEC()}
})

// pemPublic encodes pub as a PKIX "PUBLIC KEY" PEM block, as openssl
// writes it.
func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeFile writes data to a new file in t's temporary directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sign mints a token; claims are taken as given, so a case can leave out
// or break any of them.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("signing a %s token: %v", method.Alg(), err)
	}
	return s
}

// valid returns claims that pass every check at now, with extra merged in
// (a nil value deletes the claim).
func valid(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// verifiers are one per algorithm, all on the injected clock with 30s of
// leeway; "hs-aud" also requires an issuer and an audience.
func verifiers(t *testing.T) map[string]*auth.Verifier {
	t.Helper()
	k := keys()
	clock := func() time.Time { return now }
	mk := func(o auth.VerifierOptions) *auth.Verifier {
		o.Now, o.Leeway = clock, 30*time.Second
		v, err := auth.NewVerifier(o)
		if err != nil {
			t.Fatalf("NewVerifier: %v", err)
		}
		return v
	}
	return map[string]*auth.Verifier{
		"hs":     mk(auth.VerifierOptions{Secret: secret}),
		"rs":     mk(auth.VerifierOptions{PublicKeyFile: writeFile(t, "rsa.pem", pemPublic(t, &k.rsa.PublicKey))}),
		"es":     mk(auth.VerifierOptions{PublicKeyFile: writeFile(t, "ec.pem", pemPublic(t, &k.ec.PublicKey))}),
		"hs-aud": mk(auth.VerifierOptions{Secret: secret, Issuer: "https://id.example.com", Audience: "intake"}),
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	k := keys()
	v := verifiers(t)
	rsaPEM := pemPublic(t, &k.rsa.PublicKey)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, c) }

	tests := []struct {
		name     string
		verifier string
		token    string
		want     auth.Claims
		wantErr  string // a part of the refusal's reason; "" means accepted
	}{
		{name: "HS256", verifier: "hs", token: hs(valid(nil)),
			want: auth.Claims{Owner: "alice", ExpiresAt: now.Add(time.Hour)}},
		{name: "RS256", verifier: "rs", token: sign(t, jwt.SigningMethodRS256, k.rsa, valid(nil)),
			want: auth.Claims{Owner: "alice", ExpiresAt: now.Add(time.Hour)}},
		{name: "ES256", verifier: "es", token: sign(t, jwt.SigningMethodES256, k.ec, valid(nil)),
			want: auth.Claims{Owner: "alice", ExpiresAt: now.Add(time.Hour)}},
		{name: "no iat", verifier: "hs", token: hs(valid(jwt.MapClaims{"iat": nil})),
			want: auth.Claims{Owner: "alice", ExpiresAt: now.Add(time.Hour)}},
		{name: "intake claims", verifier: "hs",
			token: hs(valid(jwt.MapClaims{"max_size": 1 << 20, "allowed_types": []string{"video/*", "image/png"}, "upload_id": "abc123"})),
			want: auth.Claims{Owner: "alice", MaxSize: 1 << 20, AllowedTypes: []string{"video/*", "image/png"},
				UploadID: "abc123", ExpiresAt: now.Add(time.Hour)}},

		// Time.
		{name: "expired", verifier: "hs", token: hs(valid(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})),
			wantErr: "expired"},
		{name: "expired within leeway", verifier: "hs", token: hs(valid(jwt.MapClaims{"exp": now.Add(-29 * time.Second).Unix()})),
			want: auth.Claims{Owner: "alice", ExpiresAt: now.Add(-29 * time.Second)}},
		{name: "expired at the end of the leeway", verifier: "hs", token: hs(valid(jwt.MapClaims{"exp": now.Add(-30 * time.Second).Unix()})),
			wantErr: "expired"},
		{name: "expired just beyond leeway", verifier: "hs", token: hs(valid(jwt.MapClaims{"exp": now.Add(-31 * time.Second).Unix()})),
			wantErr: "expired"},
		{name: "nbf in the future", verifier: "hs", token: hs(valid(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})),
			wantErr: "not valid yet"},
		{name: "nbf within leeway", verifier: "hs", token: hs(valid(jwt.MapClaims{"nbf": now.Add(29 * time.Second).Unix()})),
			want: auth.Claims{Owner: "alice", ExpiresAt: now.Add(time.Hour)}},
		{name: "nbf just beyond leeway", verifier: "hs", token: hs(valid(jwt.MapClaims{"nbf": now.Add(31 * time.Second).Unix()})),
			wantErr: "not valid yet"},
		{name: "iat in the future", verifier: "hs", token: hs(valid(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()})),
			wantErr: "not valid yet"},
		{name: "exp not a number", verifier: "hs", token: hs(valid(jwt.MapClaims{"exp": "tomorrow"})),
			wantErr: "malformed"},

		// Algorithms: the verifier's key decides, never the token.
		{name: "alg none", verifier: "hs",
			token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid(nil)), wantErr: "algorithm"},
		{name: "alg none against RS256", verifier: "rs",
			token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid(nil)), wantErr: "algorithm"},
		{name: "HS256 signed with the RSA public key", verifier: "rs",
			token: sign(t, jwt.SigningMethodHS256, rsaPEM, valid(nil)), wantErr: "algorithm"},
		{name: "HS256 signed with the RSA public key DER", verifier: "rs",
			token: sign(t, jwt.SigningMethodHS256, x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey), valid(nil)), wantErr: "algorithm"},
		{name: "RS256 against HS256", verifier: "hs",
			token: sign(t, jwt.SigningMethodRS256, k.rsa, valid(nil)), wantErr: "algorithm"},
		{name: "ES256 against RS256", verifier: "rs",
			token: sign(t, jwt.SigningMethodES256, k.ec, valid(nil)), wantErr: "algorithm"},
		{name: "RS256 against ES256", verifier: "es",
			token: sign(t, jwt.SigningMethodRS256, k.rsa, valid(nil)), wantErr: "algorithm"},
		{name: "HS512 with the right secret", verifier: "hs",
			token: sign(t, jwt.SigningMethodHS512, secret, valid(nil)), wantErr: "algorithm"},
		{name: "PS256 with the right key", verifier: "rs",
			token: sign(t, jwt.SigningMethodPS256, k.rsa, valid(nil)), wantErr: "algorithm"},

		// Keys.
		{name: "HS256 wrong secret", verifier: "hs",
			token: sign(t, jwt.SigningMethodHS256, otherSecret, valid(nil)), wantErr: "signature"},
		{name: "RS256 wrong key", verifier: "rs",
			token: sign(t, jwt.SigningMethodRS256, k.otherRSA, valid(nil)), wantErr: "signature"},
		{name: "ES256 wrong key", verifier: "es",
			token: sign(t, jwt.SigningMethodES256, k.otherEC, valid(nil)), wantErr: "signature"},
		{name: "payload swapped", verifier: "hs", token: swapPayload(t, hs(valid(nil)), hs(valid(jwt.MapClaims{"sub": "mallory"}))),
			wantErr: "signature"},

		// Claims.
		{name: "missing sub", verifier: "hs", token: hs(valid(jwt.MapClaims{"sub": nil})), wantErr: "sub"},
		{name: "empty sub", verifier: "hs", token: hs(valid(jwt.MapClaims{"sub": ""})), wantErr: "sub"},
		{name: "missing exp", verifier: "hs", token: hs(valid(jwt.MapClaims{"exp": nil})), wantErr: "exp"},
		{name: "negative max_size", verifier: "hs", token: hs(valid(jwt.MapClaims{"max_size": -1})), wantErr: "max_size"},
		{name: "max_size not a number", verifier: "hs", token: hs(valid(jwt.MapClaims{"max_size": "1GB"})), wantErr: "malformed"},

		// Issuer and audience, when configured.
		{name: "issuer and audience", verifier: "hs-aud",
			token: hs(valid(jwt.MapClaims{"iss": "https://id.example.com", "aud": []string{"other", "intake"}})),
			want:  auth.Claims{Owner: "alice", ExpiresAt: now.Add(time.Hour)}},
		{name: "wrong audience", verifier: "hs-aud",
			token: hs(valid(jwt.MapClaims{"iss": "https://id.example.com", "aud": "other"})), wantErr: "audience"},
		{name: "missing audience", verifier: "hs-aud",
			token: hs(valid(jwt.MapClaims{"iss": "https://id.example.com"})), wantErr: "aud"},
		{name: "wrong issuer", verifier: "hs-aud",
			token: hs(valid(jwt.MapClaims{"iss": "https://evil.example.com", "aud": "intake"})), wantErr: "issuer"},
		{name: "missing issuer", verifier: "hs-aud",
			token: hs(valid(jwt.MapClaims{"aud": "intake"})), wantErr: "iss"},
		{name: "audience not checked unless configured", verifier: "hs",
			token: hs(valid(jwt.MapClaims{"iss": "anyone", "aud": "anything"})),
			want:  auth.Claims{Owner: "alice", ExpiresAt: now.Add(time.Hour)}},

		// Not a JWT at all.
		{name: "empty", verifier: "hs", token: "", wantErr: "malformed"},
		{name: "garbage", verifier: "hs", token: "not-a-token", wantErr: "malformed"},
		{name: "two parts", verifier: "hs", token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0", wantErr: "malformed"},
		{name: "bad base64", verifier: "hs", token: "e30.!!!.e30", wantErr: "malformed"},
		{name: "payload not JSON", verifier: "hs", token: "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v[tt.verifier].Verify(tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v; want accepted", err)
				}
				if !sameClaims(got, tt.want) {
					t.Fatalf("claims = %+v; want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token with claims %+v; want refused (%s)", got, tt.wantErr)
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("error %q is not ErrInvalidToken", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q; want it to mention %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, auth.Claims{}) {
				t.Errorf("refused token returned claims %+v", got)
			}
			leaks(t, err.Error(), tt.token)
		})
	}
}

// sameClaims compares claims, times by instant (the verifier's are local).
func sameClaims(a, b auth.Claims) bool {
	ta, tb := a.ExpiresAt, b.ExpiresAt
	a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}
	return ta.Equal(tb) && reflect.DeepEqual(a, b)
}

// leaks fails when msg contains the token, a part of it, or a key.
func leaks(t *testing.T, msg, token string) {
	t.Helper()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error %q contains part of the token", msg)
		}
	}
	for _, s := range [][]byte{secret, otherSecret} {
		if strings.Contains(msg, string(s)) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}

// swapPayload returns a's header and signature around b's payload.
func swapPayload(t *testing.T, a, b string) string {
	t.Helper()
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if len(pa) != 3 || len(pb) != 3 {
		t.Fatal("not compact JWTs")
	}
	return pa[0] + "." + pb[1] + "." + pa[2]
}

// TestVerifyLeeway: the configured leeway is the one applied, including
// none at all.
func TestVerifyLeeway(t *testing.T) {
	t.Parallel()
	tok := func(exp time.Time) string {
		return sign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"exp": exp.Unix()}))
	}
	tests := []struct {
		leeway time.Duration
		exp    time.Time
		ok     bool
	}{
		{0, now.Add(time.Second), true},
		{0, now, false},
		{0, now.Add(-time.Second), false},
		{5 * time.Second, now.Add(-4 * time.Second), true},
		{5 * time.Second, now.Add(-6 * time.Second), false},
		{2 * time.Minute, now.Add(-time.Minute), true},
	}
	for _, tt := range tests {
		v, err := auth.NewVerifier(auth.VerifierOptions{Secret: secret, Leeway: tt.leeway, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(tok(tt.exp))
		if (err == nil) != tt.ok {
			t.Errorf("leeway %s, exp now%+ds: err = %v; want accepted %v", tt.leeway, tt.exp.Unix()-now.Unix(), err, tt.ok)
		}
	}
}

// TestVerifyPKCS1Key: an "RSA PUBLIC KEY" block (PKCS #1, as ssh-keygen
// and older openssl write it) works like a PKIX one.
func TestVerifyPKCS1Key(t *testing.T) {
	t.Parallel()
	k := keys()
	block := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	v, err := auth.NewVerifier(auth.VerifierOptions{PublicKeyFile: writeFile(t, "rsa.pem", block), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, valid(nil)))
	if err != nil || c.Owner != "alice" {
		t.Fatalf("Verify = %+v, %v; want owner alice", c, err)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	k := keys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := writeFile(t, "rsa.pem", pemPublic(t, &k.rsa.PublicKey))
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	shortSecret := []byte("only-thirty-one-bytes-long-abcd")

	tests := []struct {
		name    string
		opts    auth.VerifierOptions
		wantErr string
	}{
		{"short secret", auth.VerifierOptions{Secret: shortSecret}, "at least 32"},
		{"secret and key", auth.VerifierOptions{Secret: secret, PublicKeyFile: rsaFile}, "not both"},
		{"no key", auth.VerifierOptions{}, "needs a secret"},
		{"RSA 1024", auth.VerifierOptions{PublicKeyFile: writeFile(t, "small.pem", pemPublic(t, &small.PublicKey))}, "1024 bits"},
		{"ECDSA P-384", auth.VerifierOptions{PublicKeyFile: writeFile(t, "p384.pem", pemPublic(t, &p384.PublicKey))}, "P-384"},
		{"garbage PEM", auth.VerifierOptions{PublicKeyFile: writeFile(t, "junk.pem", []byte("this is not a key\n"))}, "no PEM block"},
		{"PEM with garbage inside", auth.VerifierOptions{PublicKeyFile: writeFile(t, "bad.pem",
			pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("not DER at all")}))}, "parsing"},
		{"private key", auth.VerifierOptions{PublicKeyFile: writeFile(t, "priv.pem",
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))}, "want PUBLIC KEY"},
		{"missing file", auth.VerifierOptions{PublicKeyFile: filepath.Join(t.TempDir(), "nope.pem")}, "reading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewVerifier(tt.opts)
			if err == nil {
				t.Fatalf("NewVerifier = %v; want an error mentioning %q", v, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q; want it to mention %q", err, tt.wantErr)
			}
			for _, s := range []string{string(secret), string(shortSecret)} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains the secret", err)
				}
			}
			if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), "not a key") || strings.Contains(err.Error(), "not DER") {
				t.Errorf("error %q contains the key file's contents", err)
			}
		})
	}
}
