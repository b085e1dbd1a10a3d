package vggish

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/preprocess"
)

// OnBatch sees every forward pass, with the clips and runs the pass packed, the oldest run's wait
// and the pass's time: counted against the passes the network actually started, and against the
// clips the callers submitted.
func TestOnBatch(t *testing.T) {
	var (
		mu     sync.Mutex
		stats  []BatchStats
		passes int
	)
	m, err := New(context.Background(), Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 4,
		OnBatch: func(s BatchStats) {
			mu.Lock()
			defer mu.Unlock()
			stats = append(stats, s)
		}})
	require.NoError(t, err)
	defer m.Close()
	testHookForward = func(start bool, err error) {
		if start {
			mu.Lock()
			defer mu.Unlock()
			passes++
		}
	}
	defer func() { testHookForward = nil }()
	took := func() []BatchStats {
		mu.Lock()
		defer mu.Unlock()
		s := stats
		require.Len(t, s, passes, "a report per pass the network ran")
		stats, passes = nil, 0
		for _, b := range s {
			assert.NoError(t, b.Err)
			assert.Positive(t, b.Forward)
			assert.GreaterOrEqual(t, b.QueueWait, time.Duration(0))
			assert.LessOrEqual(t, b.Clips, 4, "no pass over the batch size")
			assert.Positive(t, b.Requests)
		}
		return s
	}

	t.Run("one call split into batches", func(t *testing.T) {
		_, err := m.EmbedExamples(context.Background(), silence(10))
		require.NoError(t, err)
		s := took()
		var clips []int
		for _, b := range s {
			clips = append(clips, b.Clips)
			assert.Equal(t, 1, b.Requests)
		}
		assert.Equal(t, []int{4, 4, 2}, clips, "reported when the call returns")
	})

	t.Run("concurrent calls", func(t *testing.T) {
		var wg sync.WaitGroup
		sizes := []int{1, 2, 1, 3, 1, 2, 1, 1, 2, 1, 3, 1}
		for _, n := range sizes {
			wg.Go(func() {
				_, err := m.EmbedExamples(context.Background(), silence(n))
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		clips, reqs := 0, 0
		for _, b := range took() {
			clips += b.Clips
			reqs += b.Requests
		}
		assert.Equal(t, 19, clips, "every clip reported once")
		assert.Equal(t, len(sizes), reqs, "every call (one run each) reported once")
	})

	t.Run("audio", func(t *testing.T) {
		x := make([]float32, 16000*5)
		e, err := m.Embed(context.Background(), x, 16000)
		require.NoError(t, err)
		clips := 0
		for _, b := range took() {
			clips += b.Clips
		}
		assert.Equal(t, e.Rows(), clips)
	})

	t.Run("a queued run's wait", func(t *testing.T) {
		// A pass of 4 holds the network while a second call queues: that call's pass reports a
		// wait of at least the time it was held.
		started := make(chan struct{}, 8)
		release := make(chan struct{})
		testHookForward = func(start bool, err error) {
			if start {
				mu.Lock()
				passes++
				mu.Unlock()
				started <- struct{}{}
				<-release
			}
		}
		first := make(chan error, 1)
		go func() {
			_, err := m.EmbedExamples(context.Background(), silence(4))
			first <- err
		}()
		<-started
		second := make(chan error, 1)
		go func() {
			_, err := m.EmbedExamples(context.Background(), silence(1))
			second <- err
		}()
		held := 100 * time.Millisecond
		time.Sleep(held)
		close(release)
		require.NoError(t, <-first)
		require.NoError(t, <-second)
		s := took()
		require.Len(t, s, 2)
		assert.Equal(t, []int{4, 1}, []int{s[0].Clips, s[1].Clips})
		assert.GreaterOrEqual(t, s[0].Forward, held, "the first pass ran while held")
		assert.Greater(t, s[1].QueueWait, held/2, "the second call waited for the first pass")
	})
}

// silence is n examples of the log-mel of silence.
func silence(n int) *preprocess.Examples {
	return &preprocess.Examples{Data: make([]float32, n*preprocess.ExampleFrames*preprocess.MelBins), Starts: make([]float64, n)}
}

// With MaxQueueDelay a pass that is not full waits for more examples, up to the delay from its oldest
// run's queueing: calls made within it share a pass, a lone call waits it out, a full batch does not
// wait, and Close ends the wait.
func TestMaxQueueDelay(t *testing.T) {
	stats := make(chan BatchStats, 16)
	const delay = time.Second
	m, err := New(context.Background(), Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 4, MaxQueueDelay: delay,
		OnBatch: func(s BatchStats) { stats <- s }})
	require.NoError(t, err)
	defer m.Close()

	t.Run("calls within the delay share a pass", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, n := range []int{1, 2} {
			wg.Go(func() {
				_, err := m.EmbedExamples(context.Background(), silence(n))
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		s := <-stats
		assert.Equal(t, 3, s.Clips)
		assert.Equal(t, 2, s.Requests)
		assert.GreaterOrEqual(t, s.QueueWait, delay, "the pass waited for a fourth clip")
		assert.Empty(t, stats)
	})
	t.Run("a lone call waits out the delay", func(t *testing.T) {
		_, err := m.EmbedExamples(context.Background(), silence(1))
		require.NoError(t, err)
		s := <-stats
		assert.Equal(t, 1, s.Clips)
		assert.GreaterOrEqual(t, s.QueueWait, delay)
	})
	t.Run("a full batch does not wait", func(t *testing.T) {
		long, err := New(context.Background(), Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 4, MaxQueueDelay: time.Hour,
			OnBatch: func(s BatchStats) { stats <- s }})
		require.NoError(t, err)
		defer long.Close()
		_, err = long.EmbedExamples(context.Background(), silence(8))
		require.NoError(t, err)
		for range 2 {
			s := <-stats
			assert.Equal(t, 4, s.Clips)
			assert.Less(t, s.QueueWait, time.Minute)
		}
		// Close ends a wait for a fourth clip.
		errs := make(chan error, 1)
		go func() {
			_, err := long.EmbedExamples(context.Background(), silence(1))
			errs <- err
		}()
		time.Sleep(100 * time.Millisecond)
		began := time.Now()
		require.NoError(t, long.Close())
		assert.ErrorIs(t, <-errs, ErrClosed)
		assert.Less(t, time.Since(began), time.Minute)
	})
}

// The loop lets go of a run's examples once they are in a batch: a caller waiting for the rest of a
// long input holds its embeddings (512 bytes a clip), not its log-mel examples (24 KB a clip), which
// made an hour at a 0.01 s hop need gigabytes.
func TestBatchedExamplesAreReleased(t *testing.T) {
	m, err := New(context.Background(), Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 4})
	require.NoError(t, err)
	defer m.Close()
	per := preprocess.ExampleFrames * preprocess.MelBins
	ex := &preprocess.Examples{Data: golden.Examples()[:10*per], Starts: make([]float64, 10)}
	out, reqs, err := m.submit(context.Background(), ex)
	require.NoError(t, err)
	require.Len(t, reqs, 3)
	require.NoError(t, m.wait(reqs))
	for i, r := range reqs {
		assert.Nil(t, r.in, "run %d", i)
	}
	assert.Len(t, out.Data, 10*EmbeddingSize)
	assert.NotContains(t, out.Data, float32(0), "every clip embedded")
}
