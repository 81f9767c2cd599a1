package tollgate

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

type ctxKey struct{}

// FromContext returns the decision the middleware made for this request, if any.
func FromContext(ctx context.Context) (*LimitResult, bool) {
	r, ok := ctx.Value(ctxKey{}).(*LimitResult)
	return r, ok
}

// Middleware decides each request with Tollgate before next sees it. It sets the rate-limit
// headers on every answer, answers refusals itself (429, 401, 403 or 503 with a problem
// body), and releases a concurrency lease once next has returned. The decision is in the
// request's context (FromContext). opts apply to every check (WithCost, WithExtra,
// WithSubject, WithUnavailable). An error from Tollgate itself (with ReturnError) answers 503.
func (c *Client) Middleware(next http.Handler, opts ...CheckOption) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := c.Limit(r.Context(), r, opts...)
		if err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "UNAVAILABLE", nil)
			return
		}
		for k, v := range res.Headers {
			w.Header().Set(k, v)
		}
		if !res.Allowed {
			writeProblem(w, res.Status, res.Decision.Code, res.Decision.RetryAfterMs)
			return
		}
		if res.LeaseID != "" {
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
				defer cancel()
				_, _ = c.Release(ctx, res.LeaseID)
			}()
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, res)))
	})
}

func writeProblem(w http.ResponseWriter, status int, code string, retryAfterMs *int64) {
	title := "Request refused"
	switch code {
	case "RATE_LIMITED":
		title = "Too many requests"
	case "QUOTA_EXCEEDED":
		title = "Quota exceeded"
	}
	body := map[string]interface{}{
		"type":   "https://tollgate.dev/problems/" + strings.ReplaceAll(strings.ToLower(code), "_", "-"),
		"title":  title,
		"status": status,
		"code":   code,
	}
	if retryAfterMs != nil {
		body["retry_after_ms"] = *retryAfterMs
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
