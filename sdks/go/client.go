// Package tollgate is a client for Tollgate, the rate-limiting and API-key service: checks
// (single and batch, with cost and dry run), forward-auth, concurrency leases, key admin and
// usage, with timeouts, retries with backoff, an explicit fail-open or fail-closed policy, and
// a net/http middleware. It uses the standard library only.
package tollgate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// UnavailablePolicy says what the decision methods do when Tollgate cannot be reached
// (connection refused or reset, a timeout, or 503 after every retry). Admin calls always
// return the error.
type UnavailablePolicy int

const (
	// ReturnError returns an *UnavailableError (the default).
	ReturnError UnavailablePolicy = iota
	// FailOpen lets the request through: Decision{Allowed: true, Code: "UNAVAILABLE", Degraded: "open"}.
	FailOpen
	// FailClosed refuses it: Decision{Allowed: false, Code: "UNAVAILABLE", Degraded: "closed"}.
	FailClosed
)

// Retry configures retries of connection errors and 503 answers: exponential backoff with
// full jitter, a 503's Retry-After honoured up to MaxDelay. A timed-out attempt is not
// retried, since Tollgate may have decided it.
type Retry struct {
	Attempts  int           // attempts in all, the first included (default 3; 1 turns retries off)
	BaseDelay time.Duration // the first backoff (default 50ms); doubles on each retry
	MaxDelay  time.Duration // the longest backoff (default 2s)
}

// Options configure a Client. Only BaseURL is required.
type Options struct {
	BaseURL       string            // such as http://127.0.0.1:8080
	AdminToken    string            // bearer token for the admin routes
	Timeout       time.Duration     // per attempt (default 2s)
	Retry         Retry             // see Retry
	OnUnavailable UnavailablePolicy // see UnavailablePolicy
	HTTPClient    *http.Client      // default: a client of its own
	Headers       map[string]string // extra headers on every request
}

// Client talks to one Tollgate. It is safe for concurrent use; share one per service.
type Client struct {
	base          string
	adminToken    string
	timeout       time.Duration
	retry         Retry
	onUnavailable UnavailablePolicy
	http          *http.Client
	headers       map[string]string
}

// New returns a client for the Tollgate at opts.BaseURL.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("tollgate: BaseURL is required")
	}
	if _, err := url.Parse(opts.BaseURL); err != nil {
		return nil, fmt.Errorf("tollgate: BaseURL: %w", err)
	}
	c := &Client{
		base:          strings.TrimRight(opts.BaseURL, "/"),
		adminToken:    opts.AdminToken,
		timeout:       opts.Timeout,
		retry:         opts.Retry,
		onUnavailable: opts.OnUnavailable,
		http:          opts.HTTPClient,
		headers:       opts.Headers,
	}
	if c.timeout <= 0 {
		c.timeout = 2 * time.Second
	}
	if c.retry.Attempts <= 0 {
		c.retry.Attempts = 3
	}
	if c.retry.BaseDelay <= 0 {
		c.retry.BaseDelay = 50 * time.Millisecond
	}
	if c.retry.MaxDelay <= 0 {
		c.retry.MaxDelay = 2 * time.Second
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	return c, nil
}

// CheckOption changes one decision call.
type CheckOption func(*checkConfig)

type checkConfig struct {
	cost        *int64
	dryRun      bool
	policy      UnavailablePolicy
	policySet   bool
	extra       *Subject
	subjectFunc func(*http.Request) Subject
}

// WithCost sets the units a check consumes (default 1; 0 only looks).
func WithCost(cost int64) CheckOption { return func(c *checkConfig) { c.cost = &cost } }

// DryRun evaluates without consuming anything.
func DryRun() CheckOption { return func(c *checkConfig) { c.dryRun = true } }

// WithUnavailable overrides the client's UnavailablePolicy for one call.
func WithUnavailable(p UnavailablePolicy) CheckOption {
	return func(c *checkConfig) { c.policy, c.policySet = p, true }
}

