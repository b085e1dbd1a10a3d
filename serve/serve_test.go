package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/audio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/serve/inference"
	"github.com/vggish-go/vggish/vggish"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeModels()
	golden.Cleanup()
	os.Exit(code)
}

var (
	modelsMu sync.Mutex
	models   = map[vggish.Postprocess]*vggish.Model{}
)

// model is a Model on the formula weights, shared by the tests (one per post-processing).
func model(t testing.TB, post vggish.Postprocess) *vggish.Model {
	t.Helper()
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m := models[post]; m != nil {
		return m
	}
	opts := vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", Postprocess: post}
	if post != vggish.NoPostprocess {
		opts.PCAPath = golden.Path("pca.npz")
	}
	m, err := vggish.New(context.Background(), opts)
	require.NoError(t, err)
	models[post] = m
	return m
}

func closeModels() {
	for _, m := range models {
		m.Close()
	}
}

// audioFile has ffmpeg make an audio file of a lavfi source and returns its bytes.
func audioFile(t testing.TB, format, source string, extra ...string) []byte {
	t.Helper()
	args := append([]string{"-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", source}, extra...)
	out, err := exec.Command("ffmpeg", append(args, "-f", format, "pipe:1")...).Output()
	require.NoError(t, err)
	return out
}

// sineWAV is seconds of a 440 Hz sine, 16-bit at rate Hz, channels channels.
func sineWAV(t testing.TB, seconds float64, rate, channels int) []byte {
	return audioFile(t, "wav", fmt.Sprintf("sine=frequency=440:duration=%g:sample_rate=%d", seconds, rate), "-ac", strconv.Itoa(channels))
}

// testServer is a Server serving on loopback.
type testServer struct {
	*Server
	url      string
	grpcAddr string
	grpc     inference.GRPCInferenceServiceClient
	stop     context.CancelFunc
	done     chan error
}

func start(t testing.TB, m *vggish.Model, opts Options) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(m, opts)
	require.NoError(t, err)
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, url: "http://" + hl.Addr().String(), grpcAddr: gl.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx, hl, gl) }()
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	require.NoError(t, err)
	ts.grpc = inference.NewGRPCInferenceServiceClient(conn)
	t.Cleanup(func() {
		conn.Close()
		cancel()
		select {
		case <-ts.done:
		case <-time.After(time.Minute):
			t.Error("Serve did not return")
		}
	})
	return ts
}

// metric is the value of the metric name (with its labels, if any) in a /metrics body.
func metric(t *testing.T, body []byte, name string) float64 {
	t.Helper()
	match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	require.NotNil(t, match, "%s in\n%s", name, body)
	v, err := strconv.ParseFloat(string(match[1]), 64)
	require.NoError(t, err)
	return v
}

