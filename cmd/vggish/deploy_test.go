package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/reftest"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []instruction
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
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// Dockerfile.cuda cannot be built here (no Docker engine, no internet); this checks what can go
// wrong without building it: the libtorch it downloads must be one torch/adapt has a stub list for,
// built for the CUDA of the base images, and the adapter must run against it.
func TestDockerfileCUDA(t *testing.T) {
	ins := parseDockerfile(t, filepath.Join(reftest.Root(), "Dockerfile.cuda"))
	args := map[string]string{}
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`).ReplaceAllStringFunc(s, func(v string) string {
			name := strings.Trim(v, "${}")
			if val, ok := args[name]; ok {
				return val
			}
			return v
		})
	}
	var froms, runs []string
	var libtorchURL, entrypoint string
	env := map[string]string{}
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			if k, v, ok := strings.Cut(in.args, "="); ok {
				args[k] = v
			}
		case "FROM":
			froms = append(froms, expand(strings.Fields(in.args)[0]))
		case "ENV":
			k, v, _ := strings.Cut(in.args, "=")
			env[k] = v
		case "RUN":
			run := expand(in.args)
			runs = append(runs, run)
			if m := regexp.MustCompile(`https://download\.pytorch\.org/libtorch/\S+\.zip`).FindString(run); m != "" {
				libtorchURL = m
			}
		case "ENTRYPOINT":
			entrypoint = in.args
		}
	}

	require.Len(t, froms, 2, "a build stage and a runtime stage")
	cudaImage := regexp.MustCompile(`^nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn\d+-(devel|runtime)-ubuntu[\d.]+$`)
	build, final := cudaImage.FindStringSubmatch(froms[0]), cudaImage.FindStringSubmatch(froms[1])
	require.NotNil(t, build, froms[0])
	require.NotNil(t, final, froms[1])
	assert.Equal(t, "devel", build[3])
	assert.Equal(t, "runtime", final[3])
	assert.Equal(t, build[1:3], final[1:3], "both stages on the same CUDA")

	m := regexp.MustCompile(`/libtorch/(cu\d+)/libtorch-cxx11-abi-shared-with-deps-(\d+\.\d+\.\d+)%2B(cu\d+)\.zip$`).FindStringSubmatch(libtorchURL)
	require.NotNil(t, m, "libtorch download %q", libtorchURL)
	version, cuda := m[2], m[1]
	assert.Equal(t, cuda, m[3])
	assert.Equal(t, "cu"+build[1]+build[2], cuda, "libtorch built for the base image's CUDA")
	assert.FileExists(t, filepath.Join(reftest.Root(), "torch", "adapt", "stubs", "libtorch-"+version+".txt"),
		"torch/adapt has no committed stub list for libtorch %s", version)
	t.Logf("Dockerfile.cuda: libtorch %s+%s on %s / %s", version, cuda, froms[0], froms[1])

	all := strings.Join(runs, "\n")
	assert.Contains(t, all, "unzip -q /tmp/libtorch.zip -d /opt", "libtorch unpacks to /opt/libtorch")
	assert.Regexp(t, `LIBTORCH=/opt/libtorch go run \./torch/adapt`, all)
	assert.Regexp(t, `go build .*-o /usr/local/bin/vggish \./cmd/vggish`, all)
	assert.Contains(t, all, "ffmpeg")
	assert.Equal(t, "/cache", env["VGGISH_CACHE"])
	assert.Equal(t, `["vggish"]`, entrypoint)
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
						Image string
						Args  []string
						Env   []struct{ Name, Value string }
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
	assert.Contains(t, c.Image, ":cuda")
	require.NotEmpty(t, c.Args)
	assert.Equal(t, "embed", c.Args[0])
	assert.Contains(t, strings.Join(c.Args, " "), "--format parquet --pool mean --out-dir /data/embeddings")
	// The flags parse: the run gets as far as looking for the audio, a typed input that is missing here.
	code, _, stderr := cli(c.Args...)
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
}