func (c *Client) config(opts []CheckOption) checkConfig {
	cfg := checkConfig{policy: c.onUnavailable}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func degrade(policy UnavailablePolicy, err error) (*Decision, error) {
	if !IsUnavailable(err) {
		return nil, err
	}
	switch policy {
	case FailOpen:
		return &Decision{Allowed: true, Code: "UNAVAILABLE", Headers: map[string]string{}, Degraded: "open"}, nil
	case FailClosed:
		return &Decision{Allowed: false, Code: "UNAVAILABLE", Headers: map[string]string{}, Degraded: "closed"}, nil
	}
	return nil, err
}

// Check decides one check (POST /v1/check).
func (c *Client) Check(ctx context.Context, subject Subject, opts ...CheckOption) (*Decision, error) {
	cfg := c.config(opts)
	body := CheckRequest{Subject: subject, Cost: cfg.cost, DryRun: cfg.dryRun}
	var d Decision
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/check", body: body}, &d); err != nil {
		return degrade(cfg.policy, err)
	}
	return &d, nil
}

// CheckBatch decides up to 100 checks in order (batch POST /v1/check); one decision per check.
func (c *Client) CheckBatch(ctx context.Context, checks []CheckRequest, opts ...CheckOption) ([]Decision, error) {
	cfg := c.config(opts)
	var out struct {
		Results []Decision `json:"results"`
	}
	body := map[string]interface{}{"checks": checks}
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/check", body: body}, &out); err != nil {
		d, derr := degrade(cfg.policy, err)
		if derr != nil {
			return nil, derr
		}
		res := make([]Decision, len(checks))
		for i := range res {
			res[i] = *d
		}
		return res, nil
	}
	return out.Results, nil
}

var rateHeaders = []string{"RateLimit", "RateLimit-Policy", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}

// Authorize asks the forward-auth door (GET /v1/authorize) with the headers a proxy sends
// (X-Api-Key, X-Forwarded-Uri, X-Forwarded-Method, …). denyStatus, when not 0, asks for that
// status on every denial (401 for nginx).
func (c *Client) Authorize(ctx context.Context, headers http.Header, denyStatus int, opts ...CheckOption) (*AuthorizeResult, error) {
	cfg := c.config(opts)
	q := url.Values{}
	if denyStatus != 0 {
		q.Set("deny_status", strconv.Itoa(denyStatus))
	}
	var problem Problem
	resp, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/authorize", query: q, header: headers, accept: []int{401, 403, 429}}, &problem)
	if err != nil {
		d, derr := degrade(cfg.policy, err)
		if derr != nil {
			return nil, derr
		}
		status := http.StatusOK
		if !d.Allowed {
			status = http.StatusServiceUnavailable
		}
		return &AuthorizeResult{Allowed: d.Allowed, Status: status, Headers: map[string]string{}}, nil
	}
	res := &AuthorizeResult{Allowed: resp.StatusCode == http.StatusOK, Status: resp.StatusCode, Headers: map[string]string{}}
	for _, h := range rateHeaders {
		if v := resp.Header.Get(h); v != "" {
			res.Headers[strings.ToLower(h)] = v
		}
	}
	res.LeaseID = resp.Header.Get("Tollgate-Lease-Id")
	if !res.Allowed && problem.Type != "" {
		res.Problem = &problem
	}
	return res, nil
}

// LimitResult says what a service does with a request, from a decision.
type LimitResult struct {
	Allowed bool
	// Status is the status to answer a refused request with: 429, 401, 403 or 503 (200 when allowed).
	Status int
	// Headers are to be set on the answer, allowed or not (RateLimit, Retry-After, …).
	Headers  map[string]string
	Decision *Decision
	// LeaseID is set when the decision took a concurrency lease: release it when the work is done.
	LeaseID string
}

// StatusForCode is the HTTP status a service answers for a decision's code.
func StatusForCode(code string) int {
	switch code {
	case "OK":
		return http.StatusOK
	case "KEY_INVALID":
		return http.StatusUnauthorized
	case "KEY_DISABLED", "KEY_EXPIRED", "BLOCKED":
		return http.StatusForbidden
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	}
	return http.StatusTooManyRequests
}

