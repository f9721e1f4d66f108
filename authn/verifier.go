package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/tenantgraph/tenantgraph/graphname"
)

// Verifier verifies bearer tokens (JWS-signed JWTs) and turns them into
// Principals. It is safe for concurrent use. Close it to stop the
// background key refreshes.
type Verifier struct {
	issuers    map[string]*issuer
	order      []*issuer
	maxSize    int
	leeway     time.Duration
	now        func() time.Time
	tenants    TenantValidator
	revocation Revocation
	cache      *tokenCache
	hooks      Hooks
	client     *http.Client  // key fetching
	ownClient  bool          // client's transport is ours to close
	revokes    atomic.Uint64 // bumped by Revoke, guards cache inserts
	closed     atomic.Bool
	closeOnce  sync.Once
}

// issuer is the compiled form of an Issuer.
type issuer struct {
	name           string
	audiences      []string
	algs           []*algorithm
	typ            string
	tenantClaim    string
	tenantPath     []string
	scopeClaims    []string
	requiredScopes []string
	allowedTenants map[string]struct{}
	tenantAllowed  func(string) bool
	maxLifetime    time.Duration
	requireJTI     bool

	static        *keySet
	jwksOpts      JWKSOptions
	jwksURL       *url.URL
	discoveryBase *url.URL
	remote        *remoteKeys
}

// New checks cfg and returns a Verifier. Remote key sets start loading in
// the background at once; call WaitReady to wait for them. Errors wrap
// ErrInvalidConfig.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, configErr("no Issuers")
	}
	v := &Verifier{
		issuers:    make(map[string]*issuer, len(cfg.Issuers)),
		maxSize:    cfg.MaxTokenSize,
		leeway:     cfg.Leeway,
		now:        cfg.Now,
		tenants:    cfg.TenantValidator,
		revocation: cfg.Revocation,
		hooks:      cfg.Hooks,
	}
	switch {
	case v.maxSize == 0:
		v.maxSize = DefaultMaxTokenSize
	case v.maxSize < 64 || v.maxSize > MaxMaxTokenSize:
		return nil, configErr("MaxTokenSize %d out of range [64, %d]", v.maxSize, MaxMaxTokenSize)
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway == NoLeeway:
		v.leeway = 0
	case v.leeway < 0 || v.leeway > MaxLeeway:
		return nil, configErr("Leeway %v out of range [0, %v]", v.leeway, MaxLeeway)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.tenants == nil {
		v.tenants = graphname.Default()
	}
	if c := cfg.Cache; c != nil {
		tc := &tokenCache{max: c.MaxEntries, ttl: c.TTL, m: map[[32]byte]*cacheEntry{}}
		if tc.max == 0 {
			tc.max = DefaultCacheEntries
		}
		if tc.ttl == 0 {
			tc.ttl = DefaultCacheTTL
		}
		if tc.max < 0 || tc.ttl < 0 || tc.ttl > MaxCacheTTL {
			return nil, configErr("Cache: MaxEntries must be positive and TTL in (0, %v]", MaxCacheTTL)
		}
		v.cache = tc
	}
	for i := range cfg.Issuers {
		in, err := cfg.Issuers[i].compile()
		if err != nil {
			return nil, err
		}
		if v.issuers[in.name] != nil {
			return nil, configErr("issuer %q configured twice", in.name)
		}
		v.issuers[in.name] = in
		v.order = append(v.order, in)
	}
	v.client, v.ownClient = newFetchClient(cfg.Transport), cfg.Transport == nil
	for _, in := range v.order {
		if in.static == nil {
			in.remote = newRemoteKeys(in, v.client, v.now, v.hooks.KeysFetched)
		}
	}
	for _, in := range v.order {
		if in.remote != nil {
			in.remote.start()
		}
	}
	return v, nil
}

// Close stops background key refreshes and waits for them to end. Tokens
// are refused with ErrClosed afterwards. Close is idempotent.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		for _, in := range v.order {
			if in.remote != nil {
				in.remote.close()
			}
		}
		if v.ownClient {
			v.client.CloseIdleConnections()
		}
	})
	return nil
}

