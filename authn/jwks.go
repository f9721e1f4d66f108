package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// keySet is an immutable set of verification keys: an issuer's static keys
// or one fetched JWKS document. A refresh replaces the whole set.
type keySet struct {
	byKid    map[string][]*verifyKey
	all      []*verifyKey
	fetched  time.Time         // when fetched (remote sets only)
	rejected map[string]string // kid -> why the published key was skipped
}

func (s *keySet) add(k *verifyKey) {
	if s.byKid == nil {
		s.byKid = make(map[string][]*verifyKey)
	}
	s.all = append(s.all, k)
	if k.kid != "" {
		s.byKid[k.kid] = append(s.byKid[k.kid], k)
	}
}

// errNoKey is find's "no key has this kid" (a refresh may help).
var errNoKey = errors.New("no key with this kid")

// find picks the key for a token's kid and algorithm. Tokens without kid
// are accepted only when the set has a single key; a set's single key
// without kid matches any kid.
func (s *keySet) find(kid string, a *algorithm) (*verifyKey, error) {
	var cands []*verifyKey
	switch {
	case kid != "":
		cands = s.byKid[kid]
		if len(cands) == 0 && len(s.all) == 1 && s.all[0].kid == "" {
			cands = s.all
		}
	case len(s.all) == 1:
		cands = s.all
	case len(s.all) == 0:
		return nil, errNoKey
	default:
		return nil, fail(ErrUnknownKey, "", "the token has no kid and the issuer has several keys")
	}
	if len(cands) == 0 {
		return nil, errNoKey
	}
	for _, k := range cands {
		if k.fits(a) {
			return k, nil
		}
	}
	return nil, fail(ErrUnknownKey, "", "the key named by kid does not fit alg "+a.name)
}

// flight is one key-set fetch in progress; waiters block on done.
type flight struct {
	done chan struct{}
}

// remoteKeys is the key source of an issuer with a JWKS URL or discovery.
type remoteKeys struct {
	iss    string
	opts   JWKSOptions
	client *http.Client
	now    func() time.Time
	hook   func(FetchEvent)
	base   *url.URL // discovery base (issuer URL), nil with a fixed JWKS URL

	set   atomic.Pointer[keySet] // nil until the first good fetch
	ready chan struct{}          // closed at the first good fetch

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	jwksURL     *url.URL // fixed, or found by discovery
	cur         *flight
	closed      bool
	lastForced  time.Time
	lastAttempt time.Time
	lastErr     error
	failures    int
	fetches     int
	interval    time.Duration // refresh interval after the last good fetch
}

func newRemoteKeys(in *issuer, client *http.Client, now func() time.Time, hook func(FetchEvent)) *remoteKeys {
	ctx, cancel := context.WithCancel(context.Background())
	return &remoteKeys{
		iss:     in.name,
		opts:    in.jwksOpts,
		client:  client,
		now:     now,
		hook:    hook,
		base:    in.discoveryBase,
		jwksURL: in.jwksURL,
		ready:   make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// start launches the background refresh loop.
func (r *remoteKeys) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.wg.Add(1)
	go r.loop()
}

func (r *remoteKeys) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

func (r *remoteKeys) loop() {
	defer r.wg.Done()
	for {
		f := r.startFetch(false)
		if f == nil {
			return
		}
		select {
		case <-f.done:
		case <-r.ctx.Done():
			return
		}
		t := time.NewTimer(r.nextDelay())
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return
		}
	}
}

// nextDelay is the wait before the next background fetch: the refresh
// interval after a success, a bounded exponential backoff after failures.
func (r *remoteKeys) nextDelay() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures == 0 {
		return r.interval
	}
	d := 5 * time.Second << min(r.failures-1, 16)
	return min(d, r.opts.MinRefresh)
}

// startFetch joins the fetch in progress or starts one. A forced fetch
// (unknown kid, stale keys) is started at most once per Cooldown; it
// returns nil when refused or after close.
func (r *remoteKeys) startFetch(forced bool) *flight {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if r.cur != nil {
		return r.cur
	}
	if forced {
		now := r.now()
		if !r.lastForced.IsZero() && now.Sub(r.lastForced) < r.opts.Cooldown {
			return nil
		}
		r.lastForced = now
	}
	f := &flight{done: make(chan struct{})}
	r.cur = f
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = r.fetch() // clears r.cur when it publishes the result
		close(f.done)
	}()
	return f
}

