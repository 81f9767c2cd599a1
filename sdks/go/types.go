package tollgate

// The wire types of Tollgate's HTTP API (v1), written by hand for now and kept in this one
// file so that they can be generated from the OpenAPI description later.

// Subject is who or what a decision is about; rules match the attributes present.
type Subject struct {
	User       string            `json:"user,omitempty"`
	IP         string            `json:"ip,omitempty"`
	Method     string            `json:"method,omitempty"`
	Path       string            `json:"path,omitempty"`
	APIKey     string            `json:"api_key,omitempty"`
	Tenant     string            `json:"tenant,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// CheckRequest is one check: the body of POST /v1/check, or one entry of a batch.
type CheckRequest struct {
	Subject Subject `json:"subject"`
	// Cost is the units to consume; nil means the server's default of 1. A cost of 0 only looks.
	Cost   *int64 `json:"cost,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// LimitStatus is where one limit stands after a decision.
type LimitStatus struct {
	Name      string `json:"name"`
	Key       string `json:"key"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	ResetMs   int64  `json:"reset_ms"`
	WindowMs  *int64 `json:"window_ms,omitempty"`
	Exceeded  bool   `json:"exceeded"`
	Shadow    bool   `json:"shadow"`
	Degraded  bool   `json:"degraded,omitempty"`
	LeaseID   string `json:"lease_id,omitempty"`
}

// Decision is the answer of POST /v1/check for one check.
type Decision struct {
	Allowed      bool              `json:"allowed"`
	Code         string            `json:"code"`
	RetryAfterMs *int64            `json:"retry_after_ms,omitempty"`
	Limits       []LimitStatus     `json:"limits"`
	Headers      map[string]string `json:"headers"`
	// LeaseID is set when the decision took a concurrency lease; release it with Release.
	LeaseID string `json:"lease_id,omitempty"`
	// Degraded is set by the SDK only ("open" or "closed"), when Tollgate could not be
	// reached and the client's OnUnavailable policy decided instead.
	Degraded string `json:"-"`
}

// ReleaseEntry is one entry of the answer of a batch POST /v1/release.
type ReleaseEntry struct {
	LeaseID  string `json:"lease_id"`
	Released bool   `json:"released"`
}

// RenewEntry is one entry of the answer of a batch POST /v1/renew.
type RenewEntry struct {
	LeaseID string `json:"lease_id"`
	Renewed bool   `json:"renewed"`
	// Error is set when this id is not one Tollgate gave out (made up or altered).
	Error string `json:"error,omitempty"`
}

// AuthorizeResult is what GET /v1/authorize answered.
type AuthorizeResult struct {
	Allowed bool
	Status  int
	Headers map[string]string
	LeaseID string
	Problem *Problem
}

// APIKey is an API key's record (never its secret).
type APIKey struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	Owner      string                 `json:"owner"`
	Tier       string                 `json:"tier"`
	Prefix     string                 `json:"prefix"`
	Status     string                 `json:"status"`
	CreatedAt  int64                  `json:"created_at"`
	UpdatedAt  int64                  `json:"updated_at"`
	ExpiresAt  *int64                 `json:"expires_at,omitempty"`
	LastUsedAt *int64                 `json:"last_used_at,omitempty"`
	Metadata   map[string]interface{} `json:"metadata,omitempty"`
	Overrides  map[string]interface{} `json:"overrides,omitempty"`
}

// CreateKeyRequest is the body of POST /v1/keys.
type CreateKeyRequest struct {
	Name      string                 `json:"name"`
	Owner     string                 `json:"owner"`
	Tier      string                 `json:"tier,omitempty"`
	Env       string                 `json:"env,omitempty"`
	ExpiresAt *int64                 `json:"expires_at,omitempty"`
	Metadata  map[string]interface{} `json:"metadata,omitempty"`
	Overrides map[string]interface{} `json:"overrides,omitempty"`
}

// CreatedKey is the answer of key creation and rotation: the secret is shown this once.
type CreatedKey struct {
	Key    APIKey `json:"key"`
	Secret string `json:"secret"`
}

// ListKeysQuery filters and pages GET /v1/keys.
type ListKeysQuery struct {
	Owner  string
	Tier   string
	Status string
	After  string
	Limit  int
}

// KeyPage is a page of GET /v1/keys; Next is the After of the following page.
type KeyPage struct {
	Keys []APIKey `json:"keys"`
	Next *string  `json:"next,omitempty"`
}

// RotateKeyRequest is the body of POST /v1/keys/{id}/rotate.
type RotateKeyRequest struct {
	GraceSeconds *int64 `json:"grace_seconds,omitempty"`
	Env          string `json:"env,omitempty"`
}

// UsageLimit is where one of a key's limits stands, as GET /v1/keys/{id}/usage shows it.
type UsageLimit struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Key       string `json:"key"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	Used      int64  `json:"used"`
	ResetMs   int64  `json:"reset_ms"`
	WindowMs  *int64 `json:"window_ms,omitempty"`
	Degraded  bool   `json:"degraded,omitempty"`
}

// KeyUsage is where each limit and quota of a key stands (GET /v1/keys/{id}/usage).
type KeyUsage struct {
	KeyID  string       `json:"key_id"`
	Tier   string       `json:"tier"`
	Owner  string       `json:"owner"`
	Limits []UsageLimit `json:"limits"`
}

// UsageHistoryQuery is the query of the usage history routes. From and To are ms since the
// epoch or RFC 3339; Granularity is minute, hour or day.
type UsageHistoryQuery struct {
	From        string
	To          string
	Granularity string
}

// UsageBucket is one period of usage history.
type UsageBucket struct {
	Start    int64 `json:"start"`
	Requests int64 `json:"requests"`
	Allowed  int64 `json:"allowed"`
	Denied   int64 `json:"denied"`
	Units    int64 `json:"units"`
}

// UsageHistory is the answer of the usage history routes.
type UsageHistory struct {
	Granularity string        `json:"granularity"`
	From        int64         `json:"from"`
	To          int64         `json:"to"`
	Buckets     []UsageBucket `json:"buckets"`
	KeyID       string        `json:"key_id,omitempty"`
	Owner       string        `json:"owner,omitempty"`
}

// FieldError is one error of a problem's errors list: the field at fault and what is wrong.
type FieldError struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem, as Tollgate answers every error.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}
