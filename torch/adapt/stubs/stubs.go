// Package stubs holds, per libtorch version, the gotch wrappers that do not compile against it, as found
// by `go run ./torch/adapt -regen`. torch/adapt stubs them when it builds gotch; tests call one of them
// to see the error a stub returns.
package stubs

import (
	"embed"
	"strings"
)

//go:embed *.txt
var lists embed.FS

// FileName is the name of the list for a libtorch version, in this folder.
func FileName(version string) string { return "libtorch-" + version + ".txt" }

// List returns the wrappers (atg_* names) listed for a libtorch version, and whether a list is
// committed for it.
func List(version string) ([]string, bool) {
	b, err := lists.ReadFile(FileName(version))
	if err != nil {
		return nil, false
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	return names, true
}
