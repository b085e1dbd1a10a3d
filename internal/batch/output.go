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

	"github.com/vggish-go/vggish/internal/atomicfile"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/vggish"
)

// Format is how embeddings are written.
type Format string

const (
	// Show prints one line per file the way a Towhee pipeline's show() does (standard output only):
	// "PATH [v0, v1, ...] shape=(N, 128)".
	Show Format = "show"
	// NPY writes a float32 (or uint8) NumPy array of shape (N, 128) per file.
	NPY Format = "npy"
	// JSONL writes a JSON record per file: path, sample_rate, duration, shape, starts (seconds),
	// embeddings (a list of rows) and, with a pool, "mean" or "max".
	JSONL Format = "jsonl"
	// CSV writes a row per clip: path,start,v0,...,v127 (with a header).
	CSV Format = "csv"
	// Parquet writes the clips of many files into each part (output folders only; see Part).
	Parquet Format = "parquet"
)

// Formats lists the formats that write files.
var Formats = []Format{NPY, JSONL, CSV, Parquet}

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

// jsonRecord is a JSONL line: one file's embeddings.
type jsonRecord struct {
	Path       string      `json:"path"`
	SampleRate int         `json:"sample_rate"`
	Duration   float64     `json:"duration"`
	Shape      [2]int      `json:"shape"`
	Starts     []float64   `json:"starts"`
	Embeddings [][]float32 `json:"embeddings"`
	Mean       *[]float32  `json:"mean,omitempty"`
	Max        *[]float32  `json:"max,omitempty"`
}

func encodeJSONL(w io.Writer, path string, e *vggish.Embeddings, pool Pool) error {
	r := jsonRecord{Path: path, SampleRate: e.SampleRate, Duration: e.Duration, Shape: [2]int{e.Rows(), vggish.EmbeddingSize},
		Starts: e.Starts, Embeddings: make([][]float32, e.Rows())}
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

// csvHeader is path,start,v0,...,v127.
func csvHeader() []string {
	h := []string{"path", "start"}
	for i := range vggish.EmbeddingSize {
		h = append(h, "v"+strconv.Itoa(i))
	}
	return h
}

// writeCSV writes a row per clip, then with a pool a row whose start column is the pool's name.
func writeCSV(w *csv.Writer, path string, e *vggish.Embeddings, pool Pool) error {
	row := func(start string, v []float32) error {
		rec := append(make([]string, 0, 2+len(v)), path, start)
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
		if err := row(string(pool), v); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// showLine is the Towhee show() line of a file, and with a pool a second line for the pooled vector.
func showLine(path string, e *vggish.Embeddings, pool Pool) string {
	s := path + " " + e.String() + "\n"
	if v := pool.of(e); v != nil {
		s += fmt.Sprintf("%s %s=[%v, %v, ...] shape=(%d,)\n", path, pool, v[0], v[1], len(v))
	}
	return s
}

// writeFiles writes a file's outputs: main in format, and for NPY with a pool the pooled vector to
// poolPath, a float32 (128,) array ((0,) for a file without clips).
func writeFiles(main, poolPath string, format Format, pool Pool, asUint8 bool, in Input, e *vggish.Embeddings) error {
	if err := os.MkdirAll(filepath.Dir(main), 0o755); err != nil {
		return fmt.Errorf("output %s: %w", main, err)
	}
	switch format {
	case NPY:
		if asUint8 {
			q, err := e.Uint8()
			if err != nil {
				return fmt.Errorf("output %s: %w", main, err)
			}
			if err := npyfile.Write(main, q, e.Rows(), vggish.EmbeddingSize); err != nil {
				return err
			}
		} else if err := npyfile.Write(main, e.Data, e.Rows(), vggish.EmbeddingSize); err != nil {
			return err
		}
		if pool != NoPool {
			v := pool.of(e)
			if v == nil {
				v = []float32{}
			}
			return npyfile.Write(poolPath, v, len(v))
		}
		return nil
	case JSONL:
		var b bytes.Buffer
		if err := encodeJSONL(&b, in.Path, e, pool); err != nil {
			return fmt.Errorf("output %s: %w", main, err)
		}
		return writeAtomic(main, b.Bytes())
	case CSV:
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		if err := w.Write(csvHeader()); err != nil {
			return fmt.Errorf("output %s: %w", main, err)
		}
		if err := writeCSV(w, in.Path, e, pool); err != nil {
			return fmt.Errorf("output %s: %w", main, err)
		}
		return writeAtomic(main, b.Bytes())
	}
	return fmt.Errorf("output %s: format %q", main, format)
}

// writeAtomic writes an output whole or not at all.
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	return nil
}
