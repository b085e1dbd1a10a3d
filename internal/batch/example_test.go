package batch_test

import (
	"fmt"
	"log"

	"github.com/vggish-go/vggish/internal/batch"
)

// In pod 2 of a Kubernetes Indexed Job of 4 completions, started with VGGISH_NUM_SHARDS=4, the
// shard comes from the environment.
func ExampleShardFromEnv() {
	env := map[string]string{"JOB_COMPLETION_INDEX": "2", "VGGISH_NUM_SHARDS": "4"}
	s, err := batch.ShardFromEnv("", 0, func(k string) string { return env[k] })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s, batch.RecordName(s), batch.ErrorsName(s))
	// Output: 2/4 vggish-run.2-of-4.json vggish-errors.2-of-4.jsonl
}

// Every input belongs to exactly one shard, decided by its relative path alone.
func ExampleShard_Select() {
	inputs := []batch.Input{{Rel: "a.wav"}, {Rel: "b.wav"}, {Rel: "c/d.mp3"}, {Rel: "e.flac"}, {Rel: "f.ogg"}}
	for i := range 2 {
		s := batch.Shard{Index: i, Count: 2}
		fmt.Print(s, ":")
		for _, in := range s.Select(inputs) {
			fmt.Print(" ", in.Rel)
		}
		fmt.Println()
	}
	// Output:
	// 0/2: a.wav c/d.mp3 f.ogg
	// 1/2: b.wav e.flac
}