// WaitReady waits until every remote issuer's key set has been fetched
// once, or ctx ends. Use it at start-up to refuse traffic until keys are
// there.
func (v *Verifier) WaitReady(ctx context.Context) error {
	for _, in := range v.order {
		if in.remote == nil {
			continue
		}
		select {
		case <-in.remote.ready:
		case <-ctx.Done():
			return fmt.Errorf("authn: keys of issuer %s not fetched: %w", in.name, errors.Join(ctx.Err(), v.Ready()))
		}
	}
	return nil
}

// Ready returns nil when tokens of every issuer can be verified now, and
// otherwise an error naming the issuers whose keys are missing or stale
// (wrapping ErrKeysStale).
func (v *Verifier) Ready() error {
	if v.closed.Load() {
		return ErrClosed
	}
	var errs []error
	now := v.now()
	for _, in := range v.order {
		if in.remote == nil {
			continue
		}
		if h := in.remote.health(now); h.Stale {
			msg := "never fetched"
			if !h.LastSuccess.IsZero() {
				msg = "last fetched " + h.LastSuccess.UTC().Format(time.RFC3339)
			}
			if h.LastError != "" {
				msg += "; last error: " + h.LastError
			}
			errs = append(errs, fmt.Errorf("%w: issuer %s: %s", ErrKeysStale, in.name, msg))
		}
	}
	return errors.Join(errs...)
}

// Health reports the key state of every issuer, in configuration order.
func (v *Verifier) Health() []IssuerHealth {
	now := v.now()
	out := make([]IssuerHealth, 0, len(v.order))
	for _, in := range v.order {
		if in.remote != nil {
			out = append(out, in.remote.health(now))
			continue
		}
		out = append(out, IssuerHealth{Issuer: in.name, Keys: len(in.static.all)})
	}
	return out
}

// Leeway returns the clock-skew tolerance applied to exp, nbf and iat.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// Issuers returns the configured issuer names, in configuration order.
func (v *Verifier) Issuers() []string {
	out := make([]string, len(v.order))
	for i, in := range v.order {
		out[i] = in.name
	}
	return out
}

// Verify checks token and returns its Principal. A refused token yields a
// *VerifyError that wraps the reason sentinel (ErrExpired, ...) and
// auth.ErrInvalidToken.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	p, _, err := v.verify(ctx, token, false)
	return p, err
}

// Revoke revokes the token with the given jti until the given time (its
// expiry) in the configured Revocation store and drops it from this
// Verifier's cache. Other Verifiers sharing the store stop accepting it on
// their next uncached verification (within CacheConfig.TTL).
func (v *Verifier) Revoke(ctx context.Context, jti string, until time.Time) error {
	if v.revocation == nil {
		return errors.New("authn: Revoke: no Revocation store configured")
	}
	if jti == "" {
		return errors.New("authn: Revoke: empty jti")
	}
	v.revokes.Add(1)
	err := v.revocation.Revoke(ctx, jti, until)
	if v.cache != nil {
		v.cache.dropJTI(jti)
	}
	if err != nil {
		return fmt.Errorf("authn: revoke: %w", err)
	}
	return nil
}

func (v *Verifier) verify(ctx context.Context, token string, wantInfo bool) (*Principal, *auth.TokenInfo, error) {
	if v.closed.Load() {
		return nil, nil, v.report("", false, fail(ErrClosed, "", ""))
	}
	if len(token) > v.maxSize {
		return nil, nil, v.report("", false, fail(ErrTooLarge, "", fmt.Sprintf("longer than %d bytes", v.maxSize)))
	}
	now := v.now()
	var key [32]byte
	if v.cache != nil {
		key = cacheKey(token)
		if e := v.cache.get(key, now); e != nil && e.valid(now) {
			v.report(e.p.Issuer, true, nil)
			return e.p, e.ti, nil
		}
	}
	epoch := v.revokes.Load()
	p, in, set, err := v.verifyToken(ctx, token, now)
	name := ""
	if in != nil {
		name = in.name
	}
	if err != nil {
		return nil, nil, v.report(name, false, err)
	}
	var ti *auth.TokenInfo
	if wantInfo || v.cache != nil {
		ti = p.TokenInfo()
	}
	if v.cache != nil {
		until := now.Add(v.cache.ttl)
		if p.Expiry.Before(until) {
			until = p.Expiry
		}
		if until.After(now) && v.revokes.Load() == epoch {
			v.cache.put(key, &cacheEntry{p: p, ti: ti, in: in, set: set, until: until}, now)
		}
	}
	v.report(name, false, nil)
	return p, ti, nil
}

