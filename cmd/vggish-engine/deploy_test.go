package main

import (
	"bytes"
	"encoding/json"
	goversion "go/version"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
	"gopkg.in/yaml.v3"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/weights"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

// dockerfile is a parsed Dockerfile: its ARG defaults (later ones win, as names are unique in ours)
// and its stages.
type dockerfile struct {
	args   map[string]string
	stages []stage
}

// stage is a FROM and the instructions up to the next one.
type stage struct {
	from, name string
	ins        []instruction
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	df := dockerfile{args: map[string]string{}}
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
		if strings.HasSuffix(trimmed, "\\") {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		cur.Reset()
		switch {
		case in.cmd == "ARG":
			if k, v, ok := strings.Cut(in.args, "="); ok {
				df.args[k] = v
			}
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			st := stage{from: df.expand(f[0])}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
			continue
		}
		if n := len(df.stages); n > 0 {
			df.stages[n-1].ins = append(df.stages[n-1].ins, in)
		}
	}
	return df
}

// expand replaces ${NAME} and $NAME by ARG defaults.
func (df dockerfile) expand(s string) string {
	return regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`).ReplaceAllStringFunc(s, func(v string) string {
		if val, ok := df.args[strings.Trim(v, "${}")]; ok {
			return val
		}
		return v
	})
}

// all is the stage's instructions of one kind, their arguments expanded.
func (st stage) all(cmd string, df dockerfile) []string {
	var out []string
	for _, in := range st.ins {
		if in.cmd == cmd {
			out = append(out, df.expand(in.args))
		}
	}
	return out
}

// copied is the context paths the stage's COPY and ADD instructions take (those without --from).
func (st stage) copied(t *testing.T) []string {
	var out []string
	for _, in := range st.ins {
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		var words []string
		if strings.HasPrefix(in.args, "[") {
			require.NoError(t, json.Unmarshal([]byte(in.args), &words), in.args)
		} else {
			words = strings.Fields(in.args)
		}
		for len(words) > 0 && strings.HasPrefix(words[0], "--") {
			if strings.HasPrefix(words[0], "--from=") {
				words = nil
				break
			}
			words = words[1:]
		}
		if len(words) > 1 {
			out = append(out, words[:len(words)-1]...) // the last is the destination
		}
	}
	return out
}

// runtimeConventions checks what both images promise (README "Containers"): the vggish entrypoint,
// a numeric user other than root, the weights cache in a volume named by VGGISH_CACHE (gotch's too),
// OCI labels.
func runtimeConventions(t *testing.T, df dockerfile) {
	t.Helper()
	final := df.stages[len(df.stages)-1]
	assert.Equal(t, []string{`["vggish"]`}, final.all("ENTRYPOINT", df))
	users := final.all("USER", df)
	require.Len(t, users, 1)
	uid, err := strconv.Atoi(strings.Split(users[0], ":")[0])
	require.NoError(t, err, "USER %s: numeric, so that Kubernetes' runAsNonRoot can check it", users[0])
	assert.NotZero(t, uid, "USER")
	assert.Contains(t, final.all("ENV", df), weights.EnvCache+"=/cache")
	// gotch makes its cache folder at start and exits if it cannot: in the volume, not under HOME,
	// which is / on a read-only root under `docker run --user`.
	assert.Contains(t, final.all("ENV", df), "GOTCH_CACHE=/cache/gotch")
	assert.Equal(t, []string{"/cache"}, final.all("VOLUME", df))
	labels := strings.Join(final.all("LABEL", df), " ")
	for _, k := range []string{"version", "revision", "source"} {
		assert.Contains(t, labels, "org.opencontainers.image."+k+"=", "OCI label %s", k)
	}
}

// goVersionAtLeastModule checks that a Go toolchain version satisfies go.mod's go line.
func goVersionAtLeastModule(t *testing.T, v, what string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(reftest.Root(), "go.mod"))
	require.NoError(t, err)
	mod, err := modfile.ParseLax("go.mod", b, nil)
	require.NoError(t, err)
	have, want := "go"+v, "go"+mod.Go.Version
	if strings.Count(v, ".") == 1 { // an image tag such as golang:1.25: the latest 1.25.x
		have, want = goversion.Lang(have), goversion.Lang(want)
	}
	assert.GreaterOrEqual(t, goversion.Compare(have, want), 0, "%s has Go %s, older than go.mod's %s", what, v, mod.Go.Version)
}

// The CPU image is built and run by `make test-image` (CI); this checks the rest of what it promises
// without building it: a build stage whose default Go satisfies go.mod, Debian's libtorch, the
// adapter, and the runtime conventions.
func TestDockerfileCPU(t *testing.T) {
	df := parseDockerfile(t, filepath.Join(reftest.Root(), "Dockerfile"))
	require.Len(t, df.stages, 2, "a build stage and a runtime stage")
	build, final := df.stages[0], df.stages[1]
	m := regexp.MustCompile(`^docker\.io/library/golang:(\d+\.\d+(?:\.\d+)?)-bookworm$`).FindStringSubmatch(build.from)
	require.NotNil(t, m, "the build stage's default image %q: Go on Debian 12", build.from)
	goVersionAtLeastModule(t, m[1], build.from)
	assert.Equal(t, "docker.io/library/debian:bookworm-slim", final.from, "the runtime on the build's Debian")
	runs := strings.Join(build.all("RUN", df), "\n")
	assert.Contains(t, runs, "libtorch-dev")
	assert.Regexp(t, `go run \./torch/adapt`, runs)
	frontAndEngine(t, df, "/out")
	decodesInProcess(t, df, "/out")
	finalRuns := strings.Join(final.all("RUN", df), "\n")
	assert.Contains(t, finalRuns, "ldd /usr/local/bin/vggish-engine | grep -q openblas", "the engine links OpenBLAS")
	assert.Contains(t, finalRuns, "! ldd /usr/local/bin/vggish | grep -q libtorch", "the front door links no libtorch")
	assert.Contains(t, finalRuns, "ffmpeg")
	assert.NotContains(t, finalRuns, "-dev", "the runtime holds no development packages")
	runtimeConventions(t, df)
}

// frontAndEngine checks that an image builds vggish (the front door) and vggish-engine into dir, and
// puts them side by side, where vggish looks for the engine.
func frontAndEngine(t *testing.T, df dockerfile, dir string) {
	t.Helper()
	runs := strings.Join(df.stages[0].all("RUN", df), "\n")
	copies := df.stages[1].all("COPY", df)
	for _, name := range []string{"vggish", "vggish-engine"} {
		assert.Regexp(t, `go build .*-o `+dir+`/`+name+` \./cmd/`+name+`( |$)`, runs)
		assert.Contains(t, copies, "--from=build "+dir+"/"+name+" /usr/local/bin/"+name)
	}
}

// decodesInProcess checks that an image decodes compressed audio with ffmpeg's libraries
// (decode/libav), not a process per file: built with them (not -tags nolibav), with vggish-decoder,
// built into dir, beside vggish-engine.
func decodesInProcess(t *testing.T, df dockerfile, dir string) {
	t.Helper()
	build, final := df.stages[0], df.stages[1]
	runs := strings.Join(build.all("RUN", df), "\n")
	for _, lib := range []string{"pkg-config", "libavformat-dev", "libavcodec-dev", "libavutil-dev"} {
		assert.Contains(t, runs, lib, "decode/libav builds against ffmpeg's libraries")
	}
	assert.NotContains(t, runs, "nolibav")
	assert.Regexp(t, `go build .*-o `+dir+`/vggish-decoder \./cmd/vggish-decoder`, runs)
	assert.Contains(t, final.all("COPY", df), "--from=build "+dir+"/vggish-decoder /usr/local/bin/vggish-decoder", "beside vggish-engine, which looks for it there")
}

// Dockerfile.cuda cannot be built here (no Docker engine, no internet); this checks what can go
// wrong without building it: the libtorch it downloads must be one torch/adapt has a stub list for,
// built for the CUDA of the base images, the Go it downloads must satisfy go.mod, and the adapter
// must run against it.
func TestDockerfileCUDA(t *testing.T) {
	df := parseDockerfile(t, filepath.Join(reftest.Root(), "Dockerfile.cuda"))
	require.Len(t, df.stages, 2, "a build stage and a runtime stage")
	cudaImage := regexp.MustCompile(`^docker\.io/nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn\d+-(devel|runtime)-ubuntu[\d.]+$`)
	build, final := cudaImage.FindStringSubmatch(df.stages[0].from), cudaImage.FindStringSubmatch(df.stages[1].from)
	require.NotNil(t, build, df.stages[0].from)
	require.NotNil(t, final, df.stages[1].from)
	assert.Equal(t, "devel", build[3])
	assert.Equal(t, "runtime", final[3])
	assert.Equal(t, build[1:3], final[1:3], "both stages on the same CUDA")
	goVersionAtLeastModule(t, df.args["GO_VERSION"], "Dockerfile.cuda's GO_VERSION")

	all := strings.Join(df.stages[0].all("RUN", df), "\n")
	m := regexp.MustCompile(`https://download\.pytorch\.org/libtorch/(cu\d+)/libtorch-cxx11-abi-shared-with-deps-(\d+\.\d+\.\d+)%2B(cu\d+)\.zip`).FindStringSubmatch(all)
	require.NotNil(t, m, "no libtorch download in %s", all)
	version, cuda := m[2], m[1]
	assert.Equal(t, cuda, m[3])
	assert.Equal(t, "cu"+build[1]+build[2], cuda, "libtorch built for the base image's CUDA")
	assert.FileExists(t, filepath.Join(reftest.Root(), "torch", "adapt", "stubs", "libtorch-"+version+".txt"),
		"torch/adapt has no committed stub list for libtorch %s", version)
	t.Logf("Dockerfile.cuda: libtorch %s+%s on %s / %s", version, cuda, df.stages[0].from, df.stages[1].from)

	assert.Contains(t, all, "unzip -q /tmp/libtorch.zip -d /opt", "libtorch unpacks to /opt/libtorch")
	assert.Regexp(t, `LIBTORCH=/opt/libtorch go run \./torch/adapt`, all)
	assert.Regexp(t, `CGO_CPPFLAGS=-I/usr/local/cuda/include \S*\s*go run \./torch/adapt`, all, "the adapter compiles gotch's C++, with the CUDA headers")
	frontAndEngine(t, df, "/out")
	assert.Regexp(t, `readelf -p vggish\.libtorch /out/vggish-engine`, all, "the engine records libtorch's version for vggish version")
	decodesInProcess(t, df, "/out")
	assert.Contains(t, strings.Join(df.stages[1].all("RUN", df), "\n"), "ffmpeg")
	runtimeConventions(t, df)
}

// buildInputs is what the images' build stages compile, relative to the module root: go.mod, go.sum
// and the files of every package of this module that ./cmd/vggish, ./cmd/vggish-engine and the adapter they run
// (./torch/adapt) need, as `go list -deps` says.
func buildInputs(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,CgoFiles,CFiles,CXXFiles,HFiles,SFiles,SysoFiles,EmbedFiles",
		"./cmd/vggish", "./cmd/vggish-engine", "./torch/adapt")
	cmd.Dir = reftest.Root()
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", err)
	root, err := filepath.Abs(reftest.Root())
	require.NoError(t, err)
	inputs := []string{"go.mod", "go.sum"}
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var p struct {
			Dir                                                            string
			Module                                                         *struct{ Main bool }
			GoFiles, CgoFiles, CFiles, CXXFiles, HFiles, SFiles, SysoFiles []string
			EmbedFiles                                                     []string
		}
		require.NoError(t, dec.Decode(&p))
		if p.Module == nil || !p.Module.Main {
			continue // the standard library, or a module the build downloads
		}
		rel, err := filepath.Rel(root, p.Dir)
		require.NoError(t, err)
		for _, files := range [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.HFiles, p.SFiles, p.SysoFiles, p.EmbedFiles} {
			for _, f := range files {
				inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	return inputs
}

// unreachable is the inputs that a build does not get: those its .dockerignore (text) keeps out of the
// context, Docker's way (moby/patternmatcher, the matcher Docker and BuildKit use), and those none of
// its COPY sources covers.
func unreachable(t *testing.T, inputs []string, dockerignore string, sources []string) []string {
	t.Helper()
	patterns, err := ignorefile.ReadAll(strings.NewReader(dockerignore))
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	var missing []string
	for _, f := range inputs {
		ignored, err := pm.MatchesOrParentMatches(f)
		require.NoError(t, err)
		if ignored || !slices.ContainsFunc(sources, func(src string) bool { return covers(t, src, f) }) {
			missing = append(missing, f)
		}
	}
	return missing
}

// covers reports whether COPY's source src (a path or pattern relative to the context) takes file f.
func covers(t *testing.T, src, f string) bool {
	src = path.Clean(strings.TrimPrefix(src, "/"))
	if src == "." {
		return true
	}
	for p := f; p != "."; p = path.Dir(p) {
		ok, err := path.Match(src, p)
		require.NoError(t, err, "COPY source %q", src)
		if ok {
			return true
		}
	}
	return false
}

// dirs is the folders of files, sorted and unique.
func dirs(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, path.Dir(f))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Every package ./cmd/vggish and ./cmd/vggish-engine need reaches both images' builds: kept in the context by .dockerignore
// and copied by the build stage. A package added later is covered by `COPY . .` unless .dockerignore
// keeps it out; the table shows the check failing on the two ways of losing one.
func TestDockerBuildContext(t *testing.T) {
	root := reftest.Root()
	inputs := buildInputs(t)
	require.Contains(t, inputs, "cmd/vggish/main.go")
	require.Contains(t, inputs, "cmd/vggish-engine/main.go")
	require.Contains(t, inputs, "torch/adapt/main.go")
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	sources := map[string][]string{}
	for _, name := range []string{"Dockerfile", "Dockerfile.cuda"} {
		df := parseDockerfile(t, filepath.Join(root, name))
		sources[name] = df.stages[0].copied(t)
		assert.Contains(t, sources[name], ".", "%s: the build stage copies the context as a whole", name)
	}
	for _, tc := range []struct {
		name, dockerignore string
		sources            []string
		missing            []string // folders that must be reported; none for the files as they are
	}{
		{name: "Dockerfile", dockerignore: string(ignore), sources: sources["Dockerfile"]},
		{name: "Dockerfile.cuda", dockerignore: string(ignore), sources: sources["Dockerfile.cuda"]},
		{name: "a .dockerignore that keeps out fad", dockerignore: string(ignore) + "\nfad\n",
			sources: sources["Dockerfile"], missing: []string{"fad"}},
		{name: "a .dockerignore that keeps out C++ sources, the adapter's embedded shim among them",
			dockerignore: string(ignore) + "\n**/*.cpp\n", sources: sources["Dockerfile"], missing: []string{"torch/adapt/csrc"}},
		{name: "Dockerfile.cuda's copies before #22",
			sources: []string{"go.mod", "go.sum", "cmd", "internal", "preprocess", "torch", "vggish", "weights"},
			missing: []string{"decode", "fad"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missing := dirs(unreachable(t, inputs, tc.dockerignore, tc.sources))
			if tc.missing == nil {
				assert.Empty(t, missing, "files the programs need that would not reach the build, in these folders")
				return
			}
			assert.Subset(t, missing, tc.missing)
		})
	}
}

// .dockerignore keeps out what belongs to one checkout: the adapted gotch and the go.work pointing at
// it (the build makes its own: a host's would point outside the image), outputs, caches, VCS data.
func TestDockerignoreKeepsOut(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(reftest.Root(), ".dockerignore"))
	require.NoError(t, err)
	out := unreachable(t, []string{
		".build/gotch-v0.9.1-libtorch-1.13.0-cpu/go.mod", "go.work", "go.work.sum", "bin/vggish",
		"testdata/gen/audio/a.wav", ".cache/debian12/root/etc/passwd", ".git/HEAD",
		"internal/batch/batchtest/testdata/parquet-reader/node_modules/hyparquet/package.json",
	}, string(b), []string{"."})
	assert.Len(t, out, 8, "all of them are kept out of the context")
}

func TestKubernetesExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(reftest.Root(), "examples", "k8s-indexed-job.yaml"))
	require.NoError(t, err)
	var job struct {
		Kind string
		Spec struct {
			CompletionMode string `yaml:"completionMode"`
			Completions    int
			Template       struct {
				Spec struct {
					Containers []struct {
						Image           string
						Args            []string
						Env             []struct{ Name, Value string }
						SecurityContext struct {
							RunAsNonRoot           bool `yaml:"runAsNonRoot"`
							ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
						} `yaml:"securityContext"`
						VolumeMounts []struct {
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					}
					Volumes []struct {
						Name                  string
						PersistentVolumeClaim *struct {
							ClaimName string `yaml:"claimName"`
						} `yaml:"persistentVolumeClaim"`
					}
				}
			}
		}
	}
	require.NoError(t, yaml.Unmarshal(b, &job))
	assert.Equal(t, "Job", job.Kind)
	assert.Equal(t, "Indexed", job.Spec.CompletionMode)
	require.Len(t, job.Spec.Template.Spec.Containers, 1)
	c := job.Spec.Template.Spec.Containers[0]
	assert.Contains(t, c.Image, "vggish-go:cuda", "the image make docker-cuda builds")
	// The images run as a numeric non-root user and write only to their volumes (README "Containers").
	assert.True(t, c.SecurityContext.RunAsNonRoot)
	assert.True(t, c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Contains(t, c.VolumeMounts, struct {
		MountPath string `yaml:"mountPath"`
	}{"/cache"}, "the weights cache, VGGISH_CACHE in the image")
	require.NotEmpty(t, c.Args)
	assert.Equal(t, "embed", c.Args[0])
	assert.Contains(t, strings.Join(c.Args, " "), "--format parquet --pool mean --out-dir /data/embeddings")
	// The flags parse: the run gets as far as looking for the audio, a typed input that is missing here.
	code, _, stderr := runArgs(c.Args...)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "input /data/audio: no such file or directory")
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	// The shard count the pods read must be the Job's completions.
	shard, err := batch.ShardFromEnv("", 0, func(k string) string {
		if k == batch.EnvJobIndex {
			return "0"
		}
		return env[k]
	})
	require.NoError(t, err)
	assert.Equal(t, job.Spec.Completions, shard.Count)
	assert.Len(t, job.Spec.Template.Spec.Volumes, 2)
	for _, v := range job.Spec.Template.Spec.Volumes {
		assert.NotNil(t, v.PersistentVolumeClaim, v.Name)
	}
}

func TestSlurmExample(t *testing.T) {
	path := filepath.Join(reftest.Root(), "examples", "slurm-array.sh")
	out, err := exec.Command("bash", "-n", path).CombinedOutput()
	require.NoError(t, err, "bash -n: %s", out)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// Task IDs must run 0..N-1 (or MIN..MIN+N-1) without a step, for SLURM_ARRAY_TASK_COUNT to be
	// the shard count.
	assert.Regexp(t, `(?m)^#SBATCH --array=\d+-\d+(%\d+)?$`, string(b))
	assert.Regexp(t, `(?m)^srun vggish embed .*--out-dir`, string(b))
	// The container alternatives run the images make docker-cuda / make docker build, with the same
	// command line.
	assert.Regexp(t, `(?m)^#\s+srun --container-image=\S+#vggish-go:cuda `, string(b))
	assert.Regexp(t, `(?m)^#\s+srun apptainer exec --nv .*vggish-go_cuda\.sif `, string(b))
	assert.Regexp(t, `apptainer build vggish-go_cuda\.sif docker://\S+/vggish-go:cuda`, string(b))
}
