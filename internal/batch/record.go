package batch

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
)

// Settings are what decide the numbers in the outputs. A run refuses an output folder whose earlier
// runs had other settings (unless told to overwrite): their files would be skipped as done. Format
// and Pool are recorded but not compared: they choose which files are written, not their numbers.
type Settings struct {
	WeightsSHA256 string  `json:"weights_sha256"`
	PCASHA256     string  `json:"pca_sha256,omitempty"`
	Variant       string  `json:"variant"`
	Postprocess   string  `json:"postprocess"`
	Hop           float64 `json:"hop_seconds"`
	Tail          string  `json:"tail"`
	Channels      string  `json:"channels"`
	Resampler     string  `json:"resampler"`
	Precision     string  `json:"precision"` // the network's arithmetic; empty (and records older than it) is fp32
	Format        Format  `json:"format"`
	DType         string  `json:"dtype"`
	Pool          Pool    `json:"pool,omitempty"`
}

// Record describes a run; it is written beside its outputs (RecordName) when the run starts and
// again when it ends. The caller fills in the model's side; Run fills in the rest.
type Record struct {
	Settings    Settings `json:"settings"`
	WeightsPath string   `json:"weights_path"`
	PCAPath     string   `json:"pca_path,omitempty"`
	VggishGo    string   `json:"vggish_go"`
	Libtorch    string   `json:"libtorch"`
	Gotch       string   `json:"gotch"`
	Go          string   `json:"go"`
	Device      string   `json:"device"`
	BatchSize   int      `json:"batch_size"`
	Threads     int      `json:"threads"`
	Args        []string `json:"args,omitempty"`

	// Filled in by Run.
	Host     string     `json:"host"`
	Workers  int        `json:"workers"`
	Shard    string     `json:"shard,omitempty"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	Inputs   int        `json:"inputs"`
	Embedded int        `json:"embedded"`
	Skipped  int        `json:"skipped"`
	Failed   int        `json:"failed"`
	Clips    int        `json:"clips"`
}

// RecordName and ErrorsName are the file names of a run's record and failure list in its output
// folder: vggish-run.json and vggish-errors.jsonl, or for a shard vggish-run.3-of-8.json and
// vggish-errors.3-of-8.jsonl, so that the processes of a sharded job do not write the same files.
func RecordName(s Shard) string { return "vggish-run" + shardSuffix(s) + ".json" }

// ErrorsName: see RecordName.
func ErrorsName(s Shard) string { return "vggish-errors" + shardSuffix(s) + ".jsonl" }

func shardSuffix(s Shard) string {
	if s.Whole() {
		return ""
	}
	return fmt.Sprintf(".%d-of-%d", s.Index, s.Count)
}

func writeRecord(path string, r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("run record %s: %w", path, err)
	}
	return writeAtomic(path, append(b, '\n'))
}

// checkSettings returns an error naming the first run record in dir whose settings differ from s.
func checkSettings(dir string, s Settings) error {
	s.Format, s.Pool = "", ""
	s.Precision = cmp.Or(s.Precision, "fp32")
	names, err := filepath.Glob(filepath.Join(dir, "vggish-run*.json"))
	if err != nil {
		return err
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("run record %s: %w", name, err)
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("run record %s: %w", name, err)
		}
		r.Settings.Format, r.Settings.Pool = "", ""
		r.Settings.Precision = cmp.Or(r.Settings.Precision, "fp32") // recorded before there was a choice
		if r.Settings != s {
			return fmt.Errorf("%s holds outputs made with other settings (%s: %s); rerun with --overwrite to replace them, or use another output folder",
				dir, filepath.Base(name), r.Settings.Diff(s))
		}
	}
	return nil
}

// Diff lists the fields that differ from now's: "variant torchvggish, now towhee".
func (was Settings) Diff(now Settings) string {
	a, b := reflect.ValueOf(was), reflect.ValueOf(now)
	var diffs []string
	for i := range a.NumField() {
		if x, y := a.Field(i).Interface(), b.Field(i).Interface(); x != y {
			name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("json"), ",")
			diffs = append(diffs, fmt.Sprintf("%s %v, now %v", name, x, y))
		}
	}
	return strings.Join(diffs, "; ")
}

// removeIfExists deletes path; a missing file is not an error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