func (v *Verifier) report(iss string, cached bool, err error) error {
	if h := v.hooks.Verified; h != nil {
		h(VerifyEvent{Issuer: iss, Reason: Reason(err), Cached: cached, Err: err})
	}
	if err == nil {
		return nil
	}
	return err
}

// header holds the JOSE header members this package reads. Other members
// (jku, x5u, jwk, x5c, ...) are ignored: keys come from configuration only.
type header struct {
	Alg, Kid, Typ string
}

// optString returns m[k] if it is a string or absent ("", true).
func optString(m map[string]any, k string) (string, bool) {
	v, present := m[k]
	if !present {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

var b64 = base64.RawURLEncoding.Strict()

// verifyToken runs every check in order. It returns the issuer once known.
func (v *Verifier) verifyToken(ctx context.Context, token string, now time.Time) (*Principal, *issuer, *keySet, error) {
	t, err := v.parse(token)
	if err != nil {
		return nil, t.in, nil, err
	}
	k, set, err := t.in.key(ctx, t.h.Kid, t.alg)
	if err != nil {
		return nil, t.in, nil, err
	}
	if !t.alg.verify(k, t.input, t.sig) {
		return nil, t.in, nil, fail(ErrBadSignature, t.in.name, "")
	}
	// Claims, now authenticated.
	p, err := v.checkClaims(ctx, t.in, t.claims, now)
	if err != nil {
		return nil, t.in, nil, err
	}
	return p, t.in, set, nil
}

// jws is a token split and decoded, its issuer chosen, not yet verified.
type jws struct {
	h      header
	alg    *algorithm
	in     *issuer
	claims map[string]any
	input  []byte // signing input
	sig    []byte
}

// parse runs the checks that come before the key: shape, header, issuer
// (from the unverified iss), algorithm allow-list and typ.
func (v *Verifier) parse(token string) (t jws, _ error) {
	// Shape: three base64url segments; five is an encrypted JWE.
	switch n := strings.Count(token, "."); n {
	case 2:
	case 4:
		return t, fail(ErrMalformed, "", "encrypted tokens (JWE) are not accepted")
	default:
		return t, fail(ErrMalformed, "", "a JWS has three dot-separated parts")
	}
	d1 := strings.IndexByte(token, '.')
	d2 := d1 + 1 + strings.IndexByte(token[d1+1:], '.')
	if d1 == 0 || d2 == d1+1 {
		return t, fail(ErrMalformed, "", "empty header or payload")
	}
	// One buffer: a copy of the token (whose prefix is the signing input),
	// then the decoded header and payload, then the signature.
	buf := make([]byte, len(token), len(token)+b64.DecodedLen(len(token)))
	copy(buf, token)
	t.input = buf[:d2]
	dec := buf[len(token):]
	nh, err := b64.Decode(dec[:cap(dec)], buf[:d1])
	if err != nil {
		return t, fail(ErrMalformed, "", "header is not base64url")
	}
	np, err := b64.Decode(dec[nh:cap(dec)], buf[d1+1:d2])
	if err != nil {
		return t, fail(ErrMalformed, "", "payload is not base64url")
	}
	ns, err := b64.Decode(dec[nh+np:cap(dec)], buf[d2+1:])
	if err != nil {
		return t, fail(ErrMalformed, "", "signature is not base64url")
	}
	t.sig = dec[nh+np : nh+np+ns]
	// One string for both JSON texts: decoded strings are slices of it.
	text := string(dec[:nh+np])

	hdr, err := parseJSONObject(text[:nh])
	if err != nil {
		return t, fail(ErrMalformed, "", "header is not a JSON object")
	}
	var ok1, ok2, ok3 bool
	t.h.Alg, ok1 = hdr["alg"].(string)
	t.h.Kid, ok2 = optString(hdr, "kid")
	t.h.Typ, ok3 = optString(hdr, "typ")
	if !ok1 || !ok2 || !ok3 {
		return t, fail(ErrMalformed, "", "header alg, kid or typ is not a string")
	}
	if t.alg = algorithms[t.h.Alg]; t.alg == nil {
		return t, fail(ErrUnsupportedAlg, "", fmt.Sprintf("alg %.16q", t.h.Alg))
	}
	if _, crit := hdr["crit"]; crit {
		return t, fail(ErrCritHeader, "", "")
	}
	if t.claims, err = parseJSONObject(text[nh:]); err != nil {
		return t, fail(ErrMalformed, "", "payload is not a JSON object")
	}

	// Issuer, from the unverified claims: it decides which keys may be
	// used. Unknown issuers are refused here, before any network call.
	issName, _ := t.claims["iss"].(string)
	if t.in = v.issuers[issName]; t.in == nil {
		if issName == "" {
			return t, fail(ErrUnknownIssuer, "", "the token has no iss")
		}
		return t, fail(ErrUnknownIssuer, "", "")
	}
	if !slices.Contains(t.in.algs, t.alg) {
		return t, fail(ErrUnsupportedAlg, t.in.name, "alg "+t.alg.name+" is not allowed for this issuer")
	}
	if t.in.typ != "" && normalizeTyp(t.h.Typ) != t.in.typ {
		return t, fail(ErrWrongType, t.in.name, "typ must be "+t.in.typ)
	}
	return t, nil
}

// key finds the key for kid and alg among this issuer's keys only.
func (in *issuer) key(ctx context.Context, kid string, alg *algorithm) (*verifyKey, *keySet, error) {
	var (
		k   *verifyKey
		set *keySet
		err error
	)
	if in.static != nil {
		set = in.static
		k, err = set.find(kid, alg)
		if err == errNoKey {
			err = fail(ErrUnknownKey, in.name, "no key of this issuer has the token's kid")
		}
	} else {
		k, set, err = in.remote.key(ctx, kid, alg)
	}
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) && ve.Issuer == "" {
			ve.Issuer = in.name
		}
		return nil, nil, err
	}
	return k, set, nil
}

