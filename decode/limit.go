package decode

import (
	"errors"
	"fmt"
)

// ErrTooLong is wrapped by the error of a [Limit] source whose audio runs past its limit.
var ErrTooLong = errors.New("audio too long")

// Limit returns a Source yielding src's samples up to seconds of audio, and an error wrapping
// [ErrTooLong] (naming the source) instead of any sample beyond: a small compressed file that decodes
// to hours is refused once the limit is passed, having decoded no more than that. The result can be
// [Split] when src can; closing it closes src. A nil src gives a Source whose Read fails.
func Limit(src Source, seconds float64) Source { return Watch(src, seconds, nil) }

// Watch is Limit that also calls read, when not nil, after each read that yields audio, with the
// frames yielded so far and the channels a frame holds (1 for a source that cannot be Split): an
// account of how much audio an encoded input holds, as it is decoded (a server's queue, which knows
// only the input's size in bytes before). read runs on the reading goroutine.
func Watch(src Source, seconds float64, read func(frames int64, channels int)) Source {
	if src == nil { // no error to return: Read returns it
		src = &memSource[float64]{mixer: mixer{channels: 1}, err: failed("", errors.New("nil Source"))}
	}
	l := limit{max: int64(seconds * float64(src.SampleRate())), seconds: seconds, name: "audio", read: read, channels: 1}
	if s, ok := src.(interleaved); ok {
		l.name, l.channels = s.Name(), s.channelCount()
		return &limitedFrames{s, l}
	}
	return &limited{src, l}
}

// limit counts the frames a source has yielded.
type limit struct {
	n, max   int64
	seconds  float64
	name     string
	read     func(frames int64, channels int)
	channels int
}

// add counts n more frames, failing past the limit.
func (l *limit) add(n int) error {
	if l.n += int64(n); l.n > l.max {
		return failed(l.name, fmt.Errorf("%w: more than the limit of %g s", ErrTooLong, l.seconds))
	}
	if l.read != nil && n > 0 {
		l.read(l.n, l.channels)
	}
	return nil
}

type limited struct {
	Source
	limit
}

func (s *limited) Read(p []float64) (int, error) {
	n, err := s.Source.Read(p)
	if lerr := s.add(n); lerr != nil {
		return 0, lerr
	}
	return n, err
}

// limitedFrames limits a source of this package, counting frames whether they are read mixed (Read)
// or by channel (Split's frames).
type limitedFrames struct {
	interleaved
	limit
}

func (s *limitedFrames) Read(p []float64) (int, error) {
	n, err := s.interleaved.Read(p)
	if lerr := s.add(n); lerr != nil {
		return 0, lerr
	}
	return n, err
}

func (s *limitedFrames) frames(limit int) ([]float64, error) {
	f, err := s.interleaved.frames(limit)
	if lerr := s.add(len(f) / s.channelCount()); lerr != nil {
		return nil, lerr
	}
	return f, err
}
