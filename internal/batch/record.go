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
	"slices"
	"strings"
	"time"
)

// Settings are what decide the numbers in the outputs. A run refuses an output folder whose earlier
// runs had other settings (unless told to overwrite): their files would be skipped as done (see
// checkSettings). Format chooses which files are written, not their numbers. Pool is compared where
// the files hold it (npz, jsonl, csv); in npy it is a file of its own, written where it is missing,
// and the parts of a Parquet folder must agree on Pool and DType.
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
	// BLAS is the library libtorch's products run on, with its kernels (torch.BLAS): with the
	// libtorch build and the CPU, what the outputs' last bits depend on.
	BLAS      string   `json:"blas"`
	Gotch     string   `json:"gotch"`
	Go        string   `json:"go"`
	Device    string   `json:"device"`
	BatchSize int      `json:"batch_size"`
	Threads   int      `json:"threads"`
	Args      []string `json:"args,omitempty"`
	// Workers is the decoders at once, as given (--workers) or by default.
	Workers int `json:"workers"`

	// Filled in by Run.
	Host string `json:"host"`
	// FilesInFlight bounds the inputs open at once: the embedder's capacity, bounded by the open-file
	// limit.
	FilesInFlight int        `json:"files_in_flight"`
	Shard         string     `json:"shard,omitempty"`
	Started       time.Time  `json:"started"`
	Finished      *time.Time `json:"finished,omitempty"`
	Inputs        int        `json:"inputs"`
	Embedded      int        `json:"embedded"`
	Skipped       int        `json:"skipped"`
	Failed        int        `json:"failed"`
	Clips         int        `json:"clips"`
	// Parts lists the Parquet parts of this shard, its earlier runs' included, each with the inputs
	// it holds; a part is rewritten into the record as it is committed.
	Parts []Part `json:"parts,omitempty"`
	// Others keeps the settings of the outputs of other formats that earlier runs left in the folder:
	// a run that overwrites one format's outputs with new settings must not make the others look as
	// if they had them too.
	Others []Settings `json:"other_formats,omitempty"`
	// Replacing keeps, per format, the settings of the outputs that an --overwrite with other settings
	// has not replaced yet: set when such a run starts, cleared when one ends having redone every
	// input. Until then a run without --overwrite is refused: it would skip the old outputs as done.
	Replacing []Settings `json:"replacing,omitempty"`
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

// namedRecord is a run record read from an output folder; name is its file's base name.
type namedRecord struct {
	name string
	rec  Record
}

// readRecords reads the run records in dir (of every shard), in name order.
func readRecords(dir string) ([]namedRecord, error) {
	names, err := filepath.Glob(filepath.Join(dir, "vggish-run*.json"))
	if err != nil {
		return nil, err
	}
	recs := make([]namedRecord, len(names))
	for i, name := range names {
		b, err := os.ReadFile(name)
		if err == nil {
			err = json.Unmarshal(b, &recs[i].rec)
		}
		if err != nil {
			return nil, fmt.Errorf("run record %s: %w", name, err)
		}
		recs[i].name = filepath.Base(name)
	}
	return recs, nil
}

// made is the settings of one format's outputs, as the run record named record holds them.
type made struct {
	record string
	s      Settings
}

// madeIn lists the settings of the outputs in the run records recs: of every format, and of format f.
func madeIn(recs []namedRecord, f Format) (all, same []made) {
	for _, r := range recs {
		for _, got := range append([]Settings{r.rec.Settings}, r.rec.Others...) {
			all = append(all, made{r.name, got})
			if got.Format == f {
				same = append(same, made{r.name, got})
			}
		}
	}
	return all, same
}

