package torch

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A thread that adopted the process's count follows a SetThreads made on another thread once it
// adopts again (libtorch's OpenMP builds keep the count per OS thread).
func TestAdoptThreads(t *testing.T) {
	old := Threads()
	defer SetThreads(old)
	require.NoError(t, SetThreads(2))
	adopted := make(chan int)
	next := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		for range 2 {
			n, err := AdoptThreads()
			assert.NoError(t, err)
			assert.Equal(t, n, threadCount(), "this thread's count")
			adopted <- n
			<-next
		}
		close(adopted)
	}()
	assert.Equal(t, 2, <-adopted)
	require.NoError(t, SetThreads(1)) // on another OS thread
	next <- struct{}{}
	assert.Equal(t, 1, <-adopted)
	next <- struct{}{}
	<-adopted
}
