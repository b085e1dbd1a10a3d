package batch

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vggish-go/vggish/internal/atomicfile"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/spec"
	"github.com/vggish-go/vggish/vggish"
)

// Format is how embeddings are written.
type Format string

const (
	// Show prints one line per file the way a Towhee pipeline's show() does (standard output only):
	// "PATH [v0, v1, ...] shape=(N, 128)".
	Show Format = "show"
	// NPY writes a float32 (or uint8) NumPy array of shape (N, 128) per file; (C, N, 128) for the
	// C streams of embeddings.Channels Each, so that x[c] is channel c's.
	NPY Format = "npy"
	// NPZ writes a NumPy archive per file, as OpenL3 does: "embedding" as NPY's array, "timestamps"
	// (each clip's start in seconds, float64 (N,)) and with a pool "mean" or "max".
	NPZ Format = "npz"
	// JSONL writes a JSON record per file: path (as text, EscapePath, as in every format),
	// sample_rate, duration, shape, starts (seconds), embeddings (a list of rows) and, with a pool,
	// "mean" or "max"; a record per channel, with "channel" and "channels", for the streams of Each.
	JSONL Format = "jsonl"
	// CSV writes a row per clip: path,start,v0,...,v127 (with a header); path,channel,start,... for
	// the streams of Each.
	CSV Format = "csv"
	// Parquet writes the clips of many files into each part (output folders only; see Part).
	Parquet Format = spec.Parquet
)

// Formats lists the formats that write files.
var Formats = []Format{NPY, NPZ, JSONL, CSV, Parquet}

// Pool is a per-file summary vector written beside the clips' vectors.
type Pool string

const (
	NoPool Pool = ""
	Mean   Pool = "mean"
	Max    Pool = "max"
)

func (p Pool) of(e *vggish.Embeddings) []float32 {
	switch p {
	case Mean:
		return e.Mean()
	case Max:
		return e.Max()
	}
	return nil
}

// jsonRecord is a JSONL line: one file's embeddings, or one channel's.
type jsonRecord struct {
	Path       string      `json:"path"`
	Channel    *int        `json:"channel,omitempty"`
	Channels   int         `json:"channels,omitempty"`
	SampleRate int         `json:"sample_rate"`
	Duration   float64     `json:"duration"`
	Shape      [2]int      `json:"shape"`
	Starts     []float64   `json:"starts"`
	Embeddings [][]float32 `json:"embeddings"`
	Mean       *[]float32  `json:"mean,omitempty"`
	Max        *[]float32  `json:"max,omitempty"`
}

// encodeJSONL writes a file's record, or a record per channel.
func encodeJSONL(w io.Writer, path string, e *vggish.Embeddings, pool Pool) error {
	return eachChannel(e, func(c *int, ch *vggish.Embeddings) error {
		return encodeRecord(w, path, c, e.Channels, ch, pool)
	})
}

func encodeRecord(w io.Writer, path string, channel *int, channels int, e *vggish.Embeddings, pool Pool) error {
	r := jsonRecord{Path: EscapePath(path), Channel: channel, Channels: channels, SampleRate: e.SampleRate, Duration: e.Duration,
		Shape: [2]int{e.Rows(), vggish.EmbeddingSize}, Starts: e.Starts, Embeddings: make([][]float32, e.Rows())}
	if r.Starts == nil {
		r.Starts = []float64{}
	}
	for i := range r.Embeddings {
		r.Embeddings[i] = e.Row(i)
	}
	v := pool.of(e) // null in the record when the file has no clips
	switch pool {
	case Mean:
		r.Mean = &v
	case Max:
		r.Max = &v
	}
	return json.NewEncoder(w).Encode(r)
}

// csvHeader is path,start,v0,...,v127, with a channel column after path for the streams of Each.
func csvHeader(channels bool) []string {
	h := []string{"path", "start"}
	if channels {
		h = []string{"path", "channel", "start"}
	}
	for i := range vggish.EmbeddingSize {
		h = append(h, "v"+strconv.Itoa(i))
	}
	return h
}