// WithSubject replaces how Limit and the middleware build a subject from a request.
func WithSubject(f func(*http.Request) Subject) CheckOption {
	return func(c *checkConfig) { c.subjectFunc = f }
}

// WithExtra merges attributes over the subject built from the request (such as the user).
func WithExtra(s Subject) CheckOption { return func(c *checkConfig) { c.extra = &s } }

// SubjectFromRequest is the default subject of a request: method, path, the client IP (the
// connection's peer) and an API key from X-Api-Key or Authorization: Bearer.
func SubjectFromRequest(r *http.Request) Subject {
	s := Subject{Method: r.Method, Path: r.URL.Path}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		s.IP = host
	} else {
		s.IP = r.RemoteAddr
	}
	if k := r.Header.Get("X-Api-Key"); k != "" {
		s.APIKey = k
	} else if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		s.APIKey = strings.TrimSpace(a[7:])
	}
	return s
}

func merge(base Subject, extra *Subject) Subject {
	if extra == nil {
		return base
	}
	e := *extra
	if e.User != "" {
		base.User = e.User
	}
	if e.IP != "" {
		base.IP = e.IP
	}
	if e.Method != "" {
		base.Method = e.Method
	}
	if e.Path != "" {
		base.Path = e.Path
	}
	if e.APIKey != "" {
		base.APIKey = e.APIKey
	}
	if e.Tenant != "" {
		base.Tenant = e.Tenant
	}
	if len(e.Attributes) > 0 {
		attrs := map[string]string{}
		for k, v := range base.Attributes {
			attrs[k] = v
		}
		for k, v := range e.Attributes {
			attrs[k] = v
		}
		base.Attributes = attrs
	}
	return base
}

// Limit decides an incoming request: builds its subject (SubjectFromRequest, or WithSubject),
// checks it, and says what to answer.
func (c *Client) Limit(ctx context.Context, r *http.Request, opts ...CheckOption) (*LimitResult, error) {
	cfg := c.config(opts)
	subjectOf := cfg.subjectFunc
	if subjectOf == nil {
		subjectOf = SubjectFromRequest
	}
	d, err := c.Check(ctx, merge(subjectOf(r), cfg.extra), opts...)
	if err != nil {
		return nil, err
	}
	res := &LimitResult{Allowed: d.Allowed, Status: http.StatusOK, Headers: map[string]string{}, Decision: d, LeaseID: d.LeaseID}
	for k, v := range d.Headers {
		res.Headers[k] = v
	}
	if !d.Allowed {
		res.Status = StatusForCode(d.Code)
		if _, ok := res.Headers["retry-after"]; !ok && d.RetryAfterMs != nil {
			res.Headers["retry-after"] = strconv.FormatInt((*d.RetryAfterMs+999)/1000, 10)
		}
	}
	return res, nil
}

// Lease is a concurrency lease taken by Acquire.
type Lease struct {
	ID       string
	Decision *Decision
	client   *Client
}

// Release releases the lease; true if this call freed it, false if it was already gone.
func (l *Lease) Release(ctx context.Context) (bool, error) { return l.client.Release(ctx, l.ID) }

// Renew renews the lease (its lease_ttl again, from now); true if renewed, false if it had
// already ended (released or run out): it is not brought back, take a new one.
func (l *Lease) Renew(ctx context.Context) (bool, error) { return l.client.Renew(ctx, l.ID) }

// Acquire checks subject for a concurrency lease. It returns nil, nil when refused and
// ErrNoLease when admitted without a lease. Unreachable Tollgate is always an error here.
func (c *Client) Acquire(ctx context.Context, subject Subject, opts ...CheckOption) (*Lease, error) {
	d, err := c.Check(ctx, subject, append(opts, WithUnavailable(ReturnError))...)
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return nil, nil
	}
	if d.LeaseID == "" {
		return nil, ErrNoLease
	}
	return &Lease{ID: d.LeaseID, Decision: d, client: c}, nil
}

