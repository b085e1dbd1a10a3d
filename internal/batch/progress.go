package batch

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress reports a run on a writer (standard error): on a terminal a progress bar (mpb) followed
// by the files done, clips/s, failures and ETA, redrawn in place; elsewhere (a log file, a pod's
// log) a plain line every interval. Messages (warnings, failures) go through it: on a terminal mpb
// prints them above the bar, so that they do not tear it.
type progress struct {
	w        io.Writer
	terminal bool

	mu                                  sync.Mutex
	start                               time.Time
	total, done, failed, skipped, clips int
	bars                                *mpb.Progress // on a terminal, between begin and finish
	bar                                 *mpb.Bar
	stop, stopped                       chan struct{} // the plain line's ticker
}

// barWidth is the width of the bar itself; the status line follows it, in the terminal's width, or
// lineWidth where mpb cannot ask (a writer that is not the terminal's file).
const barWidth, lineWidth = 30, 120

// begin starts the display of a run started at start, refreshed every interval.
func (p *progress) begin(start time.Time, interval time.Duration) {
	p.mu.Lock()
	p.start = start
	p.mu.Unlock()
	switch {
	case p.terminal && p.total == 0: // every input was skipped: no bar to draw
	case p.terminal:
		// ForceTTY and WithAutoRefresh: the caller has decided that w is a terminal (it may wrap
		// one). The lock is not held while mpb starts: its drawing takes it.
		bars := mpb.New(mpb.WithOutput(p.w), mpb.ForceTTY(), mpb.WithAutoRefresh(), mpb.WithRefreshRate(interval), mpb.WithWidth(lineWidth))
		bar := bars.AddBar(int64(p.total), mpb.BarWidth(barWidth), mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.line()
		})))
		p.mu.Lock()
		p.bars, p.bar = bars, bar
		p.mu.Unlock()
	default:
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.every(interval, p.stop, p.stopped)
	}
}

// every writes the plain line each interval until stop is closed, then closes stopped.
func (p *progress) every(interval time.Duration, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			io.WriteString(p.w, p.line()+"\n")
			p.mu.Unlock()
		case <-stop:
			return
		}
	}
}

func (p *progress) logf(format string, args ...any) {
	msg := fmt.Sprintf(format+"\n", args...)
	p.mu.Lock()
	bars := p.bars
	if bars == nil {
		defer p.mu.Unlock()
		io.WriteString(p.w, msg)
		return
	}
	// Not holding p.mu: mpb may be drawing the bar, which takes it.
	p.mu.Unlock()
	if _, err := io.WriteString(bars, msg); errors.Is(err, mpb.ErrDone) {
		p.mu.Lock()
		defer p.mu.Unlock()
		io.WriteString(p.w, msg)
	}
}

// add counts a file finished with clips vectors, or failed.
func (p *progress) add(clips int, failed bool) {
	p.mu.Lock()
	p.done++
	p.clips += clips
	if failed {
		p.failed++
	}
	bar := p.bar
	p.mu.Unlock()
	if bar != nil {
		bar.Increment()
	}
}

// finish stops the display, leaving the bar as it was last drawn: the run's summary follows.
func (p *progress) finish() {
	p.mu.Lock()
	bars, bar, stop, stopped := p.bars, p.bar, p.stop, p.stopped
	p.bars, p.bar, p.stop = nil, nil, nil
	p.mu.Unlock()
	if bars != nil {
		bar.Abort(false) // a no-op once complete; otherwise the bar stays where it stopped
		bars.Wait()
	}
	if stop != nil {
		close(stop)
		<-stopped
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
