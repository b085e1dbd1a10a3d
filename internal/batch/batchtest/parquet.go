package batchtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// ParquetFile is a Parquet file as hyparquet (npm), an implementation independent of the one that
// wrote it, reads it.
type ParquetFile struct {
	Name      string            `json:"name"` // base name
	RowGroups int               `json:"row_groups"`
	Metadata  map[string]string `json:"metadata"` // key-value metadata
	Rows      []ParquetRow      `json:"rows"`
}

// ParquetRow is a row: column name to its JSON value, lists of float as the hex of their bytes.
type ParquetRow map[string]json.RawMessage

// readerDir holds the reader script and its pinned packages, which `make setup` installs.
func readerDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "parquet-reader")
}

// ReadParquet reads files with hyparquet, run by node.
func ReadParquet(tb testing.TB, files ...string) []ParquetFile {
	tb.Helper()
	dir := readerDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "hyparquet")); err != nil {
		tb.Fatalf("the Parquet reader's packages are not installed (%v): run make setup, or npm ci in %s", err, dir)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("node", append([]string{filepath.Join(dir, "read.mjs")}, files...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("node read.mjs: %v\n%s", err, stderr.String())
	}
	var parsed []ParquetFile
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, len(out)+1)
	for sc.Scan() {
		var f ParquetFile
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			tb.Fatalf("node read.mjs output: %v", err)
		}
		parsed = append(parsed, f)
	}
	return parsed
}

// String is a string column's value.
func (r ParquetRow) String(tb testing.TB, col string) string {
	var s string
	r.decode(tb, col, &s)
	return s
}

// Int is an integer column's value.
func (r ParquetRow) Int(tb testing.TB, col string) int {
	var n int
	r.decode(tb, col, &n)
	return n
}

// Float is a floating-point column's value.
func (r ParquetRow) Float(tb testing.TB, col string) float64 {
	var f float64
	r.decode(tb, col, &f)
	return f
}

// Ints is a list of integers.
func (r ParquetRow) Ints(tb testing.TB, col string) []int {
	var v []int
	r.decode(tb, col, &v)
	return v
}

// Float32s is a list of float, bit for bit; nil when the value is null or absent.
func (r ParquetRow) Float32s(tb testing.TB, col string) []float32 {
	tb.Helper()
	var s *string
	r.decode(tb, col, &s)
	if s == nil {
		return nil
	}
	b, err := hex.DecodeString(*s)
	if err != nil || len(b)%4 != 0 {
		tb.Fatalf("column %s: not float32 bytes: %q", col, *s)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func (r ParquetRow) decode(tb testing.TB, col string, v any) {
	tb.Helper()
	raw, ok := r[col]
	if !ok {
		raw = json.RawMessage("null")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("column %s = %s: %v", col, raw, err)
	}
}
