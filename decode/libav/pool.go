package libav

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/child"
)

// Options configures a Pool.
type Options struct {
	// Command is the program a worker runs: one that calls WorkerMain first. Empty: this program.
	Command string
}

// A Pool decodes files in worker processes, each decoding one file at a time and many files one after
// another: it starts a worker when all are busy and keeps it for the next file. A worker that crashes,
// or hangs (sends nothing for 2 minutes while its output is awaited), fails that file alone (with a
// *decode.FormatError, or the context's error): the next file gets a new worker. Workers end with the
// Pool's Close, with this process (on Linux, however it ends), or when a file's decoding is stopped
// before its end. A Pool is a decode.Decoder, safe for concurrent use.
type Pool struct {
	command string

	mu     sync.Mutex
	idle   []*worker
	closed bool
}

// NewPool returns a Pool running opts.Command.
func NewPool(opts Options) (*Pool, error) {
	if opts.Command == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("libav: finding this program to run as a decoding worker: %w", err)
		}
		opts.Command = exe
	}
	return &Pool{command: opts.Command}, nil
}

// Use makes decode.Open decode the files it does not decode natively with a new Pool.
func Use(opts Options) (*Pool, error) {
	p, err := NewPool(opts)
	if err != nil {
		return nil, err
	}
	decode.SetDecoder(p)
	return p, nil
}

// Close ends the idle workers, and the others once their file is done, and waits for the idle ones to
// exit.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, w := range idle {
		w.kill() // it has nothing left to do
	}
	return nil
}

// Decode starts decoding the file at path in a worker: see decode.Decoder. The WAV stream's header
// has arrived when Decode returns.
func (p *Pool) Decode(ctx context.Context, path string) (io.ReadCloser, error) {
	for {
		w, fresh, err := p.get()
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		s := &stream{pool: p, w: w, ctx: ctx, path: path}
		if err := w.request(path); err != nil {
			w.kill()
			if !fresh {
				continue // it died while idle: take another
			}
			return nil, workerFailed(w, path, err)
		}
		s.stopAfter = context.AfterFunc(ctx, w.kill)
		// The first message: the stream's header, or why there is none.
		if _, err := s.Read(nil); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
}

// get takes an idle worker, or starts one (fresh).
func (p *Pool) get() (w *worker, fresh bool, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !p.closed {
		w = p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return w, false, nil
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, false, errors.New("the decoding pool is closed")
	}
	w, err = startWorker(p.command)
	return w, true, err
}

// put keeps a worker that has answered in full for the next file.
func (p *Pool) put(w *worker) {
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, w)
		w = nil
	}
	p.mu.Unlock()
	if w != nil {
		w.kill()
	}
}

// stream is the answer of a worker to one request: a WAV stream.
type stream struct {
	pool      *Pool
	w         *worker // nil once given back or ended
	ctx       context.Context
	path      string
	stopAfter func() bool

	head    [5]byte
	payload []byte
	buf     []byte // the rest of the current data message
	err     error  // the end of the stream (io.EOF) or its failure, once buf is read
}

