package tollgate

import (
	"errors"
	"fmt"
	"strings"
)

// ProblemError is returned when Tollgate answers with an RFC 9457 problem
// (application/problem+json). Match it with errors.As.
type ProblemError struct {
	Problem
	// RequestID is the answer's X-Request-Id, to find it in Tollgate's log.
	RequestID string
}

func (e *ProblemError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("tollgate: %s: %s (%d)", e.Title, e.Detail, e.Status)
	}
	return fmt.Sprintf("tollgate: %s (%d)", e.Title, e.Status)
}

// Name is the last segment of Type, such as "invalid-request" or "unauthorized".
func (e *ProblemError) Name() string {
	return e.Type[strings.LastIndex(e.Type, "/")+1:]
}

// UnavailableError is returned when Tollgate could not be reached, kept answering 503, or
// did not answer within the timeout. Err is the last underlying error.
type UnavailableError struct {
	Attempts int
	Timeout  bool
	Err      error
}

func (e *UnavailableError) Error() string {
	if e.Timeout {
		return fmt.Sprintf("tollgate: no answer within the timeout (attempt %d): %v", e.Attempts, e.Err)
	}
	return fmt.Sprintf("tollgate: unavailable after %d attempt(s): %v", e.Attempts, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ErrNoLease is returned by Acquire when a decision was admitted but took no lease: no
// concurrency limit matched the subject.
var ErrNoLease = errors.New("tollgate: the decision took no lease: no concurrency limit matched the subject")

// IsUnavailable reports whether err says Tollgate could not be reached.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}