func normalizeTyp(t string) string {
	if len(t) > 12 && strings.EqualFold(t[:12], "application/") {
		t = t[12:]
	}
	return strings.ToLower(t)
}

// numericDate converts a JSON NumericDate.
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || f < 0 || f > 1e11 || math.IsNaN(f) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

func (v *Verifier) checkClaims(ctx context.Context, in *issuer, claims map[string]any, now time.Time) (*Principal, error) {
	iss := in.name
	p := &Principal{Issuer: iss, Claims: claims}

	// Time.
	rawExp, ok := claims["exp"]
	if !ok || rawExp == nil {
		return nil, fail(ErrMissingExp, iss, "")
	}
	if p.Expiry, ok = numericDate(rawExp); !ok {
		return nil, fail(ErrMalformed, iss, "exp is not a valid NumericDate")
	}
	if !now.Before(p.Expiry.Add(v.leeway)) {
		return nil, fail(ErrExpired, iss, "")
	}
	if raw, present := claims["nbf"]; present && raw != nil {
		nbf, ok := numericDate(raw)
		if !ok {
			return nil, fail(ErrMalformed, iss, "nbf is not a valid NumericDate")
		}
		if now.Add(v.leeway).Before(nbf) {
			return nil, fail(ErrNotYetValid, iss, "")
		}
	}
	if raw, present := claims["iat"]; present && raw != nil {
		if p.IssuedAt, ok = numericDate(raw); !ok {
			return nil, fail(ErrMalformed, iss, "iat is not a valid NumericDate")
		}
		if p.IssuedAt.After(now.Add(v.leeway)) {
			return nil, fail(ErrIssuedInFuture, iss, "")
		}
	}
	if in.maxLifetime > 0 {
		if !p.IssuedAt.IsZero() && p.Expiry.Sub(p.IssuedAt) > in.maxLifetime ||
			p.IssuedAt.IsZero() && p.Expiry.Sub(now) > in.maxLifetime+v.leeway {
			return nil, fail(ErrLifetimeTooLong, iss, "longer than "+in.maxLifetime.String())
		}
	}

	// Audience.
	if err := in.checkAudience(claims["aud"]); err != nil {
		return nil, err
	}

	// Subject.
	switch sub := claims["sub"].(type) {
	case string:
		if sub == "" {
			return nil, fail(ErrMissingSubject, iss, "")
		}
		p.Subject = sub
	case nil:
		return nil, fail(ErrMissingSubject, iss, "")
	default:
		return nil, fail(ErrMalformed, iss, "sub is not a string")
	}

	// Tenant.
	raw, ok := in.tenantValue(claims)
	if !ok || raw == nil {
		return nil, fail(ErrMissingTenant, iss, "no claim "+in.tenantClaim)
	}
	tenant, ok := raw.(string)
	if !ok {
		return nil, fail(ErrInvalidTenant, iss, "claim "+in.tenantClaim+" is not a string")
	}
	if tenant == "" {
		return nil, fail(ErrMissingTenant, iss, "claim "+in.tenantClaim+" is empty")
	}
	if err := v.tenants.ValidateTenant(tenant); err != nil {
		return nil, &VerifyError{Reason: ErrInvalidTenant, Issuer: iss, Detail: err.Error(), Cause: err}
	}
	if in.allowedTenants != nil {
		if _, ok := in.allowedTenants[tenant]; !ok {
			return nil, fail(ErrTenantNotAllowed, iss, "")
		}
	}
	if in.tenantAllowed != nil && !in.tenantAllowed(tenant) {
		return nil, fail(ErrTenantNotAllowed, iss, "")
	}
	p.Tenant = tenant

	// Scopes.
	scopes, ok := in.scopes(claims)
	if !ok {
		return nil, fail(ErrMalformed, iss, "scope claim is neither a string nor an array of strings")
	}
	p.Scopes = scopes
	for _, s := range in.requiredScopes {
		if !slices.Contains(scopes, s) {
			return nil, &VerifyError{Reason: ErrInsufficientScope, Issuer: iss, Detail: "requires " + strings.Join(in.requiredScopes, " "), RequiredScopes: in.requiredScopes}
		}
	}

	// Revocation.
	switch jti := claims["jti"].(type) {
	case string:
		p.JTI = jti
	case nil:
	default:
		return nil, fail(ErrMalformed, iss, "jti is not a string")
	}
	if p.JTI == "" && in.requireJTI {
		return nil, fail(ErrMissingJTI, iss, "")
	}
	if v.revocation != nil && p.JTI != "" {
		revoked, err := v.revocation.Revoked(ctx, p.JTI)
		if err != nil {
			return nil, &VerifyError{Reason: ErrRevocationUnavailable, Issuer: iss, Cause: err}
		}
		if revoked {
			return nil, fail(ErrRevoked, iss, "")
		}
	}
	return p, nil
}

