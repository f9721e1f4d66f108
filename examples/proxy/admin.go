package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// The operator's endpoints, under /admin/ on the main listener, only when
// ADMIN_TOKEN is set, and only with "Authorization: Bearer <ADMIN_TOKEN>"
// (a credential of their own: tenants' tokens never reach them). Their
// bodies may be up to 1 GiB (MAX_BODY_BYTES does not apply to them):
//
//	GET  /admin/usage?tenant=acme&days=7     a tenant's usage (JSON)
//	GET  /admin/policy                       this replica's policy version, and what every replica loaded last
//	GET  /admin/backup?tenant=acme           the tenant's graphs as a backup file
//	POST /admin/restore?tenant=acme          restore a backup file (the body)
//	POST /admin/erase?tenant=acme&confirm=acme   erase everything the tenant owns

// adminMaxBody is the largest request body of the admin endpoints (a
// backup file to restore), held in memory while it is restored.
const adminMaxBody = 1 << 30

// policyVersionsKey is the hash in the FalkorDB server where each replica
// records the version of the policy it runs: replica → "version unix-time".
const policyVersionsKey = "tenantgraph:policy:versions"

// adminAuth refuses requests without the admin token, comparing digests in
// constant time.
func adminAuth(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte("Bearer " + token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tenantgraph-admin"`)
			adminError(w, http.StatusUnauthorized, "the admin endpoints need Authorization: Bearer <ADMIN_TOKEN>")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func adminError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func adminJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v)
}

// adminHandler is the mux of the admin endpoints.
func (p *proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	tenant := func(w http.ResponseWriter, r *http.Request) (string, bool) {
		t := r.URL.Query().Get("tenant")
		if _, err := p.resolver.Prefix(t); err != nil {
			adminError(w, http.StatusBadRequest, "tenant: "+strings.TrimPrefix(err.Error(), "graphname: "))
			return "", false
		}
		return t, true
	}
	needDB := func(w http.ResponseWriter) bool {
		if p.ops == nil {
			adminError(w, http.StatusNotImplemented, "this proxy has no FalkorDB of its own (upstream mode without FALKORDB_URL)")
			return false
		}
		return true
	}
	mux.HandleFunc("GET /admin/usage", func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenant(w, r)
		if !ok {
			return
		}
		if p.usage == nil {
			adminError(w, http.StatusNotImplemented, "usage counters are off (USAGE=off)")
			return
		}
		days := 7
		if v := r.URL.Query().Get("days"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				adminError(w, http.StatusBadRequest, "days: want a number from 1 to the retention in days")
				return
			}
			days = n
		}
		rep, err := p.usage.Report(r.Context(), t, days)
		if errors.Is(err, tenancy.ErrUsageDays) {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err != nil {
			p.log.Warn("admin usage", "err", err.Error())
			adminError(w, http.StatusServiceUnavailable, "the usage store is unavailable")
			return
		}
		adminJSON(w, rep)
	})
	mux.HandleFunc("GET /admin/policy", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"replica": p.replicaID}
		if p.policy != nil {
			out["version"] = p.policy.Version()
		}
		if p.db != nil {
			// What every replica recorded when it last loaded a policy.
			all, err := p.db.Redis().HGetAll(r.Context(), policyVersionsKey).Result()
			if err == nil {
				type entry struct {
					Version string    `json:"version"`
					Loaded  time.Time `json:"loaded"`
				}
				replicas := map[string]entry{}
				for id, v := range all {
					version, at, _ := strings.Cut(v, " ")
					sec, _ := strconv.ParseInt(at, 10, 64)
					replicas[id] = entry{version, time.Unix(sec, 0).UTC()}
				}
				out["replicas"] = replicas
			}
		}
		adminJSON(w, out)
	})
	mux.HandleFunc("GET /admin/backup", func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenant(w, r)
		if !ok || !needDB(w) {
			return
		}
		var buf bytes.Buffer
		n, err := p.ops.backup(r.Context(), t, &buf)
		if err != nil {
			p.log.Warn("admin backup", "tenant", t, "err", err.Error())
			adminError(w, http.StatusServiceUnavailable, "backup failed: "+plainError(err))
			return
		}
		p.log.Info("admin backup", "tenant", t, "graphs", n)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="`+t+`.backup.json"`)
		w.Write(buf.Bytes())
	})
	mux.HandleFunc("POST /admin/restore", func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenant(w, r)
		if !ok || !needDB(w) {
			return
		}
		f, err := p.ops.restore(r.Context(), r.Body, t)
		switch {
		case errors.Is(err, errBackup):
			adminError(w, http.StatusBadRequest, err.Error())
			return
		case errors.Is(err, falkor.ErrGraphExists):
			adminError(w, http.StatusConflict, plainError(err))
			return
		case err != nil:
			p.log.Warn("admin restore", "tenant", t, "err", err.Error())
			adminError(w, http.StatusServiceUnavailable, "restore failed: "+plainError(err))
			return
		}
		p.log.Info("admin restore", "tenant", t, "graphs", len(f.Graphs))
		names := make([]string, len(f.Graphs))
		for i, g := range f.Graphs {
			names[i] = g.Graph
		}
		adminJSON(w, map[string]any{"tenant": t, "restored": names})
	})
	mux.HandleFunc("POST /admin/erase", func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenant(w, r)
		if !ok || !needDB(w) {
			return
		}
		if r.URL.Query().Get("confirm") != t {
			adminError(w, http.StatusBadRequest, "erasing cannot be undone: repeat the tenant as confirm=<tenant>")
			return
		}
		e, err := p.ops.erase(r.Context(), t)
		if err != nil {
			p.log.Warn("admin erase", "tenant", t, "err", err.Error())
			adminError(w, http.StatusServiceUnavailable, "erase incomplete (run it again): "+plainError(err))
			return
		}
		p.log.Info("admin erase", "tenant", t, "graphs", len(e.Graphs), "remaining_keys", e.Remaining)
		adminJSON(w, e)
	})
	return adminAuth(p.cfg.AdminToken, mux)
}

// plainError is an error text for the operator without the package
// prefixes.
func plainError(err error) string {
	return strings.ReplaceAll(err.Error(), "falkor: ", "")
}

// publishPolicyVersion records this replica's policy version in the
// FalkorDB server, for GET /admin/policy.
func (p *proxy) publishPolicyVersion(ctx context.Context) {
	if p.db == nil || p.policy == nil {
		return
	}
	v := p.policy.Version() + " " + strconv.FormatInt(time.Now().Unix(), 10)
	if err := p.db.Redis().HSet(ctx, policyVersionsKey, p.replicaID, v).Err(); err != nil {
		p.log.Warn("recording the policy version", "err", err.Error())
	}
}

// reloadPolicy reads POLICY_FILE again (SIGHUP, or a change seen by the
// watcher) and logs the outcome; a bad file keeps the running policy.
func (p *proxy) reloadPolicy(changed bool, err error) {
	if err != nil {
		p.log.Error("policy file not loaded; the previous policy stays in force", "err", err.Error())
		return
	}
	if changed {
		p.log.Info("policy reloaded", "version", p.policy.Version())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.publishPolicyVersion(ctx)
	}
}

// replicaName names this replica in the policy versions: host and port.
func replicaName(addr string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s/%d", host, addr, os.Getpid())
}
