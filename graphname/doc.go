// Package graphname maps a tenant's graph names to physical FalkorDB keys and
// back, so that many tenants can share one database without ever reaching
// each other's graphs.
//
// A tenant works with logical graph names ("users"); the database holds
// physical keys ("acme_users"). [Resolve] goes from the pair (tenant, graph)
// to the key, [Strip] goes back from a key to the graph name when, and only
// when, the key is the tenant's, and [Filter] turns a list of keys (such as
// the answer of GRAPH.LIST, which lists every tenant's graphs) into the
// tenant's own graph names. [ValidateTenant] and [ValidateGraph] check a name
// on its own, for example when a token is verified. The package depends on
// the standard library only, so it can be imported alone.
//
// The package-level functions use [Default], which keeps the format of the
// earlier system: "<tenant>_<graph>". [New] builds a [Resolver] with other
// [Options]. A Resolver is immutable and safe for concurrent use.
//
// # Contract
//
// For every Resolver r, tenant t and graph name g:
//
//   - r.Resolve(t, g) either fails, with an error wrapping [ErrInvalidTenant]
//     or [ErrInvalidGraph], or returns a key k.
//   - Injective: two different accepted pairs never give the same key (under
//     [CaseFold], pairs are compared after folding the tenant to lower case).
//   - Round trip: r.Strip(t, k) returns (g, true), and r.Filter(t, keys) returns
//     g for k.
//   - Strip(t, k) is true only if Resolve(t, g) succeeds and returns k; for
//     any other key, including other tenants' keys, keys with characters that
//     Resolve never produces, and over-long keys, it returns ("", false).
//     Filter keeps exactly the keys that Strip accepts.
//   - Every key consists of ASCII letters, digits, '-', '_' and '.', and holds
//     no whitespace, control character, NUL, glob character (*?[]), brace
//     (Redis Cluster hash tags), ':' or non-ASCII byte. So the Redis ACL key
//     pattern "~" followed by r.Prefix(t) and "*" matches all of the
//     tenant's keys and no other tenant's key (no other segment followed by
//     the separator starts with the same bytes).
//   - Keys are at most 63 + 1 + 128 = 192 bytes long.
//
// Graph names are 1–128 ASCII letters, digits, '_', '-' and '.', not starting
// with '.'. They are case-sensitive: "Users" and "users" are two graphs.
//
// # Readable tenant ids
//
// Under the default [Readable] scheme the tenant segment of a key is the
// tenant id itself. Tenant ids are 1–63 lower-case ASCII letters, digits and
// '-', not starting or ending with '-' (the rules of a DNS label). The key is
//
//	tenant + separator + graph
//
// with separator '_' (the default) or '.'.
//
// Why this is injective: the separator is not a tenant-id character, so in a
// key k the first separator is exactly the one after the tenant id. Splitting
// k at its first separator therefore gives back the tenant id and the graph
// name, whatever the graph name contains (it may contain the separator). A
// function with an inverse is injective. The collision of the earlier system,
// tenant "a" + graph "b_x" against tenant "a_b" + graph "x" (both "a_b_x"),
// cannot happen: "a_b" is not a tenant id.
//
// With [CaseFold], ASCII upper-case letters in tenant ids are folded to lower
// case before use, so "Acme" and "acme" are intentionally the same tenant. Raw
// tenant strings then no longer map injectively, but folded ones do, by the
// argument above. The default, [CaseReject], refuses upper case instead.
//
// # Opaque identity-provider subjects
//
// Subjects such as "auth0|5f7c8ec7c33c6c004bbafe82", GUIDs with capital
// letters or e-mail addresses are not tenant ids. Under the [OpaqueSubject]
// scheme the tenant argument of every function is the raw subject (any valid,
// non-empty UTF-8 string of up to 1024 bytes, compared byte for byte), and the
// Resolver encodes it into a segment:
//
//   - subjects of up to 39 bytes: their unpadded base32 (RFC 4648) in lower
//     case, alphabet a-z and 2-7, at most ceil(39*8/5) = 63 characters.
//     "auth0|abc" becomes "mf2xi2bqprqweyy".
//   - longer subjects: "h-" followed by the unpadded lower-case base32 of
//     their SHA-256 digest, 54 characters.
//
// Why this is injective: base32 is a bijection between byte strings and their
// encodings, and the length of the encoding determines the length of the
// input, so two different short subjects never share a segment. A hashed
// segment contains '-', which base32 never produces, so it never equals a
// short subject's segment. Two long subjects share a segment only if their
// SHA-256 digests collide: the full 256 bits are kept, so the chance that any
// two of n subjects collide is below n*n/2^257, and finding one collision on
// purpose takes about 2^128 work (the birthday bound). No segment contains the
// separator, so the argument of the Readable scheme applies to the key.
//
// Both schemes must not share one key space: a Readable tenant named
// "mf2xi2bqprqweyy" would be the subject "auth0|abc". Use one scheme per
// database.
//
// Errors never repeat a subject (it may be an e-mail address). Other refused
// names are quoted with every non-ASCII and non-printable character escaped
// (a Cyrillic 'а' shows as \u0430) and cut after 40 bytes.
package graphname
