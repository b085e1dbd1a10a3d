package batch

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vggish-go/vggish/vggish"
)

// A sink takes the results of the workers. put frees the result's slot once it is written.
type sink interface {
	init(release func(), cancel context.CancelFunc)
	// put writes input i's embeddings (e is nil if it failed); an error is the input's failure.
	put(i int, in Input, e *vggish.Embeddings) error
	// close ends the output once every put has returned; an error is a failure of the sink
	// itself, which stopped the run.
	close() error
}

// files writes each result to its own files as soon as it arrives. A fault of the output folder stops
// the run.
type files struct {
	o       Options
	targets func(Input) []string
	write   func(main, pool string, format Format, p Pool, asUint8 bool, in Input, e *vggish.Embeddings) error
	release func()
	cancel  context.CancelFunc
	done    atomic.Int64 // inputs written
	clips   atomic.Int64 // their clips

	mu     sync.Mutex
	failed error
}

func newFiles(o Options, targets func(Input) []string) *files {
	return &files{o: o, targets: targets, write: writeFiles}
}

func (f *files) init(release func(), cancel context.CancelFunc) {
	f.release, f.cancel = release, cancel
}

func (f *files) close() error {
	err := f.err()
	if fault := (*Fault)(nil); errors.As(err, &fault) {
		// Writes under way when the fault came finished after it: count them too.
		fault.Done, fault.clips = int(f.done.Load()), int(f.clips.Load())
	}
	return err
}

func (f *files) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *files) put(_ int, in Input, e *vggish.Embeddings) error {
	defer f.release()
	if e == nil {
		return nil
	}
	if f.err() != nil {
		return errStopped
	}
	t := f.targets(in)
	pool := ""
	if len(t) > 1 {
		pool = t[1]
	}
	err := f.checkOutDir()
	if err == nil {
		_, err = protect(func() (any, error) { return nil, f.write(t[0], pool, f.o.Format, f.o.Pool, f.o.Uint8, in, e) })
	}
	if err == nil {
		f.done.Add(1)
		f.clips.Add(int64(e.Rows()))
		return nil
	}
	if err = f.fault(err); errors.Is(err, errStopped) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.failed == nil {
			f.failed = err
			f.cancel()
		}
		return errStopped
	}
	return err
}

// checkOutDir fails when the output folder is gone, so that writing does not make a new one.
func (f *files) checkOutDir() error {
	if f.o.OutDir == "" {
		return nil
	}
	if info, err := os.Stat(f.o.OutDir); err != nil {
		return err
	} else if !info.IsDir() {
		return &fs.PathError{Op: "stat", Path: f.o.OutDir, Err: syscall.ENOTDIR}
	}
	return nil
}

// errStopped marks a write that failed for a reason of the whole run, a Fault.
var errStopped = errors.New("the run stopped")

// Fault is a failure to write outputs that is no input's fault and would fail every remaining one: the
// output folder's disk or quota is full, the folder is read-only or not writable, has vanished, or its
// disk fails. Run stops at the first one and returns it.
type Fault struct {
	Err          error // what writing an output returned
	Done, Inputs int   // inputs written before it; inputs of the run (of this shard, not skipped)
	clips        int   // the clips of the Done inputs
}

func (e *Fault) Error() string {
	return fmt.Sprintf("%v: the run stopped after writing the outputs of %d of %d files (those are complete): fix this and run again to finish the rest", e.Err, e.Done, e.Inputs)
}

func (e *Fault) Unwrap() []error { return []error{e.Err, errStopped} }

// faultErrnos are the errors of writing a file that no other file would escape.
var faultErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM, syscall.EIO, syscall.EFBIG}

// fault returns err as a *Fault when it is one (a vanished output folder included), else err.
func (f *files) fault(err error) error {
	isFault := slices.ContainsFunc(faultErrnos, func(e syscall.Errno) bool { return errors.Is(err, e) }) ||
		f.checkOutDir() != nil
	if !isFault {
		return err
	}
	dir := f.o.OutDir
	if dir == "" {
		dir = filepath.Dir(f.o.Output)
	}
	if cerr := f.checkOutDir(); cerr != nil {
		err = fmt.Errorf("output folder %s is gone (%w)", dir, cerr)
	} else {
		err = fmt.Errorf("output folder %s: %w", dir, err)
	}
	return &Fault{Err: err, Done: int(f.done.Load())}
}

// stream writes results to one writer, or hands them to a function, in input order, holding early
// ones until their predecessors arrive.
type stream struct {
	w       io.Writer
	each    func(Input, *vggish.Embeddings) error
	format  Format
	pool    Pool
	uint8   bool
	release func()
	cancel  context.CancelFunc

	mu      sync.Mutex
	next    int
	pending map[int]result
	header  bool
	failed  error
}

type result struct {
	in Input
	e  *vggish.Embeddings
}

func (s *stream) init(release func(), cancel context.CancelFunc) {
	s.release, s.cancel = release, cancel
}

func (s *stream) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *stream) put(i int, in Input, e *vggish.Embeddings) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[i] = result{in, e}
	for {
		r, ok := s.pending[s.next]
		if !ok {
			return nil
		}
		delete(s.pending, s.next)
		s.next++
		if r.e != nil && s.failed == nil {
			if _, err := protect(func() (any, error) { return nil, s.write(r) }); err != nil {
				s.failed = fmt.Errorf("writing results: %w", err)
				s.cancel()
			}
		}
		s.release()
	}
}

func (s *stream) write(r result) error {
	if s.each != nil {
		return s.each(r.in, r.e)
	}
	var b strings.Builder
	switch s.format {
	case Show:
		b.WriteString(showLine(r.in.Path, r.e, s.pool))
	case NPY:
		if err := encodeNPY(&b, r.e, s.uint8); err != nil {
			return err
		}
	case JSONL:
		if err := encodeJSONL(&b, r.in.Path, r.e, s.pool); err != nil {
			return err
		}
	case CSV:
		w := csv.NewWriter(&b)
		if !s.header {
			if err := w.Write(csvHeader(r.e.Channels > 0)); err != nil {
				return err
			}
			s.header = true
		}
		if err := writeCSV(w, r.in.Path, r.e, s.pool); err != nil {
			return err
		}
	}
	_, err := io.WriteString(s.w, b.String())
	return err
}