// WithLease runs work under a lease and releases it afterwards, whatever work returns. ran is
// false when the lease was refused (work did not run).
func (c *Client) WithLease(ctx context.Context, subject Subject, work func(context.Context, *Lease) error, opts ...CheckOption) (ran bool, err error) {
	lease, err := c.Acquire(ctx, subject, opts...)
	if err != nil || lease == nil {
		return false, err
	}
	defer func() {
		// The work's context may be done; a release still deserves its own short chance.
		rctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		_, _ = lease.Release(rctx)
	}()
	return true, work(ctx, lease)
}

// Release releases one lease (POST /v1/release): true if this call freed it.
func (c *Client) Release(ctx context.Context, leaseID string) (bool, error) {
	var out struct {
		Released bool `json:"released"`
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/release", body: map[string]string{"lease_id": leaseID}}, &out)
	return out.Released, err
}

// ReleaseMany releases several leases (batch POST /v1/release).
func (c *Client) ReleaseMany(ctx context.Context, leaseIDs []string) ([]ReleaseEntry, error) {
	var out struct {
		Results []ReleaseEntry `json:"results"`
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/release", body: map[string][]string{"lease_ids": leaseIDs}}, &out)
	return out.Results, err
}

// Renew renews one lease (POST /v1/renew): gives it its lease_ttl again, counted from now.
// True if renewed, false if it had already ended (released or run out; not brought back).
func (c *Client) Renew(ctx context.Context, leaseID string) (bool, error) {
	var out struct {
		Renewed bool `json:"renewed"`
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/renew", body: map[string]string{"lease_id": leaseID}}, &out)
	return out.Renewed, err
}

// RenewMany renews several leases (batch POST /v1/renew).
func (c *Client) RenewMany(ctx context.Context, leaseIDs []string) ([]RenewEntry, error) {
	var out struct {
		Results []RenewEntry `json:"results"`
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/renew", body: map[string][]string{"lease_ids": leaseIDs}}, &out)
	return out.Results, err
}

// ---- key admin -----------------------------------------------------------------------------

// CreateKey creates a key (POST /v1/keys); the answer's Secret is shown this once.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*CreatedKey, error) {
	var out CreatedKey
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys", body: req, admin: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys returns one page of keys (GET /v1/keys).
func (c *Client) ListKeys(ctx context.Context, q ListKeysQuery) (*KeyPage, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("owner", q.Owner)
	set("tier", q.Tier)
	set("status", q.Status)
	set("after", q.After)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out KeyPage
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys", query: v, admin: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetKey returns one key (GET /v1/keys/{id}).
func (c *Client) GetKey(ctx context.Context, id string) (*APIKey, error) {
	var out APIKey
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys/" + url.PathEscape(id), admin: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKey gives a key a new secret (POST /v1/keys/{id}/rotate); the old one keeps working
// for the grace period.
func (c *Client) RotateKey(ctx context.Context, id string, req RotateKeyRequest) (*CreatedKey, error) {
	var out CreatedKey
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys/" + url.PathEscape(id) + "/rotate", body: req, admin: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeKey revokes a key for good (DELETE /v1/keys/{id}).
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/keys/" + url.PathEscape(id), admin: true}, nil)
	return err
}

// KeyUsage says where each limit and quota of a key stands now (GET /v1/keys/{id}/usage).
func (c *Client) KeyUsage(ctx context.Context, id string) (*KeyUsage, error) {
	var out KeyUsage
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys/" + url.PathEscape(id) + "/usage", admin: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func historyQuery(q UsageHistoryQuery) url.Values {
	v := url.Values{}
	if q.From != "" {
		v.Set("from", q.From)
	}
	if q.To != "" {
		v.Set("to", q.To)
	}
	if q.Granularity != "" {
		v.Set("granularity", q.Granularity)
	}
	return v
}

// KeyUsageHistory returns one key's decisions per period (GET /v1/keys/{id}/usage/history).
func (c *Client) KeyUsageHistory(ctx context.Context, id string, q UsageHistoryQuery) (*UsageHistory, error) {
	var out UsageHistory
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys/" + url.PathEscape(id) + "/usage/history", query: historyQuery(q), admin: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OwnerUsageHistory returns the decisions per period of every key of one owner.
func (c *Client) OwnerUsageHistory(ctx context.Context, owner string, q UsageHistoryQuery) (*UsageHistory, error) {
	var out UsageHistory
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/owners/" + url.PathEscape(owner) + "/usage/history", query: historyQuery(q), admin: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ---- transport -----------------------------------------------------------------------------

type call struct {
	method string
	path   string
	query  url.Values
	body   interface{}
	header http.Header
	admin  bool
	accept []int // statuses decoded into out instead of returned as errors
}

func (c *Client) backoff(attempt int, retryAfter string) time.Duration {
	limit := c.retry.BaseDelay << uint(attempt-1)
	if limit > c.retry.MaxDelay || limit <= 0 {
		limit = c.retry.MaxDelay
	}
	wait := time.Duration(rand.Int63n(int64(limit) + 1))
	if s, err := strconv.ParseFloat(retryAfter, 64); err == nil && s >= 0 {
		ra := time.Duration(s * float64(time.Second))
		if ra > wait {
			wait = ra
		}
		if wait > c.retry.MaxDelay {
			wait = c.retry.MaxDelay
		}
	}
	return wait
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) do(ctx context.Context, cl call, out interface{}) (*http.Response, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("tollgate: encoding the request: %w", err)
		}
	}
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var last error
	for attempt := 1; attempt <= c.retry.Attempts; attempt++ {
		resp, body, err := c.once(ctx, cl, u, payload)
		retryAfter := ""
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && isTimeout(err):
			return nil, &UnavailableError{Attempts: attempt, Timeout: true, Err: err}
		case err != nil:
			last = err // connection refused, reset or closed: try again
		case resp.StatusCode == http.StatusServiceUnavailable:
			last = problemOf(resp, body)
			retryAfter = resp.Header.Get("Retry-After")
		default:
			ok := resp.StatusCode >= 200 && resp.StatusCode < 300
			for _, s := range cl.accept {
				ok = ok || resp.StatusCode == s
			}
			if !ok {
				return resp, problemOf(resp, body)
			}
			if out != nil && len(body) > 0 {
				if err := json.Unmarshal(body, out); err != nil && resp.StatusCode < 300 {
					return resp, fmt.Errorf("tollgate: reading the answer (%d): %w", resp.StatusCode, err)
				}
			}
			return resp, nil
		}
		if attempt < c.retry.Attempts {
			if err := sleepCtx(ctx, c.backoff(attempt, retryAfter)); err != nil {
				return nil, err
			}
		}
	}
	return nil, &UnavailableError{Attempts: c.retry.Attempts, Err: last}
}

type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string { return fmt.Sprintf("no answer within %v", e.after) }

func isTimeout(err error) bool {
	var t timeoutError
	return errors.As(err, &t)
}

func (c *Client) once(ctx context.Context, cl call, u string, payload []byte) (*http.Response, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range cl.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.admin && c.adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.adminToken)
	}
	resp, err := c.http.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			return resp, body, nil
		}
	}
	if ctx.Err() == nil && actx.Err() == context.DeadlineExceeded {
		return nil, nil, fmt.Errorf("tollgate: %w", timeoutError{c.timeout})
	}
	return nil, nil, err
}

func problemOf(resp *http.Response, body []byte) error {
	pe := &ProblemError{RequestID: resp.Header.Get("X-Request-Id")}
	if err := json.Unmarshal(body, &pe.Problem); err != nil || pe.Type == "" {
		pe.Problem = Problem{Type: "about:blank", Title: http.StatusText(resp.StatusCode), Status: resp.StatusCode}
	}
	return pe
}
