package batch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// An output folder has one writer: two runs writing the same files would leave outputs written twice
// or missing, each run believing its own record. A run takes two flock(2) locks there for its lifetime
// (released by the kernel however the process ends):
//
//   - the folder's, folderLockName: exclusive for an unsharded run, shared by the shards of a job, so
//     that the shards run side by side but no unsharded run with them;
//   - its shard's, holderName(shard) (an unsharded run is the shard ""), exclusive, holding who took
//     it (a holder as JSON), so that a refused run can name the one in the way.
const folderLockName = ".vggish.lock"

// holderName is the lock file of a shard's writer, beside its run record.
func holderName(s Shard) string { return ".vggish-run" + shardSuffix(s) + ".lock" }

// isLockName reports whether name is one of the lock files of an output folder.
func isLockName(name string) bool {
	return strings.HasPrefix(name, ".vggish") && strings.HasSuffix(name, ".lock")
}

// holder says who holds an output folder.
type holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Shard   string    `json:"shard,omitempty"`
	Args    []string  `json:"args"`
}

func (h holder) String() string {
	s := fmt.Sprintf("pid %d on %s, started %s", h.PID, h.Host, h.Started.Format(time.RFC3339))
	if h.Shard != "" {
		s += ", shard " + h.Shard
	}
	return s + ": " + strings.Join(h.Args, " ")
}

// dirLock is an output folder held by this run.
type dirLock struct{ folder, shard *flock.Flock }

// lockOutDir takes the locks of shard s of the output folder dir (created if missing), or says which
// runs hold it.
func lockOutDir(dir string, s Shard) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	l := &dirLock{folder: flock.New(filepath.Join(dir, folderLockName)), shard: flock.New(filepath.Join(dir, holderName(s)))}
	var ok bool
	var err error
	if s.Whole() {
		ok, err = l.folder.TryLock()
	} else {
		ok, err = l.folder.TryRLock()
	}
	holders := ".vggish-run*.lock" // in the way: any other run
	if err == nil && ok {
		if ok, err = l.shard.TryLock(); err != nil || !ok {
			l.folder.Unlock()
			holders = holderName(s) // in the way: the same shard
		}
	}
	if err != nil {
		return nil, fmt.Errorf("output folder %s: lock: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("output folder %s is being written by another run (%s): one run writes a folder at a time (the shards of a job each their own part); wait for it to end, or use another folder",
			dir, busy(dir, holders))
	}
	host, _ := os.Hostname()
	b, err := json.Marshal(holder{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second), Shard: s.String(), Args: escapeAll(os.Args)})
	if err == nil {
		err = os.WriteFile(l.shard.Path(), append(b, '\n'), 0o644)
	}
	if err != nil {
		l.unlock()
		return nil, fmt.Errorf("output folder %s: lock: %w", dir, err)
	}
	return l, nil
}

// unlock releases the folder; nil does nothing.
func (l *dirLock) unlock() {
	if l != nil {
		l.shard.Unlock()
		l.folder.Unlock()
	}
}

// busy describes the runs holding dir: those whose shard lock, of those matching pattern, is taken.
func busy(dir, pattern string) string {
	names, _ := filepath.Glob(filepath.Join(dir, pattern))
	var held []string
	for _, name := range names {
		probe := flock.New(name)
		free, err := probe.TryRLock()
		probe.Close()
		if err != nil || free {
			continue // left by a run that ended
		}
		var h holder
		if b, err := os.ReadFile(name); err == nil && json.Unmarshal(b, &h) == nil {
			held = append(held, h.String())
		} else {
			held = append(held, filepath.Base(name))
		}
	}
	if len(held) == 0 {
		return "one that has not said who it is yet"
	}
	return strings.Join(held, "; ")
}