func (in *issuer) checkAudience(raw any) error {
	switch aud := raw.(type) {
	case string:
		if slices.Contains(in.audiences, aud) {
			return nil
		}
	case []any:
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return fail(ErrMalformed, in.name, "aud array holds a non-string")
			}
			if slices.Contains(in.audiences, s) {
				return nil
			}
		}
	case nil:
		return fail(ErrWrongAudience, in.name, "the token has no aud")
	default:
		return fail(ErrMalformed, in.name, "aud is neither a string nor an array of strings")
	}
	return fail(ErrWrongAudience, in.name, "")
}

func (in *issuer) tenantValue(claims map[string]any) (any, bool) {
	if v, ok := claims[in.tenantClaim]; ok || in.tenantPath == nil {
		return v, ok
	}
	var cur any = claims
	for _, name := range in.tenantPath {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[name]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// scopes collects the scopes of all scope claims, deduplicated.
func (in *issuer) scopes(claims map[string]any) ([]string, bool) {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, name := range in.scopeClaims {
		switch v := claims[name].(type) {
		case nil:
		case string:
			for len(v) > 0 {
				var s string
				s, v, _ = strings.Cut(v, " ")
				add(s)
			}
		case []any:
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, false
				}
				add(s)
			}
		default:
			return nil, false
		}
	}
	return out, true
}
