package batch

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Shard is one part of a batch split across Count processes (a Kubernetes Indexed Job, a Slurm job
// array). The zero value, like Count 1, is the whole batch.
//
// An input belongs to shard sha256(Rel) mod Count (the first 8 bytes of the hash, big-endian). The
// partition depends only on each file's own relative path, not on the rest of the list, so every
// process agrees on it even if their views of the inputs differ (files being added while the job
// runs), and a file keeps its shard when others are added.
type Shard struct {
	Index, Count int
}

// Environment variables ShardFromEnv reads.
const (
	EnvJobIndex       = "JOB_COMPLETION_INDEX" // set by Kubernetes in the pods of an Indexed Job
	EnvNumShards      = "VGGISH_NUM_SHARDS"
	EnvSlurmTaskID    = "SLURM_ARRAY_TASK_ID"
	EnvSlurmTaskMin   = "SLURM_ARRAY_TASK_MIN"
	EnvSlurmTaskCount = "SLURM_ARRAY_TASK_COUNT"
)

// Contains reports whether in belongs to the shard.
func (s Shard) Contains(in Input) bool {
	if s.Count <= 1 {
		return true
	}
	h := sha256.Sum256([]byte(in.Rel))
	return binary.BigEndian.Uint64(h[:8])%uint64(s.Count) == uint64(s.Index)
}

// Select returns the inputs of the shard, in order.
func (s Shard) Select(inputs []Input) []Input {
	var out []Input
	for _, in := range inputs {
		if s.Contains(in) {
			out = append(out, in)
		}
	}
	return out
}

// Whole reports whether the shard is the whole batch.
func (s Shard) Whole() bool { return s.Count <= 1 }

// String is "I/N", or "" for the whole batch.
func (s Shard) String() string {
	if s.Whole() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// ParseShard reads "I/N" with 0 <= I < N.
func ParseShard(v string) (Shard, error) {
	i, n, ok := strings.Cut(v, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT, e.g. 0/4", v)
	}
	index, err1 := strconv.Atoi(strings.TrimSpace(i))
	count, err2 := strconv.Atoi(strings.TrimSpace(n))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT, e.g. 0/4", v)
	}
	return newShard(index, count, "shard "+v)
}

func newShard(index, count int, what string) (Shard, error) {
	if count < 1 || index < 0 || index >= count {
		return Shard{}, fmt.Errorf("%s: want 0 <= index < count, got index %d of %d", what, index, count)
	}
	return Shard{Index: index, Count: count}, nil
}

// ShardFromEnv decides the shard of this process. flag ("I/N", may be empty) wins; numShards (0 if
// not given) is the shard count for an index taken from the environment:
//
//   - JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) with numShards or $VGGISH_NUM_SHARDS (the Job's
//     completions: Kubernetes does not pass it to the pod);
//   - SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN (0 if unset) with numShards, $VGGISH_NUM_SHARDS
//     or SLURM_ARRAY_TASK_COUNT. The array must be contiguous (--array=0-9, not 0-9:2).
//
// Without any of these the shard is the whole batch; a shard count (numShards or $VGGISH_NUM_SHARDS)
// above 1 without an index is an error. getenv is os.Getenv outside tests.
func ShardFromEnv(flag string, numShards int, getenv func(string) string) (Shard, error) {
	if flag != "" {
		s, err := ParseShard(flag)
		if err == nil && numShards > 0 && numShards != s.Count {
			err = fmt.Errorf("shard %s disagrees with %d shards", flag, numShards)
		}
		return s, err
	}
	count := func(indexEnv, fallback string) (int, error) {
		if numShards > 0 {
			return numShards, nil
		}
		for _, env := range []string{EnvNumShards, fallback} {
			if v := getenv(env); env != "" && v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return 0, fmt.Errorf("%s=%q: not a number", env, v)
				}
				return n, nil
			}
		}
		return 0, fmt.Errorf("%s is set but the number of shards is not: give --num-shards or set %s", indexEnv, EnvNumShards)
	}
	index := func(env string) (int, error) {
		n, err := strconv.Atoi(getenv(env))
		if err != nil {
			return 0, fmt.Errorf("%s=%q: not a number", env, getenv(env))
		}
		return n, nil
	}
	var idx, n int
	var err error
	switch {
	case getenv(EnvJobIndex) != "":
		if idx, err = index(EnvJobIndex); err == nil {
			n, err = count(EnvJobIndex, "")
		}
	case getenv(EnvSlurmTaskID) != "":
		idx, err = index(EnvSlurmTaskID)
		if err == nil && getenv(EnvSlurmTaskMin) != "" {
			var lo int
			lo, err = index(EnvSlurmTaskMin)
			idx -= lo
		}
		if err == nil {
			n, err = count(EnvSlurmTaskID, EnvSlurmTaskCount)
		}
	case numShards > 1:
		return Shard{}, fmt.Errorf("%d shards but no shard index: give --shard I/N, or run in a Kubernetes Indexed Job (%s) or a Slurm array (%s)", numShards, EnvJobIndex, EnvSlurmTaskID)
	case getenv(EnvNumShards) != "" && getenv(EnvNumShards) != "1":
		// Every process of a job that is not indexed would write everything.
		return Shard{}, fmt.Errorf("%s=%s but no shard index: give --shard I/N, or run in a Kubernetes Indexed Job (%s; completionMode: Indexed) or a Slurm array (%s)",
			EnvNumShards, getenv(EnvNumShards), EnvJobIndex, EnvSlurmTaskID)
	default:
		return Shard{}, nil
	}
	if err != nil {
		return Shard{}, err
	}
	return newShard(idx, n, "shard from the environment")
}
