package child

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmd     *exec.Cmd
		wantErr bool
	}{
		{"exits 0", exec.Command("true"), false},
		{"exits 1", exec.Command("false"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			require.NoError(t, Start(tc.cmd, func(err error) { done <- err }))
			assert.Equal(t, tc.wantErr, <-done != nil)
		})
	}
	assert.Error(t, Start(exec.Command("/nonexistent/program"), func(error) { t.Error("exited called for a child never started") }))
}
