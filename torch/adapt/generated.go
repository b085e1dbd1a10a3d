package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

const generatedFile = "torch_api_generated.cpp.h"

// generated is gotch's generated C++ wrapper file, split into the functions it defines.
type generated struct {
	path  string
	lines []string
	funcs map[string][2]int // name -> first and last line index (the closing brace)
	order []string
}

var funcRE = regexp.MustCompile(`^[A-Za-z].*\b(atg_\w+)\(.*\{$`)

func readGenerated(libtch string) (*generated, error) {
	path := filepath.Join(libtch, generatedFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g := &generated{path: path, lines: strings.Split(string(b), "\n"), funcs: map[string][2]int{}}
	start, name := -1, ""
	for i, line := range g.lines {
		if m := funcRE.FindStringSubmatch(line); m != nil {
			start, name = i, m[1]
		} else if line == "}" && start >= 0 {
			g.funcs[name] = [2]int{start, i}
			g.order = append(g.order, name)
			start = -1
		}
	}
	if len(g.funcs) == 0 {
		return nil, fmt.Errorf("%s: no wrapper functions found", path)
	}
	return g, nil
}

// funcAt names the function that contains 1-based line n, or "".
func (g *generated) funcAt(n int) string {
	for name, span := range g.funcs {
		if n-1 >= span[0] && n-1 <= span[1] {
			return name
		}
	}
	return ""
}

// stub replaces the body inside each function's PROTECT( ... ) with a throw, which PROTECT turns into
// the error that the Go side returns. Whatever follows PROTECT (a default return value) stays.
func (g *generated) stub(names []string, message func(string) string) error {
	for _, name := range names {
		span, ok := g.funcs[name]
		if !ok {
			return fmt.Errorf("%s: no wrapper %s (is the stub list for another gotch version?)", g.path, name)
		}
		open, close := -1, -1
		for i := span[0]; i <= span[1]; i++ {
			switch strings.TrimSpace(g.lines[i]) {
			case "PROTECT(":
				if open < 0 {
					open = i
				}
			case ")":
				close = i
			}
		}
		if open < 0 || close <= open {
			return fmt.Errorf("%s: wrapper %s has no PROTECT block", g.path, name)
		}
		body := make([]string, close-open-1)
		body[0] = "    throw std::runtime_error(" + strconv.Quote(message(name)) + ");"
		copy(g.lines[open+1:close], body)
	}
	return nil
}

func (g *generated) write() error {
	return os.WriteFile(g.path, []byte(strings.Join(g.lines, "\n")), 0o644)
}
