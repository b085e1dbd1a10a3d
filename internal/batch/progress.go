package batch

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress reports a run on a writer (standard error): on a terminal a single line redrawn in place,
// elsewhere (a log file, a pod's log) a plain line every interval. Messages (warnings, failures) go
// through it so that they do not tear the line.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	start    time.Time
	drawn    bool // a terminal line is on screen

	total, done, failed, skipped, clips int
}

const clearLine = "\r\x1b[K"

func (p *progress) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		io.WriteString(p.w, clearLine)
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.drawn {
		io.WriteString(p.w, p.line())
	}
}

// add counts a file finished with clips vectors, or failed.
func (p *progress) add(clips int, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.clips += clips
	if failed {
		p.failed++
	}
}

// show writes the line: redrawn on a terminal, appended otherwise.
func (p *progress) show() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		io.WriteString(p.w, clearLine+p.line())
		p.drawn = true
		return
	}
	io.WriteString(p.w, p.line()+"\n")
}

// finish clears the terminal line: the run's summary follows.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		io.WriteString(p.w, clearLine)
		p.drawn = false
	}
}

// every shows the line each interval until stop is closed.
func (p *progress) every(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.show()
		case <-stop:
			return
		}
	}
}

// line is "12/40 files (1 failed, 3 skipped), 530 clips, 41.2 clips/s, ETA 1m5s"; p.mu is held.
func (p *progress) line() string {
	elapsed := time.Since(p.start)
	s := fmt.Sprintf("%d/%d files", p.done, p.total)
	switch {
	case p.failed > 0 && p.skipped > 0:
		s += fmt.Sprintf(" (%d failed, %d skipped)", p.failed, p.skipped)
	case p.failed > 0:
		s += fmt.Sprintf(" (%d failed)", p.failed)
	case p.skipped > 0:
		s += fmt.Sprintf(" (%d skipped: output exists)", p.skipped)
	}
	s += fmt.Sprintf(", %d clips, %.1f clips/s", p.clips, float64(p.clips)/max(elapsed.Seconds(), 1e-3))
	if p.done > 0 && p.done < p.total {
		eta := time.Duration(float64(elapsed) * float64(p.total-p.done) / float64(p.done))
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}