// usable returns the current set if it is fresh enough to verify with.
func (r *remoteKeys) usable(now time.Time) *keySet {
	s := r.set.Load()
	if s == nil || now.Sub(s.fetched) > r.opts.MaxStaleness {
		return nil
	}
	return s
}

// key finds the verification key for kid and a, refreshing the set (once
// per cooldown, single-flight) when the kid is unknown or the set stale.
// Known kids never wait for the network.
func (r *remoteKeys) key(ctx context.Context, kid string, a *algorithm) (*verifyKey, *keySet, error) {
	if s := r.usable(r.now()); s != nil {
		k, err := s.find(kid, a)
		if err != errNoKey {
			return k, s, err
		}
	}
	if f := r.startFetch(true); f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	s := r.usable(r.now())
	if s == nil {
		if r.set.Load() == nil {
			return nil, nil, fail(ErrKeysStale, r.iss, "the issuer's keys have not been fetched yet")
		}
		return nil, nil, fail(ErrKeysStale, r.iss, "the issuer's keys could not be refreshed")
	}
	k, err := s.find(kid, a)
	if err == errNoKey {
		detail := "no key of this issuer has the token's kid"
		if why, ok := s.rejected[kid]; ok && kid != "" {
			detail = "the key named by kid was published but refused: " + why
		}
		return nil, nil, fail(ErrUnknownKey, r.iss, detail)
	}
	return k, s, err
}

// fetch retrieves the key set (after discovery if needed) and, on success,
// replaces the current set.
func (r *remoteKeys) fetch() error {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout)
	defer cancel()

	r.mu.Lock()
	u := r.jwksURL
	r.mu.Unlock()
	ev := FetchEvent{Issuer: r.iss}
	var err error
	if u == nil {
		u, err = r.discover(ctx)
		if err != nil {
			ev.Result = "discovery_failed"
		}
	}
	var set *keySet
	var skipped int
	var maxAge time.Duration
	var hasMaxAge bool
	if err == nil {
		ev.URL = u.Redacted()
		var body []byte
		var h http.Header
		body, h, ev.Result, err = r.get(ctx, u, "application/jwk-set+json, application/json")
		if err == nil {
			keys, skippedErrs, perr := ParseJWKS(body)
			if perr != nil {
				ev.Result, err = "invalid", perr
			} else {
				set = &keySet{fetched: r.now()}
				for _, pk := range keys {
					k, _ := newVerifyKey(pk) // ParseJWKS checked it
					set.add(k)
				}
				set.rejected = rejectedKids(body, set)
				skipped = len(skippedErrs)
				maxAge, hasMaxAge = cacheMaxAge(h.Get("Cache-Control"))
			}
		}
	}

	r.mu.Lock()
	r.cur = nil
	r.fetches++
	r.lastAttempt = r.now()
	if err != nil {
		r.failures++
		r.lastErr = err
		if r.base != nil {
			r.jwksURL = nil // discover again next time
		}
	} else {
		r.failures = 0
		r.lastErr = nil
		r.jwksURL = u
		r.interval = refreshInterval(maxAge, hasMaxAge, r.opts)
		r.set.Store(set)
	}
	r.mu.Unlock()

	if err == nil {
		ev.Result = "ok"
		ev.Keys = len(set.all)
		ev.Skipped = skipped
	}
	ev.Err = err
	if s := r.set.Load(); s != nil {
		ev.LastSuccess = s.fetched
	}
	if r.hook != nil {
		r.hook(ev)
	}
	if err == nil {
		select {
		case <-r.ready:
		default:
			close(r.ready)
		}
	}
	if err != nil {
		return fmt.Errorf("authn: issuer %s: key fetch: %w", r.iss, err)
	}
	return nil
}

// rejectedKids lists the kids of published keys that were skipped, with
// the reason, to explain ErrUnknownKey.
func rejectedKids(body []byte, set *keySet) map[string]string {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	var out map[string]string
	for _, raw := range doc.Keys {
		var j jwk
		if json.Unmarshal(raw, &j) != nil || j.Kid == "" || len(set.byKid[j.Kid]) > 0 {
			continue
		}
		if _, err := j.publicKey(); err != nil {
			if out == nil {
				out = map[string]string{}
			}
			out[j.Kid] = strings.TrimPrefix(err.Error(), ErrUnsupportedKey.Error()+": ")
		}
	}
	return out
}

