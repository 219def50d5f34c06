package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is what a verified token says about its bearer.
type Claims struct {
	// Owner is the token's sub: the identity uploads are bound to.
	Owner string
	// MaxSize, when > 0, caps the size of uploads this token creates.
	MaxSize int64
	// AllowedTypes, when set, lists the media types (patterns such as
	// "video/*") this token may declare as filetype.
	AllowedTypes []string
	// UploadID, when set, limits the token to that one upload: it may
	// resume, read or delete it, and create nothing.
	UploadID  string
	ExpiresAt time.Time
}

// tokenClaims is the JWT payload intake reads. max_size, allowed_types and
// upload_id are intake's own, optional claims.
type tokenClaims struct {
	jwt.RegisteredClaims
	MaxSize      int64    `json:"max_size,omitempty"`
	AllowedTypes []string `json:"allowed_types,omitempty"`
	UploadID     string   `json:"upload_id,omitempty"`
}

// VerifierOptions configure token verification.
type VerifierOptions struct {
	// Secret enables HS256 tokens.
	Secret []byte
	// PublicKeyFile names a PEM file with an RSA (RS256) or ECDSA P-256
	// (ES256) public key.
	PublicKeyFile string
	// Issuer and Audience, when set, must match iss and aud.
	Issuer, Audience string
	// Leeway tolerates clock skew on exp, nbf and iat; 0 means none
	// (--jwt-leeway 0 must mean none; config.Default gives 30s).
	Leeway time.Duration
	// Now is the clock (tests); defaults to time.Now.
	Now func() time.Time
}

// Verifier checks bearer tokens. It accepts exactly one algorithm, fixed by
// the key it was given, so a token can never choose how it is verified
// (no "none", no HS256 signed with an RSA public key as the secret).
type Verifier struct {
	key    any
	parser *jwt.Parser
}

// minSecret is the shortest HS256 secret accepted: 256 bits, as RFC 7518
// requires for HS256 keys.
const minSecret = 32

// NewVerifier builds a verifier from exactly one of Secret or PublicKeyFile.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	var (
		key any
		alg string
	)
	switch {
	case len(opts.Secret) > 0 && opts.PublicKeyFile != "":
		return nil, errors.New("give either a JWT secret (HS256) or a public key file (RS256/ES256), not both")
	case len(opts.Secret) > 0:
		if len(opts.Secret) < minSecret {
			return nil, fmt.Errorf("the JWT secret has %d bytes; HS256 needs at least %d", len(opts.Secret), minSecret)
		}
		key, alg = opts.Secret, jwt.SigningMethodHS256.Alg()
	case opts.PublicKeyFile != "":
		k, a, err := loadPublicKey(opts.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		key, alg = k, a
	default:
		return nil, errors.New("JWT authentication needs a secret (HS256) or a public key file (RS256/ES256)")
	}
	parserOpts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if opts.Issuer != "" {
		parserOpts = append(parserOpts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		parserOpts = append(parserOpts, jwt.WithAudience(opts.Audience))
	}
	if opts.Now != nil {
		parserOpts = append(parserOpts, jwt.WithTimeFunc(opts.Now))
	}
	return &Verifier{key: key, parser: jwt.NewParser(parserOpts...)}, nil
}

func loadPublicKey(path string) (any, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading JWT public key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", fmt.Errorf("JWT public key file %s holds no PEM block", path)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("JWT public key file %s holds a %q block; want PUBLIC KEY", path, block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parsing JWT public key: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("the RSA key has %d bits; RS256 needs at least 2048", k.N.BitLen())
		}
		return k, jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve.Params().Name != "P-256" {
			return nil, "", fmt.Errorf("the ECDSA key is on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, jwt.SigningMethodES256.Alg(), nil
	default:
		return nil, "", fmt.Errorf("unsupported JWT public key type %T; want RSA or ECDSA P-256", pub)
	}
}

// ErrInvalidToken wraps every reason a token is refused; the reason is safe
// to show to the bearer (it never contains the token or the key).
var ErrInvalidToken = errors.New("invalid token")

// Verify checks a compact JWT and returns its claims.
func (v *Verifier) Verify(token string) (Claims, error) {
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	if tc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: the token has no sub claim", ErrInvalidToken)
	}
	if tc.MaxSize < 0 {
		return Claims{}, fmt.Errorf("%w: max_size is negative", ErrInvalidToken)
	}
	c := Claims{Owner: tc.Subject, MaxSize: tc.MaxSize, AllowedTypes: tc.AllowedTypes, UploadID: tc.UploadID}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
	}
	return c, nil
}

// reason names why golang-jwt refused a token, in words for the client.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp, or iss or aud when they are configured)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token's audience is not accepted"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's signature or algorithm is not accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	default:
		return "the token cannot be verified"
	}
}