func (s *stream) Read(b []byte) (int, error) {
	for len(s.buf) == 0 && s.err == nil {
		s.err = s.next()
	}
	if len(s.buf) == 0 {
		return 0, s.err
	}
	n := copy(b, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// next reads the worker's next message into buf, or returns the end of the stream.
func (s *stream) next() error {
	if _, err := io.ReadFull(s.w.out, s.head[:]); err != nil {
		return s.fail(err)
	}
	size := binary.LittleEndian.Uint32(s.head[1:])
	if size > maxMessage {
		return s.fail(fmt.Errorf("message of %d bytes", size))
	}
	if cap(s.payload) < int(size) {
		s.payload = make([]byte, size)
	}
	s.payload = s.payload[:size]
	if _, err := io.ReadFull(s.w.out, s.payload); err != nil {
		return s.fail(err)
	}
	switch s.head[0] {
	case msgData:
		s.buf = s.payload
		return nil
	case msgEnd:
		s.release()
		return io.EOF
	case msgError:
		s.release()
		return &decode.FormatError{Name: s.path, Err: fmt.Errorf("ffmpeg could not decode it: %s", s.payload)}
	}
	return s.fail(fmt.Errorf("message type %q", s.head[0]))
}

// release gives the worker back to the pool, unless the context may have killed it.
func (s *stream) release() {
	if s.stopAfter() {
		s.pool.put(s.w)
	} else {
		s.w.kill()
	}
	s.w = nil
}

// fail ends the worker, broken, hung or stopped, and says why.
func (s *stream) fail(err error) error {
	w := s.w
	s.w = nil
	w.kill()
	s.stopAfter()
	switch {
	case s.ctx.Err() != nil:
		return fmt.Errorf("decode %s: decoding stopped: %w", s.path, context.Cause(s.ctx))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &decode.FormatError{Name: s.path, Err: fmt.Errorf("the decoder produced nothing for %v: killed", stallLimit)}
	}
	return workerFailed(w, s.path, err)
}

// workerFailed is the failure of w (killed, or dead) on the file at path; err is how it was seen.
func workerFailed(w *worker, path string, err error) error {
	<-w.exited
	why := w.waitErr
	if why == nil {
		why = err
	}
	msg := fmt.Sprintf("the decoder crashed on it (%v)", why)
	if line := w.stderr.firstLine(); line != "" {
		msg += ": " + line
	}
	return &decode.FormatError{Name: path, Err: errors.New(msg)}
}

// Close stops the decoding if it has not ended, killing its worker.
func (s *stream) Close() error {
	if s.w != nil {
		s.w.kill()
		s.stopAfter()
		s.w = nil
	}
	if s.err == nil {
		s.err = errors.New("read after Close")
	}
	return nil
}

// worker is a worker process.
type worker struct {
	cmd      *exec.Cmd
	in       *os.File // its standard input
	outFile  *os.File
	out      *bufio.Reader // its standard output
	stderr   *headBuffer
	exited   chan struct{} // closed once it has exited; then waitErr is set
	waitErr  error
	killOnce sync.Once
}

// startWorker starts command as a decoding worker.
func startWorker(command string) (*worker, error) {
	cmd := exec.Command(command)
	cmd.Env = append(os.Environ(), workerEnv+"="+protocolVersion)
	cmd.WaitDelay = time.Second
	w := &worker{cmd: cmd, stderr: &headBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = w.stderr
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = child.Start(cmd, func(err error) {
		w.waitErr = err
		close(w.exited)
	})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("starting a decoding worker: %w", err)
	}
	w.in, w.outFile, w.out = inW, outR, bufio.NewReaderSize(watchedPipe{outR}, 1<<16)
	return w, nil
}

// stallLimit is how long a worker may send nothing while its output is awaited before it is taken
// for hung: decoding starts in milliseconds, so minutes of silence are a hang, not a slow file.
var stallLimit = 2 * time.Minute

// watchedPipe is a worker's output, whose reads fail with os.ErrDeadlineExceeded after stallLimit
// without a byte. The limit runs only during a read: a worker blocked on a full pipe, as we have not
// read, is never taken for a hung one.
type watchedPipe struct{ f *os.File }

func (p watchedPipe) Read(b []byte) (int, error) {
	if err := p.f.SetReadDeadline(time.Now().Add(stallLimit)); err != nil {
		return 0, err
	}
	return p.f.Read(b)
}

func (w *worker) request(path string) error {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(path)))
	_, err := w.in.Write(append(b, path...))
	return err
}

// kill ends the worker at once and waits for it.
func (w *worker) kill() {
	w.killOnce.Do(func() {
		w.cmd.Process.Kill()
		w.in.Close()
		<-w.exited
		w.outFile.Close()
	})
}

// headBuffer keeps the first bytes written to it: a worker's first words on a crash say most.
type headBuffer struct {
	mu   sync.Mutex
	head []byte
}

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := 1<<10 - len(b.head); n > 0 {
		b.head = append(b.head, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (b *headBuffer) firstLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	line, _, _ := strings.Cut(strings.TrimSpace(string(b.head)), "\n")
	return strings.TrimSpace(line)
}
