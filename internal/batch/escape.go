package batch

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// EscapePath is how a path is written as text: in the path of JSONL records, CSV rows, show lines and
// Parquet rows, in a run record's list of the inputs of each Parquet part and in the failure list.
// File names are bytes, and text (JSON, Parquet strings) must be UTF-8: a path that is valid UTF-8
// and holds no backslash is written as it is; otherwise each backslash is doubled and each byte that
// is not part of valid UTF-8 is written \xHH (two lower-case hex digits). The form is one-to-one, so
// names that differ only in such bytes stay apart, and it reads back exactly: in Python,
// codecs.escape_decode(s.encode())[0] gives the name's bytes.
func EscapePath(p string) string {
	if utf8.ValidString(p) && !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, p[i])
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(p[i : i+n])
		}
		i += n
	}
	return b.String()
}

// escapeAll is EscapePath of each of args (a command line), in a new slice.
func escapeAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = EscapePath(a)
	}
	return out
}