// do sends a request and returns the status, headers and body.
func do(t *testing.T, method, url string, body io.Reader, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

// requireError checks an error response's status and kind.
func requireError(t *testing.T, code int, body []byte, wantCode int, kind Kind) {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	assert.Equal(t, wantCode, code, "%s", body)
	assert.Equal(t, kind, e.Kind, "%s", body)
	assert.NotEmpty(t, e.Error)
}

// binaryAudioBody is an infer request with AUDIO in the binary tensor data extension, and its
// header's length.
func binaryAudioBody(t testing.TB, audio []byte, binaryOut bool) ([]byte, int) {
	req := map[string]any{
		"id":     "r1",
		"inputs": []any{map[string]any{"name": "AUDIO", "datatype": "BYTES", "shape": []int{1}, "parameters": map[string]any{"binary_data_size": len(audio) + 4}}},
	}
	if binaryOut {
		req["parameters"] = map[string]any{"binary_data_output": true}
	}
	head, err := json.Marshal(req)
	require.NoError(t, err)
	body := append(head, binary.LittleEndian.AppendUint32(nil, uint32(len(audio)))...)
	return append(body, audio...), len(head)
}

// inferResponse is a decoded infer response, binary outputs included.
type inferResponse struct {
	inferResponseJSON
	emb    []float32
	u8     []uint8
	starts []float64
}

func decodeInfer(t *testing.T, h http.Header, body []byte) inferResponse {
	t.Helper()
	headLen := len(body)
	if v := h.Get(HeaderLength); v != "" {
		var err error
		headLen, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	var r struct {
		inferResponseJSON
		Outputs []struct {
			outputJSON
			Data json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(body[:headLen], &r), "%s", body[:headLen])
	out := inferResponse{inferResponseJSON: r.inferResponseJSON}
	rest := body[headLen:]
	for _, o := range r.Outputs {
		var raw []byte
		if size, ok := o.Parameters["binary_data_size"]; ok {
			n := int(size.(float64))
			raw, rest = rest[:n], rest[n:]
		}
		switch o.Datatype {
		case "FP32":
			if raw != nil {
				out.emb = float32s(raw)
			} else {
				require.NoError(t, json.Unmarshal(o.Data, &out.emb))
			}
			assert.Equal(t, []int64{int64(len(out.emb) / 128), 128}, o.Shape)
		case "UINT8":
			if raw != nil {
				out.u8 = raw
			} else {
				var v []uint16
				require.NoError(t, json.Unmarshal(o.Data, &v))
				for _, x := range v {
					out.u8 = append(out.u8, uint8(x))
				}
			}
		case "FP64":
			if raw != nil {
				for i := 0; i < len(raw); i += 8 {
					out.starts = append(out.starts, math.Float64frombits(binary.LittleEndian.Uint64(raw[i:])))
				}
			} else {
				require.NoError(t, json.Unmarshal(o.Data, &out.starts))
			}
			assert.Equal(t, []int64{int64(len(out.starts))}, o.Shape)
		}
	}
	assert.Empty(t, rest, "bytes after the outputs")
	return out
}

// The REST endpoints answer as the protocol says, and infer's results equal the library's to the bit,
// whatever the input's form (binary or JSON AUDIO, WAVEFORM mono or [channels, samples]).
func TestREST(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{Version: "test"})
	for _, c := range []struct{ path, want string }{
		{"/v2/health/live", `{"live":true}`},
		{"/v2/health/ready", `{"ready":true}`},
		{"/v2/models/vggish/ready", `{"ready":true}`},
		{"/v2/models/vggish/versions/1/ready", `{"ready":true}`},
		{"/v2", `{"name":"vggish-go","version":"test","extensions":["binary_tensor_data"]}`},
		{"/v2/models/vggish", `{"name":"vggish","versions":["1"],"platform":"vggish-go_libtorch","inputs":[{"name":"AUDIO","datatype":"BYTES","shape":[1]},{"name":"WAVEFORM","datatype":"FP32","shape":[-1,-1]}],"outputs":[{"name":"EMBEDDING","datatype":"FP32","shape":[-1,128]},{"name":"START","datatype":"FP64","shape":[-1]}]}`},
		{"/v2/models/vggish/versions/1", ""},
	} {
		code, h, body := do(t, "GET", ts.url+c.path, nil)
		assert.Equal(t, http.StatusOK, code, c.path)
		assert.Equal(t, "application/json", h.Get("Content-Type"))
		if c.want != "" {
			assert.JSONEq(t, c.want, string(body), c.path)
		}
	}
	for _, path := range []string{"/v2/models/other", "/v2/models/other/ready", "/v2/models/vggish/versions/2", "/nothing"} {
		code, _, body := do(t, "GET", ts.url+path, nil)
		requireError(t, code, body, http.StatusNotFound, KindNotFound)
	}

	wav := sineWAV(t, 3.5, 22050, 2)
	want, err := m.EmbedReader(t.Context(), bytes.NewReader(wav), "want")
	require.NoError(t, err)
	require.Equal(t, 3, want.Rows())

	t.Run("AUDIO binary in and out", func(t *testing.T) {
		body, n := binaryAudioBody(t, wav, true)
		code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/infer", bytes.NewReader(body), HeaderLength, strconv.Itoa(n))
		require.Equal(t, http.StatusOK, code, "%s", resp)
		assert.Equal(t, "application/octet-stream", h.Get("Content-Type"))
		r := decodeInfer(t, h, resp)
		assert.Equal(t, "r1", r.ID)
		assert.Equal(t, "vggish", r.ModelName)
		assert.Equal(t, want.Data, r.emb)
		assert.Equal(t, want.Starts, r.starts)
	})
	t.Run("AUDIO binary in, JSON out", func(t *testing.T) {
		body, n := binaryAudioBody(t, wav, false)
		code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/versions/1/infer", bytes.NewReader(body), HeaderLength, strconv.Itoa(n))
		require.Equal(t, http.StatusOK, code, "%s", resp)
		r := decodeInfer(t, h, resp)
		assert.Equal(t, want.Data, r.emb)
		assert.Equal(t, want.Starts, r.starts)
	})
	t.Run("AUDIO base64 JSON, one output", func(t *testing.T) {
		body := fmt.Sprintf(`{"inputs":[{"name":"AUDIO","datatype":"BYTES","shape":[1],"data":[%q]}],"outputs":[{"name":"START"}]}`,
			base64.StdEncoding.EncodeToString(wav))
		code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/infer", strings.NewReader(body))
		require.Equal(t, http.StatusOK, code, "%s", resp)
		r := decodeInfer(t, h, resp)
		assert.Nil(t, r.emb)
		assert.Equal(t, want.Starts, r.starts)
	})

	samples := make([]float32, 2*20000)
	for i := range samples {
		samples[i] = float32(math.Sin(float64(i)*0.03)) * 0.5
	}
	mono, err := m.Embed(t.Context(), samples[:20000], 16000)
	require.NoError(t, err)
	t.Run("WAVEFORM JSON", func(t *testing.T) {
		data, _ := json.Marshal(samples[:20000])
		body := fmt.Sprintf(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[20000],"parameters":{"sample_rate":16000},"data":%s}]}`, data)
		code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/infer", strings.NewReader(body))
		require.Equal(t, http.StatusOK, code, "%s", resp)
		r := decodeInfer(t, h, resp)
		assert.Equal(t, mono.Data, r.emb)
	})
	t.Run("WAVEFORM binary, two channels, rate on the request", func(t *testing.T) {
		// Row-major [2, 10000]: channel 0's samples, then channel 1's.
		raw := make([]byte, 0, 4*len(samples[:20000]))
		for _, v := range samples[:20000] {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
		head := fmt.Sprintf(`{"parameters":{"sample_rate":8000},"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[2,10000],"parameters":{"binary_data_size":%d}}],"outputs":[{"name":"EMBEDDING","parameters":{"binary_data":true}}]}`, len(raw))
		code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/infer", bytes.NewReader(append([]byte(head), raw...)), HeaderLength, strconv.Itoa(len(head)))
		require.Equal(t, http.StatusOK, code, "%s", resp)
		r := decodeInfer(t, h, resp)
		inter := make([]float32, 20000)
		for i := range 10000 {
			inter[2*i], inter[2*i+1] = samples[i], samples[10000+i]
		}
		stereo, err := m.EmbedBuffer(t.Context(), float32Buffer(inter, 2, 8000))
		require.NoError(t, err)
		assert.Equal(t, stereo.Data, r.emb)
	})
}

func float32Buffer(data []float32, channels, rate int) *audio.Float32Buffer {
	return &audio.Float32Buffer{Format: &audio.Format{NumChannels: channels, SampleRate: rate}, Data: data}
}
