package main

import (
	"debug/elf"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `// generated
void atg_abs(tensor *out__, tensor self) {
  PROTECT(
    auto outputs__ = torch::abs(*self);
    out__[0] = new torch::Tensor(outputs__);
  )
}

int64_t atg_new_op(tensor self) {
  PROTECT(
    return torch::new_op(*self);
  )
  return 0;
}
`

func TestStubKeepsSignatureAndDefaultReturn(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, generatedFile), []byte(sample), 0o644))
	g, err := readGenerated(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"atg_abs", "atg_new_op"}, g.order)
	assert.Equal(t, "atg_new_op", g.funcAt(11), "line 11 is inside atg_new_op")
	assert.Equal(t, "", g.funcAt(1))

	require.NoError(t, g.stub([]string{"atg_new_op"}, func(n string) string { return n + " is missing" }))
	require.NoError(t, g.write())
	b, err := os.ReadFile(g.path)
	require.NoError(t, err)
	got := string(b)
	assert.Contains(t, got, "torch::abs(*self)", "other wrappers untouched")
	assert.NotContains(t, got, "torch::new_op")
	assert.Contains(t, got, "int64_t atg_new_op(tensor self) {\n  PROTECT(\n    throw std::runtime_error(\"atg_new_op is missing\");\n")
	assert.Contains(t, got, "  )\n  return 0;\n}")
	assert.Equal(t, strings.Count(sample, "\n"), strings.Count(got, "\n"), "line numbers stay stable for the next compiler pass")

	assert.ErrorContains(t, g.stub([]string{"atg_gone"}, nil), "no wrapper atg_gone")
}

func TestLibGoLinksCUDAOnlyWhenPresent(t *testing.T) {
	for _, c := range []struct {
		name        string
		lt          libtorch
		want, unwnt []string
	}{
		{
			name:  "debian cpu",
			lt:    libtorch{Root: "/usr", System: true, Includes: []string{"/usr/include", "/usr/include/torch/csrc/api/include"}, LibDir: "/usr/lib/x86_64-linux-gnu", Version: "1.13.0", CXX11ABI: 1},
			want:  []string{"-D_GLIBCXX_USE_CXX11_ABI=1", "-I/usr/include/torch/csrc/api/include", "-ltorch -ltorch_cpu -lc10"},
			unwnt: []string{"cuda", "-rpath"},
		},
		{
			name: "upstream cuda",
			lt:   libtorch{Root: "/opt/libtorch", Includes: []string{"/opt/libtorch/include", "/opt/libtorch/include/torch/csrc/api/include"}, LibDir: "/opt/libtorch/lib", Version: "2.1.0", CUDA: true, CXX11ABI: 0},
			want: []string{"-D_GLIBCXX_USE_CXX11_ABI=0", "-Wl,-rpath,/opt/libtorch/lib", "-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed", "-I/opt/libtorch/include "},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := adaptation{lt: c.lt}.libGo()
			for _, w := range c.want {
				assert.Contains(t, got, w)
			}
			for _, u := range c.unwnt {
				assert.NotContains(t, got, u)
			}
			assert.NotContains(t, got, "CXXFLAGS", "the package has no C++ to compile: the adapter compiled it")
			assert.Contains(t, got, "-fopenmp") // the shim's OpenMP runtime
		})
	}
}

// compile turns every .cpp of the folder into one object that go build links, and removes them, so
// that cgo does not compile them again; a file that does not compile fails it, naming the file.
func TestCompileMakesOneObject(t *testing.T) {
	dir := t.TempDir()
	a := adaptation{lt: libtorch{System: true, Includes: []string{dir, dir}}}
	assert.Contains(t, cxxFlags, "-fopenmp") // at::parallel_for, a header template, runs serially without it
	for name, src := range map[string]string{
		"one.cpp": "#include <cstdint>\nextern \"C\" int64_t vggish_one() { return 1; }\n",
		"two.cpp": "extern \"C\" int vggish_two() {\n#pragma omp parallel\n{}\nreturn 2; }\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
	}
	require.NoError(t, a.compile(dir))
	cpps, err := filepath.Glob(filepath.Join(dir, "*.cpp"))
	require.NoError(t, err)
	assert.Empty(t, cpps, "the sources are gone: cgo would compile them again")
	f, err := elf.Open(filepath.Join(dir, cxxObject))
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, elf.ET_REL, f.Type, "a relocatable object, as go build links a .syso")
	syms, err := f.Symbols()
	require.NoError(t, err)
	var defined []string
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF && strings.HasPrefix(s.Name, "vggish_") {
			defined = append(defined, s.Name)
		}
	}
	assert.ElementsMatch(t, []string{"vggish_one", "vggish_two"}, defined)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.cpp"), []byte("int broken(\n"), 0o644))
	assert.ErrorContains(t, a.compile(dir), "compiling bad.cpp")
}

func TestDropBallast(t *testing.T) {
	for _, c := range []struct {
		name, src, want string
		fails           bool
	}{
		{name: "gotch v0.9.1", src: "type bigStruct struct {\n\tlots [1e5]byte // 100k - always on host memory.\n}\n",
			want: "type bigStruct struct {\n\tlots [0]byte // 100k - always on host memory.\n}\n"},
		{name: "another gotch", src: "type bigStruct struct{ lots [1 << 20]byte }\n", fails: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "ts", "tensor.go")
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, []byte(c.src), 0o644))
			err := dropBallast(dir)
			if c.fails {
				assert.ErrorContains(t, err, "has no")
				return
			}
			require.NoError(t, err)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
		})
	}
}

// The marker the adapter writes into gotch's package half is the identifier that
// torch/internal/adapted refers to, in a file that parses as package half.
func TestMarkerMatchesTheGuard(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "half"), 0o755))
	require.NoError(t, writeMarker(dir))
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, "half", "vggish_adapted.go"), nil, 0)
	require.NoError(t, err)
	assert.Equal(t, "half", f.Name.Name)
	require.NotNil(t, f.Scope.Lookup(adaptedMarker), "the marker is declared")
	guard, err := os.ReadFile(filepath.Join("..", "internal", "adapted", "adapted.go"))
	require.NoError(t, err)
	assert.Contains(t, string(guard), "var _ = gotch."+adaptedMarker)
	assert.Contains(t, adaptedMarker, "go_run_github_com_vggish_go_vggish_torch_adapt", "the compiler's message names the command")
}
