package batch

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func syntheticInputs(n int) []Input {
	in := make([]Input, n)
	for i := range in {
		in[i] = Input{Path: fmt.Sprintf("/data/d%02d/f%04d.wav", i%37, i), Rel: fmt.Sprintf("d%02d/f%04d.wav", i%37, i)}
	}
	slices.SortFunc(in, func(a, b Input) int { return strings.Compare(a.Rel, b.Rel) })
	return in
}

// The shards of a count partition the inputs: each input is in exactly one, in the original order.
func TestShardsPartitionInputs(t *testing.T) {
	inputs := syntheticInputs(1000)
	for _, count := range []int{1, 2, 3, 4, 7} {
		t.Run(fmt.Sprint(count), func(t *testing.T) {
			seen := map[string]int{}
			sizes := make([]int, count)
			for i := range count {
				part := Shard{Index: i, Count: count}.Select(inputs)
				sizes[i] = len(part)
				for k, in := range part {
					seen[in.Rel]++
					if k > 0 {
						assert.Less(t, part[k-1].Rel, in.Rel, "order")
					}
				}
			}
			require.Len(t, seen, len(inputs))
			for rel, n := range seen {
				require.Equal(t, 1, n, rel)
			}
			t.Logf("%d shards of 1000 inputs: sizes %v", count, sizes)
			for _, size := range sizes {
				assert.InDelta(t, 1000/count, size, 0.2*1000/float64(count), "balance")
			}
		})
	}
}

// A file's shard depends on its relative path only: adding files moves none.
func TestShardIsStableAsFilesAreAdded(t *testing.T) {
	s := Shard{Index: 1, Count: 4}
	large := s.Select(syntheticInputs(1000))
	for _, in := range s.Select(syntheticInputs(500)) {
		assert.Contains(t, large, in)
	}
}

func TestParseShard(t *testing.T) {
	tests := []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/4", Shard{0, 4}, ""},
		{"3/4", Shard{3, 4}, ""},
		{" 1 / 2 ", Shard{1, 2}, ""},
		{"4/4", Shard{}, "want 0 <= index < count"},
		{"-1/4", Shard{}, "want 0 <= index < count"},
		{"0/0", Shard{}, "want 0 <= index < count"},
		{"1", Shard{}, "want INDEX/COUNT"},
		{"a/b", Shard{}, "want INDEX/COUNT"},
	}
	for _, tt := range tests {
		got, err := ParseShard(tt.in)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestShardFromEnv(t *testing.T) {
	tests := []struct {
		name      string
		flag      string
		numShards int
		env       map[string]string
		want      Shard
		err       string
	}{
		{"nothing: the whole batch", "", 0, nil, Shard{}, ""},
		{"flag", "2/5", 0, map[string]string{EnvJobIndex: "1"}, Shard{2, 5}, ""},
		{"flag and matching count", "2/5", 5, nil, Shard{2, 5}, ""},
		{"flag and other count", "2/5", 4, nil, Shard{}, "disagrees"},
		{"indexed job with --num-shards", "", 4, map[string]string{EnvJobIndex: "3"}, Shard{3, 4}, ""},
		{"indexed job with VGGISH_NUM_SHARDS", "", 0, map[string]string{EnvJobIndex: "0", EnvNumShards: "8"}, Shard{0, 8}, ""},
		{"--num-shards beats the environment", "", 2, map[string]string{EnvJobIndex: "1", EnvNumShards: "8"}, Shard{1, 2}, ""},
		{"indexed job without a count", "", 0, map[string]string{EnvJobIndex: "1"}, Shard{}, "give --num-shards or set VGGISH_NUM_SHARDS"},
		{"index out of range", "", 0, map[string]string{EnvJobIndex: "4", EnvNumShards: "4"}, Shard{}, "index 4 of 4"},
		{"slurm array", "", 0, map[string]string{EnvSlurmTaskID: "2", EnvSlurmTaskCount: "3"}, Shard{2, 3}, ""},
		{"slurm array from 1", "", 0, map[string]string{EnvSlurmTaskID: "3", EnvSlurmTaskMin: "1", EnvSlurmTaskCount: "3"}, Shard{2, 3}, ""},
		{"slurm array with a step", "", 0, map[string]string{EnvSlurmTaskID: "8", EnvSlurmTaskCount: "5"}, Shard{}, "index 8 of 5"},
		{"slurm without count", "", 0, map[string]string{EnvSlurmTaskID: "0"}, Shard{}, "SLURM_ARRAY_TASK_ID is set"},
		{"not a number", "", 0, map[string]string{EnvJobIndex: "x", EnvNumShards: "2"}, Shard{}, `JOB_COMPLETION_INDEX="x"`},
		{"count without index", "", 4, nil, Shard{}, "no shard index"},
		{"VGGISH_NUM_SHARDS without index", "", 0, map[string]string{EnvNumShards: "8"}, Shard{}, "VGGISH_NUM_SHARDS=8 but no shard index"},
		{"VGGISH_NUM_SHARDS=1 without index", "", 0, map[string]string{EnvNumShards: "1"}, Shard{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ShardFromEnv(tt.flag, tt.numShards, func(k string) string { return tt.env[k] })
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