// get fetches u with the body cap; result is a FetchEvent result code.
func (r *remoteKeys) get(ctx context.Context, u *url.URL, accept string) (body []byte, h http.Header, result string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, "invalid_url", err
	}
	req.Header.Set("Accept", accept)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, nil, "network", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, "http_status", fmt.Errorf("GET %s: status %s", u.Redacted(), resp.Status)
	}
	if resp.ContentLength > MaxJWKSSize {
		return nil, nil, "too_large", fmt.Errorf("GET %s: body of %d bytes exceeds %d", u.Redacted(), resp.ContentLength, MaxJWKSSize)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, nil, "network", fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if len(body) > MaxJWKSSize {
		return nil, nil, "too_large", fmt.Errorf("GET %s: body exceeds %d bytes", u.Redacted(), MaxJWKSSize)
	}
	return body, resp.Header, "ok", nil
}

// discover finds the JWKS URL from the issuer's discovery document.
func (r *remoteKeys) discover(ctx context.Context) (*url.URL, error) {
	base := *r.base
	path := strings.TrimSuffix(base.Path, "/")
	oidc := base
	oidc.Path = path + "/.well-known/openid-configuration"
	oidc.RawPath = ""
	rfc8414 := base
	rfc8414.Path = "/.well-known/oauth-authorization-server" + path
	rfc8414.RawPath = ""
	var errs []error
	for _, u := range []*url.URL{&oidc, &rfc8414} {
		body, _, _, err := r.get(ctx, u, "application/json")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			errs = append(errs, fmt.Errorf("GET %s: not a discovery document: %w", u.Redacted(), err))
			continue
		}
		if doc.Issuer != r.iss {
			return nil, fmt.Errorf("discovery document %s names issuer %.200q, not %q", u.Redacted(), doc.Issuer, r.iss)
		}
		if doc.JWKSURI == "" {
			return nil, fmt.Errorf("discovery document %s has no jwks_uri", u.Redacted())
		}
		ju, err := parseFetchURL(doc.JWKSURI)
		if err != nil {
			return nil, fmt.Errorf("discovery document %s: jwks_uri %w", u.Redacted(), err)
		}
		if !strings.EqualFold(ju.Scheme, base.Scheme) || !strings.EqualFold(ju.Host, base.Host) {
			return nil, fmt.Errorf("discovery document %s: jwks_uri %s is not on the issuer's origin; configure JWKSURL explicitly to trust it", u.Redacted(), ju.Redacted())
		}
		return ju, nil
	}
	return nil, errors.Join(errs...)
}

// cacheMaxAge reads max-age from a Cache-Control header; no-store and
// no-cache count as max-age=0.
func cacheMaxAge(h string) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	var d time.Duration
	found := false
	for _, part := range strings.Split(h, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-store", "no-cache":
			return 0, true
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			d = time.Duration(min(n, int64(1<<31))) * time.Second
			found = true
		}
	}
	return d, found
}

// refreshInterval clamps the server's max-age into [MinRefresh, MaxRefresh];
// without one it is MaxRefresh.
func refreshInterval(maxAge time.Duration, ok bool, o JWKSOptions) time.Duration {
	if !ok {
		return o.MaxRefresh
	}
	return min(max(maxAge, o.MinRefresh), o.MaxRefresh)
}

// newFetchClient returns the HTTP client used for key sets and discovery:
// redirects are limited to three, must stay on https once on https, and
// may use plain http only to loopback hosts.
func newFetchClient(t http.RoundTripper) *http.Client {
	if t == nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &http.Client{
		Transport: t,
		Timeout:   time.Minute, // backstop; each fetch has its own timeout
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to http refused")
			}
			return checkFetchURL(req.URL)
		},
	}
}

// health reports this key source's state.
func (r *remoteKeys) health(now time.Time) IssuerHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := IssuerHealth{Issuer: r.iss, Remote: true, LastFetch: r.lastAttempt, Fetches: r.fetches}
	if r.lastErr != nil {
		h.LastError = r.lastErr.Error()
	}
	if s := r.set.Load(); s != nil {
		h.Keys = len(s.all)
		h.LastSuccess = s.fetched
	}
	h.Stale = r.usable(now) == nil
	return h
}
