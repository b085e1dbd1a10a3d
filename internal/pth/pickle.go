package pth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nlpodyssey/gopickle/pickle"
)

// Pickle opcode arguments, as far as their length goes (see CPython's Lib/pickletools.py).
const (
	argNone  = iota + 1
	argFixed // opArg.size bytes
	argLine  // one newline-terminated line
	argLines // two lines
	argLen   // a little-endian length of opArg.size bytes, then that many bytes
	argFrame // protocol 4 FRAME: an 8-byte length of the frame, whose opcodes follow
	argStop
)

type opArg struct{ kind, size uint8 }

var opArgs = func() (t [256]opArg) {
	for _, op := range []byte("()012NQRabde}lo]stu\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		t[op] = opArg{kind: argNone}
	}
	for op, size := range map[byte]uint8{'J': 4, 'K': 1, 'M': 2, 'G': 8, 'h': 1, 'j': 4, 'q': 1, 'r': 4,
		0x80: 1, 0x82: 1, 0x83: 2, 0x84: 4} {
		t[op] = opArg{kind: argFixed, size: size}
	}
	for _, op := range []byte("FILPSVgp") {
		t[op] = opArg{kind: argLine}
	}
	t['c'], t['i'] = opArg{kind: argLines}, opArg{kind: argLines}
	for op, size := range map[byte]uint8{'T': 4, 'U': 1, 'X': 4, 'B': 4, 'C': 1, 0x8a: 1, 0x8b: 4,
		0x8c: 1, 0x8d: 8, 0x8e: 8, 0x96: 8} {
		t[op] = opArg{kind: argLen, size: size}
	}
	t[0x95] = opArg{kind: argFrame, size: 8}
	t['.'] = opArg{kind: argStop}
	return t
}()

// gopickle's objects and stack cost at most about 400 bytes of allocation per opcode (a MARK: a new
// 16-slot stack; an empty dict: 240), and an argument's bytes are copied at most a few times (read, then
// converted to a string or bytes, then to an array). A pickle whose opcodes could make more than
// maxPickleObjects bytes of them is refused before decoding: a torch.save'd state dict has a few dozen
// opcodes per tensor, so the cap admits thousands of tensors, while a few hundred kilobytes of repeated
// MARKs would otherwise make gigabytes.
const (
	opCost           = 512      // bytes, a bound on what one opcode allocates
	maxPickleObjects = 64 << 20 // bytes
)

// pickleLen returns the length of the pickle at the start of b, up to and including its STOP opcode.
// It checks that every counted argument fits in b: gopickle allocates an argument's claimed length
// before reading it, so this keeps a lying length from allocating more than the file's size. It also
// bounds what decoding the pickle can allocate: at most opCost bytes per opcode and maxPickleObjects in
// all, plus a few times the bytes of its arguments.
func pickleLen(b []byte) (int, error) {
	ops := 0
	for pos := 0; pos < len(b); {
		if ops++; ops > maxPickleObjects/opCost {
			return 0, fmt.Errorf("malformed pickle: more than %d opcodes before offset %d (a state dict needs a few dozen per tensor), which could take more than %d MiB to decode",
				maxPickleObjects/opCost, pos, maxPickleObjects>>20)
		}
		op := b[pos]
		arg := opArgs[op]
		pos++
		rest := b[pos:]
		switch arg.kind {
		case argNone:
		case argStop:
			return pos, nil
		case argFixed:
			pos += int(arg.size)
		case argLine, argLines:
			lines := 1
			if arg.kind == argLines {
				lines = 2
			}
			for range lines {
				n := bytes.IndexByte(b[pos:], '\n')
				if n < 0 {
					return 0, errTruncatedPickle
				}
				pos += n + 1
			}
		case argLen, argFrame:
			if len(rest) < int(arg.size) {
				return 0, errTruncatedPickle
			}
			n := uint64(0)
			for i := int(arg.size) - 1; i >= 0; i-- {
				n = n<<8 | uint64(rest[i])
			}
			if op == 0x8b && int32(n) < 0 { // LONG4's length is signed
				return 0, fmt.Errorf("malformed pickle: negative length at offset %d", pos-1)
			}
			if n > uint64(len(rest)-int(arg.size)) {
				return 0, errTruncatedPickle
			}
			pos += int(arg.size)
			if arg.kind == argLen {
				pos += int(n)
			}
		default:
			return 0, fmt.Errorf("malformed pickle: unknown opcode 0x%02x at offset %d", op, pos-1)
		}
	}
	return 0, errTruncatedPickle
}

var errTruncatedPickle = fmt.Errorf("%w: a pickle ends before its STOP opcode", errTruncated)

// unpickler decodes pickles with the classes this package knows (see findClass) and the given
// persistent-ID loader, which torch.save uses for storages.
type unpickler struct {
	persistentLoad func(pid any) (any, error)
}

// objectError is an error of this package's Python objects (an unknown class, a tensor that does not
// fit its storage, ...), told apart from gopickle's errors about the pickle itself.
type objectError struct{ error }

func (e objectError) Unwrap() error { return e.error }

// objectErr marks err, if any, as an objectError.
func objectErr(err error) error {
	if err == nil {
		return nil
	}
	return objectError{err}
}

// load decodes the pickle at the start of b and returns it and its length.
func (u unpickler) load(b []byte) (v any, n int, err error) {
	n, err = pickleLen(b)
	if err != nil {
		return nil, 0, err
	}
	p := pickle.NewUnpickler(bytes.NewReader(b[:n]))
	p.FindClass = func(module, name string) (any, error) {
		class, err := findClass(module, name)
		return class, objectErr(err)
	}
	p.PersistentLoad = func(pid any) (any, error) {
		if u.persistentLoad == nil {
			return nil, fmt.Errorf("unexpected persistent ID %s", repr(pid))
		}
		v, err := u.persistentLoad(pid)
		return v, objectErr(err)
	}
	// gopickle panics on some malformed input (for example an unhashable dict key).
	defer func() {
		if r := recover(); r != nil {
			v, n, err = nil, 0, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	v, err = p.Load()
	var oe objectError
	switch {
	case errors.As(err, &oe):
		return nil, 0, oe.error
	case err != nil:
		return nil, 0, fmt.Errorf("malformed pickle: %w", err)
	}
	return v, n, nil
}

// int64Of converts a pickled integer.
func int64Of(v any) (int64, bool) {
	i, ok := v.(int)
	return int64(i), ok
}

// le64 reads a little-endian int64 at b[0:8]; the caller checks the length.
func le64(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }
