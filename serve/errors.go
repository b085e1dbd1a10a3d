package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"google.golang.org/grpc/codes"

	"github.com/vggish-go/vggish/decode"
)

// Kind is the kind of a failure, as errors report it ({"error": ..., "kind": ...}) and as the
// metrics count it.
type Kind string

// The kinds of failure.
const (
	KindRequest      Kind = "request"      // the request is not a valid protocol request
	KindFormat       Kind = "format"       // the audio is not valid audio
	KindUnsupported  Kind = "unsupported"  // the audio may be valid but is not decoded here
	KindTooLarge     Kind = "too large"    // the request's bytes or the audio's duration are over the limit
	KindOverloaded   Kind = "overloaded"   // the queue or the concurrency limit is full, or the server drains
	KindModel        Kind = "model"        // the model failed
	KindUnauthorized Kind = "unauthorized" // no valid bearer token
	KindNotFound     Kind = "not found"    // no such endpoint or model
	KindTimeout      Kind = "timeout"      // the request ran past its time limit
	KindCanceled     Kind = "canceled"     // the client went away
)

// Error is a failure of a request, of a kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func failure(kind Kind, format string, args ...any) error {
	return &Error{kind, fmt.Errorf(format, args...)}
}

// kindOf classifies err.
func kindOf(err error) Kind {
	var (
		e   *Error
		fe  *decode.FormatError
		ue  *decode.UnsupportedError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, decode.ErrTooLong), errors.As(err, &mbe):
		return KindTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.As(err, &ue):
		return KindUnsupported
	case errors.As(err, &fe):
		return KindFormat
	}
	return KindModel
}

// httpStatus is the HTTP status of a failure of kind k.
func httpStatus(k Kind) int {
	switch k {
	case KindRequest, KindFormat:
		return http.StatusBadRequest
	case KindUnsupported:
		return http.StatusUnsupportedMediaType
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindOverloaded:
		return http.StatusServiceUnavailable
	case KindUnauthorized:
		return http.StatusUnauthorized
	case KindNotFound:
		return http.StatusNotFound
	case KindTimeout:
		return http.StatusGatewayTimeout
	case KindCanceled:
		return 499 // the client closed the request (nginx's): nobody reads it, the logs and metrics do
	}
	return http.StatusInternalServerError
}

// grpcCode is the gRPC status code of a failure of kind k.
func grpcCode(k Kind) codes.Code {
	switch k {
	case KindRequest, KindFormat:
		return codes.InvalidArgument
	case KindUnsupported:
		return codes.Unimplemented
	case KindTooLarge:
		return codes.ResourceExhausted
	case KindOverloaded:
		return codes.Unavailable
	case KindUnauthorized:
		return codes.Unauthenticated
	case KindNotFound:
		return codes.NotFound
	case KindTimeout:
		return codes.DeadlineExceeded
	case KindCanceled:
		return codes.Canceled
	}
	return codes.Internal
}