// checkSettings returns an error naming the first of the run records recs in dir whose settings
// differ from s, a run's in format s.Format. Where the folder holds outputs of that format, their
// settings are compared, pool included where the files hold it: they are the files the run skips as
// done; the other formats' may differ after an --overwrite (Record.Others). Otherwise the settings of
// every format are, so that a folder's outputs agree unless told otherwise. An --overwrite of that
// format that was interrupted (Record.Replacing) left outputs of its old settings: they are refused too.
func checkSettings(dir string, recs []namedRecord, s Settings) error {
	all, same := madeIn(recs, s.Format)
	if len(same) > 0 {
		all = same
	}
	for _, m := range all {
		if diff := diffSettings(m.s, s); diff != "" {
			return fmt.Errorf("%s holds outputs made with other settings (%s, format %s: %s); rerun with --overwrite to replace them, or use another output folder",
				dir, m.record, m.s.Format, diff)
		}
	}
	for _, r := range recs {
		for _, old := range r.rec.Replacing {
			if old.Format == s.Format {
				return fmt.Errorf("%s holds outputs of an --overwrite that was interrupted (%s, format %s: %s), some of them still with the old settings; rerun with --overwrite to replace them, or use another output folder",
					dir, r.name, old.Format, diffSettings(old, s))
			}
		}
	}
	return nil
}

// diffSettings is got.Diff(now) over the settings that decide the numbers in the outputs of format
// now.Format, got being those of outputs of format got.Format: "" where they agree.
func diffSettings(got, now Settings) string {
	if got.Format != now.Format || !poolInFile(now.Format) {
		got.Pool, now.Pool = "", ""
	}
	got.Format, now.Format = "", ""
	got.Precision = cmp.Or(got.Precision, "fp32") // recorded before there was a choice
	now.Precision = cmp.Or(now.Precision, "fp32")
	return got.Diff(now)
}

// replacing is what the record of an --overwrite run with settings s keeps in Record.Replacing, was
// being its shard's until now: was, with the settings of the outputs of format s.Format that the run
// replaces where they differ from s, unless was holds those of an earlier, interrupted one. Parquet
// parts are removed before any is written (see prepareParts): no old one is left to record.
func replacing(recs []namedRecord, was []Settings, s Settings) []Settings {
	if s.Format == Parquet || slices.ContainsFunc(was, func(w Settings) bool { return w.Format == s.Format }) {
		return was
	}
	_, same := madeIn(recs, s.Format)
	for _, m := range same {
		if diffSettings(m.s, s) != "" {
			return append(was, m.s)
		}
	}
	return was
}

// poolInFile reports whether the files of format f hold the pooled vector: a run with another pool
// would skip files that lack it. NPY writes it to a file of its own, and Parquet checks its parts'.
func poolInFile(f Format) bool { return f == NPZ || f == JSONL || f == CSV }

// others is what the record of a run in format f keeps of the record it replaces, was: the
// settings of every other format's outputs.
func others(was *Record, f Format) []Settings {
	if was == nil {
		return nil
	}
	var kept []Settings
	for _, s := range append([]Settings{was.Settings}, was.Others...) {
		if s.Format != f && s.Format != "" && !slices.ContainsFunc(kept, func(k Settings) bool { return k.Format == s.Format }) {
			kept = append(kept, s)
		}
	}
	return kept
}

// Diff lists the fields that differ from now's: "variant torchvggish, now towhee".
func (was Settings) Diff(now Settings) string {
	a, b := reflect.ValueOf(was), reflect.ValueOf(now)
	var diffs []string
	for i := range a.NumField() {
		if x, y := a.Field(i).Interface(), b.Field(i).Interface(); x != y {
			name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("json"), ",")
			diffs = append(diffs, fmt.Sprintf("%s %s, now %s", name, orNone(x), orNone(y)))
		}
	}
	return strings.Join(diffs, "; ")
}

// orNone formats a setting's value, "none" for an empty one (no pool, no PCA).
func orNone(v any) string {
	return cmp.Or(fmt.Sprint(v), "none")
}

// removeIfExists deletes path; a missing file is not an error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
