package authn

import "time"

// Hooks receive observations from a Verifier, for metrics and logs without
// a dependency on a metrics library. Hooks are called synchronously (keep
// them fast) and may be called concurrently. Nil hooks are skipped.
type Hooks struct {
	// Verified is called after every verification, successful or not.
	Verified func(VerifyEvent)
	// KeysFetched is called after every key-set fetch attempt.
	KeysFetched func(FetchEvent)
}

// VerifyEvent describes one verification.
type VerifyEvent struct {
	// Issuer is the configured issuer of the token, or "" when the token
	// named no configured issuer (its unverified iss is never reported,
	// to keep label cardinality bounded).
	Issuer string
	// Reason is "ok" or the refusal's reason code (see Reason).
	Reason string
	// Cached reports a hit in the verified-token cache.
	Cached bool
	// Err is the refusal (nil for "ok").
	Err error
}

// FetchEvent describes one key-set fetch attempt of a remote issuer.
type FetchEvent struct {
	// Issuer is the configured issuer.
	Issuer string
	// URL is the key-set URL (empty when discovery failed).
	URL string
	// Result is "ok", "discovery_failed", "network", "http_status",
	// "too_large", "invalid" or "invalid_url".
	Result string
	// Keys is the number of usable keys in a good answer; Skipped the
	// number of published keys that were refused.
	Keys, Skipped int
	// Err is the failure (nil for "ok").
	Err error
	// LastSuccess is the time of the last good fetch, this one included
	// (zero if none).
	LastSuccess time.Time
}

// IssuerHealth is the state of an issuer's keys, for readiness checks.
type IssuerHealth struct {
	// Issuer is the configured issuer.
	Issuer string
	// Remote is true for JWKS URL and discovery issuers.
	Remote bool
	// Keys is the number of usable keys.
	Keys int
	// Fetches counts key-set fetch attempts.
	Fetches int
	// LastFetch is the time of the last fetch attempt; LastSuccess of
	// the last good one.
	LastFetch, LastSuccess time.Time
	// LastError describes the last fetch failure, "" after a success.
	LastError string
	// Stale is true when tokens of this issuer are refused with
	// ErrKeysStale: keys never fetched, or older than MaxStaleness.
	Stale bool
}
