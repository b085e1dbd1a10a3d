package batch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
//
// A sharded run also shares its shard count's lock, countLockName(N), and then probes every other
// count's with an exclusive lock: held, it is a job of another count, whose shards split the inputs
// otherwise, and the run is refused. Taking its own before probing means that of two runs of
// different counts starting together at least one sees the other; the shards of one job never probe
// each other's.
const folderLockName = ".vggish.lock"

// countLockName is the lock file shared by the shards of a job of n shards (not a holderName: busy
// reads no holder from it).
func countLockName(n int) string { return countLockPrefix + strconv.Itoa(n) + ".lock" }

const countLockPrefix = ".vggish-shards-"

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

// dirLock is an output folder held by this run; count is nil for an unsharded run.
type dirLock struct{ folder, count, shard *flock.Flock }

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
	if err == nil && ok && !s.Whole() {
		l.count = flock.New(filepath.Join(dir, countLockName(s.Count)))
		if ok, err = l.count.TryRLock(); err == nil && ok {
			var other string
			other, err = otherCount(dir, s.Count)
			if ok = other == ""; !ok {
				holders = ".vggish-run.*-of-" + other + ".lock" // in the way: the shards of another count
			}
		}
	}
	if err == nil && ok {
		if ok, err = l.shard.TryLock(); err == nil && !ok {
			holders = holderName(s) // in the way: the same shard
		}
	}
	if err != nil || !ok {
		l.unlock()
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

// otherCount returns a shard count other than n whose lock in dir is held, or "" if none is: it
// probes each with an exclusive lock, released at once.
func otherCount(dir string, n int) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, countLockPrefix+"*.lock"))
	if err != nil {
		return "", err
	}
	for _, name := range names {
		if filepath.Base(name) == countLockName(n) {
			continue
		}
		probe := flock.New(name)
		free, err := probe.TryLock()
		probe.Close()
		if err != nil {
			return "", err
		}
		if !free {
			return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), countLockPrefix), ".lock"), nil
		}
	}
	return "", nil
}

// unlock releases the folder; nil does nothing.
func (l *dirLock) unlock() {
	if l != nil {
		l.shard.Unlock()
		if l.count != nil {
			l.count.Unlock()
		}
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