// writeCSV writes a row per clip, then with a pool a row whose start column is the pool's name; for
// the streams of Each, a channel's rows after another's.
func writeCSV(w *csv.Writer, path string, e *vggish.Embeddings, pool Pool) error {
	path = EscapePath(path)
	err := eachChannel(e, func(c *int, e *vggish.Embeddings) error {
		row := func(start string, v []float32) error {
			rec := append(make([]string, 0, 3+len(v)), path)
			if c != nil {
				rec = append(rec, strconv.Itoa(*c))
			}
			rec = append(rec, start)
			for _, x := range v {
				rec = append(rec, strconv.FormatFloat(float64(x), 'g', -1, 32))
			}
			return w.Write(rec)
		}
		for i := range e.Rows() {
			if err := row(strconv.FormatFloat(e.Starts[i], 'g', -1, 64), e.Row(i)); err != nil {
				return err
			}
		}
		if v := pool.of(e); v != nil {
			return row(string(pool), v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.Flush()
	return w.Error()
}

// showLine is the Towhee show() line of a file, and with a pool a second line for the pooled vector;
// for the streams of Each, a line (or two) per channel.
func showLine(path string, e *vggish.Embeddings, pool Pool) string {
	var b strings.Builder
	path = EscapePath(path)
	eachChannel(e, func(c *int, e *vggish.Embeddings) error {
		name := path
		if c != nil {
			name = fmt.Sprintf("%s channel %d", path, *c)
		}
		fmt.Fprintf(&b, "%s %s\n", name, e)
		if v := pool.of(e); v != nil {
			fmt.Fprintf(&b, "%s %s=[%v, %v, ...] shape=(%d,)\n", name, pool, v[0], v[1], len(v))
		}
		return nil
	})
	return b.String()
}

// eachChannel calls fn with e (and a nil channel) for one stream of vectors, or with each channel's
// stream and its index for the streams of Each.
func eachChannel(e *vggish.Embeddings, fn func(channel *int, e *vggish.Embeddings) error) error {
	if e.Channels == 0 {
		return fn(nil, e)
	}
	for c := range e.Channels {
		if err := fn(&c, e.Channel(c)); err != nil {
			return err
		}
	}
	return nil
}

// writeFiles writes a file's outputs: main in format, and for NPY with a pool the pooled vector to
// poolPath, a float32 (128,) array ((0,) for a file without clips; (C, 128) for the streams of Each).
func writeFiles(main, poolPath string, format Format, pool Pool, asUint8 bool, in Input, e *vggish.Embeddings) error {
	if err := os.MkdirAll(filepath.Dir(main), 0o755); err != nil {
		return fmt.Errorf("output %s: %w", main, err)
	}
	switch format {
	case NPY, NPZ:
		var q []uint8
		if asUint8 {
			var err error
			if q, err = e.Uint8(); err != nil {
				return fmt.Errorf("output %s: %w", main, err)
			}
		}
		shape := npyShape(e)
		var pooled []float32
		var poolShape []int
		if pool != NoPool {
			pooled, poolShape = pooledArray(e, pool)
		}
		if format == NPZ {
			z := npyfile.NewNPZ()
			if asUint8 {
				npyfile.Add(z, "embedding", q, shape...)
			} else {
				npyfile.Add(z, "embedding", e.Data, shape...)
			}
			timestamps := e.Starts
			if e.Channels > 0 {
				timestamps = e.Channel(0).Starts
			}
			npyfile.Add(z, "timestamps", timestamps, len(timestamps))
			if pool != NoPool {
				npyfile.Add(z, string(pool), pooled, poolShape...)
			}
			return z.Write(main)
		}
		var err error
		if asUint8 {
			err = npyfile.Write(main, q, shape...)
		} else {
			err = npyfile.Write(main, e.Data, shape...)
		}
		if err != nil || pool == NoPool {
			return err
		}
		return npyfile.Write(poolPath, pooled, poolShape...)
	case JSONL:
		var b bytes.Buffer
		if err := encodeJSONL(&b, in.Path, e, pool); err != nil {
			return fmt.Errorf("output %s: %w", main, err)
		}
		return writeAtomic(main, b.Bytes())
	case CSV:
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		if err := w.Write(csvHeader(e.Channels > 0)); err != nil {
			return fmt.Errorf("output %s: %w", main, err)
		}
		if err := writeCSV(w, in.Path, e, pool); err != nil {
			return fmt.Errorf("output %s: %w", main, err)
		}
		return writeAtomic(main, b.Bytes())
	}
	return fmt.Errorf("output %s: format %q", main, format)
}

// pooledArray is the pooled vector, (128,) or (0,) for a file without clips, or for the streams of
// Each one per channel, (C, 128) or (C, 0).
func pooledArray(e *vggish.Embeddings, pool Pool) ([]float32, []int) {
	if e.Channels == 0 {
		v := pool.of(e)
		return v, []int{len(v)}
	}
	var all []float32
	for c := range e.Channels {
		all = append(all, pool.of(e.Channel(c))...)
	}
	return all, []int{e.Channels, len(all) / e.Channels}
}

// npyShape is the shape of e's array: (N, 128), or (C, N, 128) for the streams of Each.
func npyShape(e *vggish.Embeddings) []int {
	if e.Channels > 0 {
		return []int{e.Channels, e.Rows() / e.Channels, vggish.EmbeddingSize}
	}
	return []int{e.Rows(), vggish.EmbeddingSize}
}

// encodeNPY writes e's array, float32 or quantised to uint8, in NPY format (to standard output).
func encodeNPY(w io.Writer, e *vggish.Embeddings, asUint8 bool) error {
	if asUint8 {
		q, err := e.Uint8()
		if err != nil {
			return err
		}
		return npyfile.Encode(w, q, npyShape(e)...)
	}
	return npyfile.Encode(w, e.Data, npyShape(e)...)
}

// writeAtomic writes an output whole or not at all.
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	return nil
}
