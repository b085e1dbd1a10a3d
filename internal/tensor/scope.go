package tensor

import (
	"runtime"

	"github.com/sugarme/gotch/ts"
)

// Scope owns the tensors of one computation and frees them together, so that intermediate results
// are released on every path, errors included:
//
//	var s tensor.Scope
//	defer s.Close()
//	y, err := s.Apply(x, func(x *ts.Tensor) (*ts.Tensor, error) { return x.Matmul(w, false) })
//
// A Scope is not safe for concurrent use.
type Scope struct {
	owned []*ts.Tensor
}

// Own takes ownership of t and passes (t, err) through, with err shortened by Err. It is shaped to
// wrap a gotch call directly; that call must run inside Do (Apply does this).
func (s *Scope) Own(t *ts.Tensor, err error) (*ts.Tensor, error) {
	if err != nil {
		return nil, Err(err)
	}
	s.owned = append(s.owned, t)
	return t, nil
}

// Step is one gotch call on the running result of a computation.
type Step func(*ts.Tensor) (*ts.Tensor, error)

// Apply runs steps in order on one locked OS thread, the first on x and each on the previous one's
// result, and returns the last result. The scope owns every result; the first error stops the chain.
func (s *Scope) Apply(x *ts.Tensor, steps ...Step) (*ts.Tensor, error) {
	err := Do(func() error {
		for _, step := range steps {
			var err error
			if x, err = s.Own(step(x)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return x, nil
}

// Release hands t back to the caller: Close will not free it.
func (s *Scope) Release(t *ts.Tensor) *ts.Tensor {
	for i, o := range s.owned {
		if o == t {
			s.owned = append(s.owned[:i], s.owned[i+1:]...)
			break
		}
	}
	return t
}

// Close frees every tensor the scope still owns.
func (s *Scope) Close() {
	for _, t := range s.owned {
		t.Drop()
	}
	s.owned = s.owned[:0]
}

// Do runs fn on one locked OS thread. Every gotch call whose error is read runs inside Do: libtorch
// reports errors in a thread-local variable, which gotch reads after the call and which is only
// meaningful on the thread that made it.
func Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return fn()
}
