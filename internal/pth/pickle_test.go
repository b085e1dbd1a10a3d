package pth

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repeated is a protocol 2 pickle: pre, then unit n times, then post and STOP.
func repeated(pre, unit string, n int, post string) []byte {
	return []byte("\x80\x02" + pre + strings.Repeat(unit, n) + post + ".")
}

// allocated returns the bytes fn allocates (its garbage included: an upper bound on its peak).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Whatever opcodes a pickle repeats, decoding it allocates at most opCost bytes per opcode plus a few
// times its bytes, and a pickle with more opcodes than maxPickleObjects/opCost is refused before any
// decoding. The units are the opcodes that make the most per byte: MARK (a new stack), empty
// containers, memo entries, reductions of the classes gopickle builds in.
func TestPickleMemory(t *testing.T) {
	longPuts := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("\x80\x02N")
		for i := range n {
			b.WriteByte('r')
			binary.Write(&b, binary.LittleEndian, uint32(i))
		}
		return append(b.Bytes(), '.')
	}
	units := []struct {
		name            string
		pre, unit, post string
		ops             int // opcodes per unit
	}{
		{"MARK", "", "(", "N", 1},
		{"MARK TUPLE", "", "(t", "", 2},
		{"MARK LIST", "", "(l", "", 2},
		{"MARK DICT", "", "(d", "", 2},
		{"MARK FROZENSET", "", "(\x91", "", 2},
		{"MARK POP_MARK", "N", "(1", "", 2},
		{"EMPTY_LIST", "", "]", "", 1},
		{"EMPTY_DICT", "", "}", "", 1},
		{"EMPTY_SET", "", "\x8f", "", 1},
		{"EMPTY_TUPLE", "", ")", "", 1},
		{"NONE", "", "N", "", 1},
		{"DUP", "N", "2", "", 1},
		{"BINGET", "Nq\x00", "h\x00", "", 1},
		{"MEMOIZE", "N", "\x94", "", 1},
		{"TUPLE1", "N", "\x85", "", 1},
		{"APPEND", "]", "Na", "", 2},
		{"SETITEM", "}", "NNs", "", 3},
		{"INT line", "", "I1\n", "", 1},
		{"STRING line", "", "S''\n", "", 1},
		{"SHORT_BINBYTES", "", "C\x00", "", 1},
		{"list()", "", "cbuiltins\nlist\n)R", "", 3},
		{"OrderedDict()", "", "ccollections\nOrderedDict\n)R", "", 3},
		{"STACK_GLOBAL", "", "\x8c\x0bcollections\x8c\x0bOrderedDict\x93", "", 3},
	}
	const n = 60000 // units per pickle: within the cap for every unit
	for _, u := range units {
		t.Run(u.name, func(t *testing.T) {
			b := repeated(u.pre, u.unit, n, u.post)
			got := allocated(func() { unpickler{}.load(b) })
			ops := n*u.ops + 8
			limit := uint64(opCost*ops + 4*len(b))
			assert.LessOrEqual(t, got, limit, "%d bytes of pickle", len(b))
			t.Logf("%d bytes, %d opcodes: %.0f bytes allocated per opcode", len(b), ops, float64(got)/float64(ops))

			bomb := repeated(u.pre, u.unit, maxPickleObjects/opCost/u.ops+1, u.post)
			var err error
			got = allocated(func() { _, _, err = unpickler{}.load(bomb) })
			require.Error(t, err)
			assert.Contains(t, err.Error(), "malformed pickle: more than 131072 opcodes")
			assert.Less(t, got, uint64(1<<20), "refused before decoding")
		})
	}
	t.Run("LONG_BINPUT", func(t *testing.T) {
		b := longPuts(n)
		got := allocated(func() { unpickler{}.load(b) })
		assert.LessOrEqual(t, got, uint64(opCost*(n+2)+4*len(b)))
	})
}
