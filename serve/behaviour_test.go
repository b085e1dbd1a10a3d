package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"codeberg.org/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/serve/inference"
	"github.com/vggish-go/vggish/vggish"
)

// POST /v1/embed answers JSON, or .npy on asking, equal to the library's.
func TestEmbedEndpoint(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{})
	flac := audioFile(t, "flac", "sine=frequency=300:duration=2.5:sample_rate=44100")
	want, err := m.EmbedReader(t.Context(), bytes.NewReader(flac), "want")
	require.NoError(t, err)

	code, _, body := do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(flac))
	require.Equal(t, http.StatusOK, code, "%s", body)
	var got embedJSON
	require.NoError(t, json.Unmarshal(body, &got))
	var emb []float32
	raw, _ := json.Marshal(got.Embedding)
	require.NoError(t, json.Unmarshal(raw, &emb))
	assert.Equal(t, []int{2, 128}, got.Shape)
	assert.Equal(t, want.Data, emb)
	assert.Equal(t, want.Starts, got.Starts)
	assert.Equal(t, 44100, got.SampleRate)

	code, h, body := do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(flac), "Accept", "application/x-npy")
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Equal(t, "application/x-npy", h.Get("Content-Type"))
	var npy []float32
	require.NoError(t, npyio.Read(bytes.NewReader(body), &npy))
	assert.Equal(t, want.Data, npy)
}

// A quantising model's EMBEDDING is UINT8, its values the library's.
func TestQuantised(t *testing.T) {
	m := model(t, vggish.PCAQuantize)
	ts := start(t, m, Options{})
	wav := sineWAV(t, 2, 16000, 1)
	want, err := m.EmbedReader(t.Context(), bytes.NewReader(wav), "want")
	require.NoError(t, err)
	u8, err := want.Uint8()
	require.NoError(t, err)
	for _, binaryOut := range []bool{false, true} {
		body, n := binaryAudioBody(t, wav, binaryOut)
		code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/infer", bytes.NewReader(body), HeaderLength, strconv.Itoa(n))
		require.Equal(t, http.StatusOK, code, "%s", resp)
		assert.Equal(t, u8, decodeInfer(t, h, resp).u8)
	}
	code, _, body := do(t, "GET", ts.url+"/v2/models/vggish", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `{"name":"EMBEDDING","datatype":"UINT8","shape":[-1,128]}`)
}

// Every gRPC method answers as the protocol says; infer equals the library's.
func TestGRPC(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{Version: "test"})
	ctx := t.Context()
	live, err := ts.grpc.ServerLive(ctx, &inference.ServerLiveRequest{})
	require.NoError(t, err)
	assert.True(t, live.Live)
	ready, err := ts.grpc.ServerReady(ctx, &inference.ServerReadyRequest{})
	require.NoError(t, err)
	assert.True(t, ready.Ready)
	mr, err := ts.grpc.ModelReady(ctx, &inference.ModelReadyRequest{Name: "vggish", Version: "1"})
	require.NoError(t, err)
	assert.True(t, mr.Ready)
	sm, err := ts.grpc.ServerMetadata(ctx, &inference.ServerMetadataRequest{})
	require.NoError(t, err)
	assert.Equal(t, "test", sm.Version)
	assert.Equal(t, []string{"binary_tensor_data"}, sm.Extensions)
	mm, err := ts.grpc.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "vggish"})
	require.NoError(t, err)
	assert.Equal(t, "EMBEDDING", mm.Outputs[0].Name)
	assert.Equal(t, []int64{-1, 128}, mm.Outputs[0].Shape)
	assert.Equal(t, "BYTES", mm.Inputs[0].Datatype)
	_, err = ts.grpc.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "other"})
	assert.Equal(t, codes.NotFound, status.Code(err))

	wav := sineWAV(t, 3, 48000, 1)
	want, err := m.EmbedReader(ctx, bytes.NewReader(wav), "want")
	require.NoError(t, err)
	check := func(t *testing.T, r *inference.ModelInferResponse, want *vggish.Embeddings) {
		require.Len(t, r.Outputs, 2)
		assert.Equal(t, []int64{int64(want.Rows()), 128}, r.Outputs[0].Shape)
		assert.Equal(t, "FP32", r.Outputs[0].Datatype)
		assert.Equal(t, want.Data, float32s(r.RawOutputContents[0]))
		st := r.RawOutputContents[1]
		starts := make([]float64, len(st)/8)
		for i := range starts {
			starts[i] = math.Float64frombits(binary.LittleEndian.Uint64(st[8*i:]))
		}
		assert.Equal(t, want.Starts, starts)
	}
	audioIn := &inference.ModelInferRequest_InferInputTensor{Name: "AUDIO", Datatype: "BYTES", Shape: []int64{1}}
	t.Run("AUDIO raw", func(t *testing.T) {
		raw := append(binary.LittleEndian.AppendUint32(nil, uint32(len(wav))), wav...)
		r, err := ts.grpc.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "vggish", Id: "x",
			Inputs: []*inference.ModelInferRequest_InferInputTensor{audioIn}, RawInputContents: [][]byte{raw}})
		require.NoError(t, err)
		assert.Equal(t, "x", r.Id)
		check(t, r, want)
	})
	t.Run("AUDIO contents", func(t *testing.T) {
		in := &inference.ModelInferRequest_InferInputTensor{Name: "AUDIO", Datatype: "BYTES", Shape: []int64{1},
			Contents: &inference.InferTensorContents{BytesContents: [][]byte{wav}}}
		r, err := ts.grpc.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "vggish", Inputs: []*inference.ModelInferRequest_InferInputTensor{in}})
		require.NoError(t, err)
		check(t, r, want)
	})
	t.Run("WAVEFORM contents", func(t *testing.T) {
		samples := make([]float32, 17000)
		for i := range samples {
			samples[i] = float32(math.Sin(float64(i) * 0.01))
		}
		want, err := m.Embed(ctx, samples, 16000)
		require.NoError(t, err)
		in := &inference.ModelInferRequest_InferInputTensor{Name: "WAVEFORM", Datatype: "FP32", Shape: []int64{17000},
			Parameters: map[string]*inference.InferParameter{"sample_rate": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: 16000}}},
			Contents:   &inference.InferTensorContents{Fp32Contents: samples}}
		r, err := ts.grpc.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "vggish", Inputs: []*inference.ModelInferRequest_InferInputTensor{in}})
		require.NoError(t, err)
		check(t, r, want)
	})
	t.Run("START alone counts its clips", func(t *testing.T) {
		_, _, body := do(t, "GET", ts.url+"/metrics", nil)
		before := metric(t, body, "vggish_clips_total")
		raw := append(binary.LittleEndian.AppendUint32(nil, uint32(len(wav))), wav...)
		r, err := ts.grpc.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "vggish", RawInputContents: [][]byte{raw},
			Inputs: []*inference.ModelInferRequest_InferInputTensor{audioIn}, Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "START"}}})
		require.NoError(t, err)
		require.Len(t, r.Outputs, 1)
		_, _, body = do(t, "GET", ts.url+"/metrics", nil)
		assert.Equal(t, float64(want.Rows()), metric(t, body, "vggish_clips_total")-before)
	})
	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			req  *inference.ModelInferRequest
			code codes.Code
			kind Kind
		}{
			{&inference.ModelInferRequest{ModelName: "other"}, codes.NotFound, KindNotFound},
			{&inference.ModelInferRequest{ModelName: "vggish"}, codes.InvalidArgument, KindRequest},
			{&inference.ModelInferRequest{ModelName: "vggish", Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "WAVEFORM", Datatype: "FP32", Shape: []int64{3}}}},
				codes.InvalidArgument, KindRequest},
			{&inference.ModelInferRequest{ModelName: "vggish", Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "AUDIO", Datatype: "BYTES", Shape: []int64{1},
				Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("not audio at all")}}}}}, codes.InvalidArgument, KindFormat},
		} {
			_, err := ts.grpc.ModelInfer(ctx, c.req)
			assert.Equal(t, c.code, status.Code(err), "%v", err)
			assert.True(t, strings.HasPrefix(status.Convert(err).Message(), string(c.kind)+": "), "%v", err)
		}
	})
}

// Hostile bodies get a JSON error of the right kind, and a small file claiming hours is refused
// without being decoded whole.
func TestHostile(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{MaxRequestBytes: 1 << 20, MaxDuration: 10 * time.Second})
	wav := sineWAV(t, 2, 16000, 1)
	hours := audioFile(t, "flac", "anullsrc=sample_rate=8000:channel_layout=mono", "-t", "600")
	require.Less(t, len(hours), 1<<20, "10 minutes of silence compress to a small FLAC")
	infer := ts.url + "/v2/models/vggish/infer"
	waveform := func(rate int, n int) string {
		data, _ := json.Marshal(make([]float32, n))
		return fmt.Sprintf(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[%d],"parameters":{"sample_rate":%d},"data":%s}]}`, n, rate, data)
	}
	binBody, headLen := binaryAudioBody(t, wav, false)
	tera := `{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[16],"parameters":{"sample_rate":16000,"binary_data_size":1099511627776}}]}`
	var overclaim []byte // binary_data_size says 100 bytes more than come
	{
		head := fmt.Sprintf(`{"inputs":[{"name":"AUDIO","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":%d}}]}`, len(wav)+104)
		overclaim = append([]byte(head), binary.LittleEndian.AppendUint32(nil, uint32(len(wav)+100))...)
		overclaim = append(overclaim, wav...)
		t.Run("binary data shorter than declared", func(t *testing.T) {
			code, _, body := do(t, "POST", infer, bytes.NewReader(overclaim), HeaderLength, strconv.Itoa(len(head)))
			requireError(t, code, body, http.StatusBadRequest, KindRequest)
		})
	}
	for _, c := range []struct {
		name, url string
		body      []byte
		headers   []string
		code      int
		kind      Kind
	}{
		{"truncated WAV", ts.url + "/v1/embed", wav[:len(wav)/2], nil, http.StatusBadRequest, KindFormat},
		{"text", ts.url + "/v1/embed", []byte("hello, this is not audio"), nil, http.StatusBadRequest, KindFormat},
		{"a server path", ts.url + "/v1/embed", []byte("/etc/passwd"), nil, http.StatusBadRequest, KindFormat},
		{"empty", ts.url + "/v1/embed", nil, nil, http.StatusBadRequest, KindFormat},
		{"over the byte limit", ts.url + "/v1/embed", make([]byte, 2<<20), nil, http.StatusRequestEntityTooLarge, KindTooLarge},
		{"over the byte limit, infer", infer, make([]byte, 2<<20), nil, http.StatusRequestEntityTooLarge, KindTooLarge},
		{"a FLAC of 10 minutes", ts.url + "/v1/embed", hours, nil, http.StatusRequestEntityTooLarge, KindTooLarge},
		{"WAVEFORM too long", infer, []byte(waveform(1000, 20000)), nil, http.StatusRequestEntityTooLarge, KindTooLarge},
		{"WAVEFORM rate too low", infer, []byte(waveform(100, 200)), nil, http.StatusUnsupportedMediaType, KindUnsupported},
		{"WAVEFORM without a rate", infer, []byte(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[2],"data":[0,0]}]}`), nil, http.StatusBadRequest, KindRequest},
		{"WAVEFORM shape and data disagree", infer, []byte(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[3],"parameters":{"sample_rate":16000},"data":[0,0]}]}`), nil, http.StatusBadRequest, KindRequest},
		{"WAVEFORM a string for a number", infer, []byte(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[2],"parameters":{"sample_rate":16000},"data":[0,"NaN"]}]}`), nil, http.StatusBadRequest, KindRequest},
		{"AUDIO as FP32", infer, []byte(`{"inputs":[{"name":"AUDIO","datatype":"FP32","shape":[1],"data":[0]}]}`), nil, http.StatusBadRequest, KindRequest},
		{"two inputs", infer, []byte(`{"inputs":[{"name":"AUDIO"},{"name":"AUDIO"}]}`), nil, http.StatusBadRequest, KindRequest},
		{"an unknown output", infer, []byte(waveform(16000, 16000)[:len(waveform(16000, 16000))-1] + `,"outputs":[{"name":"LOGITS"}]}`), nil, http.StatusBadRequest, KindRequest},
		{"not JSON", infer, []byte("{{{"), nil, http.StatusBadRequest, KindRequest},
		{"header longer than the body", infer, binBody[:headLen-5], []string{HeaderLength, strconv.Itoa(headLen)}, http.StatusBadRequest, KindRequest},
		{"header length not a number", infer, binBody, []string{HeaderLength, "x"}, http.StatusBadRequest, KindRequest},
		{"binary data without the header", infer, binBody[:headLen], nil, http.StatusBadRequest, KindRequest},
		{"binary_data_size past the byte limit", infer, []byte(tera), []string{HeaderLength, strconv.Itoa(len(tera))}, http.StatusRequestEntityTooLarge, KindTooLarge},
		{"bytes past the binary data", infer, append(append([]byte(nil), binBody...), "junk"...), []string{HeaderLength, strconv.Itoa(headLen)}, http.StatusBadRequest, KindRequest},
		{"bytes past the JSON", infer, []byte(waveform(16000, 16000) + `{}`), nil, http.StatusBadRequest, KindRequest},
		{"WAVEFORM rows of other lengths", infer, []byte(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[2,2],"parameters":{"sample_rate":16000},"data":[[1,2,3],[4]]}]}`), nil, http.StatusBadRequest, KindRequest},
		{"a BYTES length that lies", infer, append(append([]byte(nil), binBody[:headLen]...), 0xff, 0xff, 0xff, 0x7f), []string{HeaderLength, strconv.Itoa(headLen)}, http.StatusBadRequest, KindRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			code, _, body := do(t, "POST", c.url, bytes.NewReader(c.body), c.headers...)
			requireError(t, code, body, c.code, c.kind)
			assert.Less(t, time.Since(start), 20*time.Second)
		})
	}
	// Raw connections: a client that waits for the answer before sending a body over the limit gets its
	// 413 at once, not at the request's time limit; a body cut short is the client's error.
	for _, c := range []struct {
		name, request string
		code          int
		kind          Kind
	}{
		{"over the byte limit, the client waiting", "POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n", http.StatusRequestEntityTooLarge, KindTooLarge},
		{"a body cut short", "POST /v2/models/vggish/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\":[", http.StatusBadRequest, KindRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write([]byte(c.request))
			require.NoError(t, err)
			if strings.HasSuffix(c.request, "[") {
				require.NoError(t, conn.(*net.TCPConn).CloseWrite())
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err, "an answer within 10 s")
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			requireError(t, resp.StatusCode, body, c.code, c.kind)
		})
	}
	t.Run("huge headers", func(t *testing.T) {
		code, _, _ := do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(wav), "X-Junk", strings.Repeat("a", 200<<10))
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
	})
	t.Run("gRPC", func(t *testing.T) {
		audio := func(b []byte) *inference.ModelInferRequest {
			return &inference.ModelInferRequest{ModelName: "vggish", RawInputContents: [][]byte{append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)},
				Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "AUDIO", Datatype: "BYTES", Shape: []int64{1}}}}
		}
		for _, c := range []struct {
			name string
			req  *inference.ModelInferRequest
			msg  string
		}{
			// grpc-go refuses the message before it reaches the service, with the status it sets.
			{"over the byte limit", audio(append(append([]byte(nil), wav...), make([]byte, 2<<20)...)), "larger than max"},
			{"a FLAC of 10 minutes", audio(hours), "too large: "},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := ts.grpc.ModelInfer(t.Context(), c.req)
				assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
				assert.Contains(t, status.Convert(err).Message(), c.msg)
			})
		}
		r, err := ts.grpc.ModelInfer(t.Context(), audio(wav))
		require.NoError(t, err, "the gRPC server still serves")
		assert.Equal(t, []int64{2, 128}, r.Outputs[0].Shape)
		_, _, body := do(t, "GET", ts.url+"/metrics", nil)
		assert.Contains(t, string(body), `vggish_requests_total{endpoint="grpc_ModelInfer",result="too large"} 2`+"\n", "both refusals counted once")
		assert.Contains(t, string(body), `vggish_requests_total{endpoint="grpc_ModelInfer",result="ok"} 1`+"\n")
	})
	// The server still serves.
	code, _, body := do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(wav))
	assert.Equal(t, http.StatusOK, code, "%s", body)
}

// stalled is a request on its own connection that sends its headers and the first bytes of its
// body, then waits: finish sends the rest.
type stalled struct {
	conn net.Conn
	rest []byte
}

// newStalled posts body to path, sending only its first n bytes until finish; the response comes on
// the channel.
func newStalled(t testing.TB, url, path string, body []byte, n int) (*stalled, chan result) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body[:n])
	require.NoError(t, err)
	done := make(chan result, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, resp.Header, b, err}
	}()
	return &stalled{conn, body[n:]}, done
}

func (s *stalled) finish() { s.conn.Write(s.rest) }

type result struct {
	code int
	h    http.Header
	body []byte
	err  error
}

// inFlight waits until the server has n requests in flight.
func (s *Server) waitInFlight(t testing.TB, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.inflight == n
	}, 30*time.Second, 5*time.Millisecond, "%d requests in flight", n)
}

// The queue counts what a request's audio holds: samples by their duration, each channel's with
// Each; encoded audio by its size, or 1 clip when its size is unknown, until its decoding shows more.
func TestQueueCount(t *testing.T) {
	stereo := &input{wave: true, samples: make([]float32, 2*48000), channels: 2, rate: 16000} // 3 s
	for _, c := range []struct {
		name string
		in   *input
		each bool
		want int
	}{
		{"WAVEFORM", stereo, false, 4},
		{"WAVEFORM, each channel", stereo, true, 8},
		{"encoded, 10 clips of bytes", &input{audio: bytes.NewReader(nil), size: 10 * 30720}, false, 11},
		{"encoded, size unknown", &input{audio: bytes.NewReader(nil), size: -1}, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) { assert.Equal(t, c.want, c.in.clips(c.each)) })
	}

	// Three uploads of unknown size are admitted at once (each was counted as the largest body the
	// server takes), and their counts grow as they are decoded.
	ts := start(t, model(t, vggish.NoPostprocess), Options{})
	wav := sineWAV(t, 20, 16000, 1)
	half := 44 + 2*16000*10 // the header and 10 s
	var (
		pipes []*io.PipeWriter
		dones []chan int
	)
	for range 3 {
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() {
			resp, err := http.Post(ts.url+"/v1/embed", "audio/wav", pr) // chunked
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		_, err := pw.Write(wav[:half])
		require.NoError(t, err)
		pipes, dones = append(pipes, pw), append(dones, done)
	}
	ts.waitInFlight(t, 3)
	require.Eventually(t, func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		// The model decodes as many inputs at once as it has workers (one a CPU), and whole chunks of
		// samples: the first upload's count grows to most of its 10 s, the others' stay at least 1.
		return ts.queued >= 8+2
	}, 30*time.Second, 5*time.Millisecond, "the decoded audio counted")
	for i, pw := range pipes {
		_, err := pw.Write(wav[half:])
		require.NoError(t, err)
		pw.Close()
		assert.Equal(t, http.StatusOK, <-dones[i])
	}
	ts.waitInFlight(t, 0)
	assert.Zero(t, ts.queued)
}

// Past the concurrency limit or the queue's clips, requests get 503 with Retry-After, and are
// served again once there is room.
func TestOverload(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	wav := sineWAV(t, 2, 16000, 1)
	for _, c := range []struct {
		name string
		opts Options
	}{{"concurrency", Options{MaxConcurrent: 1}}, {"queue", Options{MaxQueueClips: 5, RetryAfter: 3 * time.Second}}} {
		t.Run(c.name, func(t *testing.T) {
			ts := start(t, m, c.opts)
			held, done := newStalled(t, ts.url, "/v1/embed", wav, 100)
			ts.waitInFlight(t, 1)
			code, h, body := do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(wav))
			requireError(t, code, body, http.StatusServiceUnavailable, KindOverloaded)
			assert.Equal(t, strconv.Itoa(int(max(1, c.opts.RetryAfter.Seconds()))), h.Get("Retry-After"))
			held.finish()
			r := <-done
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusOK, r.code, "%s", r.body)
			code, _, body = do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(wav))
			assert.Equal(t, http.StatusOK, code, "%s", body)
		})
	}
}

// 64 clients at once, over REST and gRPC, each get the library's result for their audio.
func Test64Clients(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{})
	var files [][]byte
	var wants []*vggish.Embeddings
	for i := range 4 {
		f := audioFile(t, "wav", fmt.Sprintf("sine=frequency=%d:duration=%g:sample_rate=16000", 200+100*i, 1+0.5*float64(i)))
		w, err := m.EmbedReader(t.Context(), bytes.NewReader(f), "want")
		require.NoError(t, err)
		files, wants = append(files, f), append(wants, w)
	}
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Go(func() {
			f, want := files[c%4], wants[c%4]
			if c%2 == 0 {
				body, n := binaryAudioBody(t, f, true)
				code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/infer", bytes.NewReader(body), HeaderLength, strconv.Itoa(n))
				if assert.Equal(t, http.StatusOK, code, "%s", resp) {
					assert.Equal(t, want.Data, decodeInfer(t, h, resp).emb)
				}
				return
			}
			raw := append(binary.LittleEndian.AppendUint32(nil, uint32(len(f))), f...)
			r, err := ts.grpc.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "vggish", RawInputContents: [][]byte{raw},
				Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "AUDIO", Datatype: "BYTES", Shape: []int64{1}}}})
			if assert.NoError(t, err) {
				assert.Equal(t, want.Data, float32s(r.RawOutputContents[0]))
			}
		})
	}
	wg.Wait()
	code, _, body := do(t, "GET", ts.url+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `vggish_requests_total{endpoint="infer",result="ok"} 32`)
	assert.Contains(t, string(body), `vggish_requests_total{endpoint="grpc_ModelInfer",result="ok"} 32`)
	assert.Contains(t, string(body), "vggish_clips_total ")
	assert.Contains(t, string(body), "vggish_requests_in_flight 0")
}

// The Model's passes show in /metrics through BatchMetrics: every clip served ran in a reported pass,
// and each pass has its size, queue wait and time.
func TestBatchMetrics(t *testing.T) {
	batches := NewBatchMetrics()
	m, err := vggish.New(t.Context(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", OnBatch: batches.Observe})
	require.NoError(t, err)
	defer m.Close()
	ts := start(t, m, Options{Batches: batches})
	_, _, body := do(t, "GET", ts.url+"/metrics", nil)
	assert.Zero(t, metric(t, body, "vggish_batch_clips_count"), "no pass before any request")

	wav := sineWAV(t, 3, 16000, 1) // 3 clips
	var wg sync.WaitGroup
	for c := range 6 {
		wg.Go(func() {
			if c%2 == 0 {
				code, _, resp := do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(wav))
				assert.Equal(t, http.StatusOK, code, "%s", resp)
				return
			}
			raw := append(binary.LittleEndian.AppendUint32(nil, uint32(len(wav))), wav...)
			_, err := ts.grpc.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "vggish", RawInputContents: [][]byte{raw},
				Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "AUDIO", Datatype: "BYTES", Shape: []int64{1}}}})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	code, _, body := do(t, "GET", ts.url+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	passes := metric(t, body, "vggish_batch_clips_count")
	assert.Equal(t, 18.0, metric(t, body, "vggish_batch_clips_sum"), "every clip served, in a reported pass")
	assert.Equal(t, metric(t, body, "vggish_clips_total"), metric(t, body, "vggish_batch_clips_sum"))
	assert.GreaterOrEqual(t, passes, 1.0)
	assert.LessOrEqual(t, passes, 6.0, "no more passes than requests: each request's 3 clips fit one")
	assert.GreaterOrEqual(t, metric(t, body, "vggish_batch_runs_sum"), 6.0, "every request's clips in a pass")
	for _, h := range []string{"vggish_batch_runs", "vggish_queue_wait_seconds", "vggish_forward_duration_seconds"} {
		assert.Equal(t, passes, metric(t, body, h+"_count"), h)
	}
	assert.Positive(t, metric(t, body, "vggish_forward_duration_seconds_sum"))
	assert.Contains(t, string(body), `vggish_batch_clips_bucket{le="4"}`)
}

// With a queue delay, concurrent requests wait for each other's clips and share passes; each result
// still equals the library's without one, to the bit.
func TestQueueDelay(t *testing.T) {
	batches := NewBatchMetrics()
	m, err := vggish.New(t.Context(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", MaxQueueDelay: 300 * time.Millisecond,
		OnBatch: batches.Observe})
	require.NoError(t, err)
	defer m.Close()
	ts := start(t, m, Options{Batches: batches})
	ref := model(t, vggish.NoPostprocess)
	var files [][]byte
	var wants []*vggish.Embeddings
	for i := range 4 {
		f := audioFile(t, "wav", fmt.Sprintf("sine=frequency=%d:duration=%g:sample_rate=16000", 250+150*i, 1+0.7*float64(i)))
		w, err := ref.EmbedReader(t.Context(), bytes.NewReader(f), "want")
		require.NoError(t, err)
		files, wants = append(files, f), append(wants, w)
	}
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			body, n := binaryAudioBody(t, files[c%4], true)
			code, h, resp := do(t, "POST", ts.url+"/v2/models/vggish/infer", bytes.NewReader(body), HeaderLength, strconv.Itoa(n))
			if assert.Equal(t, http.StatusOK, code, "%s", resp) {
				assert.Equal(t, wants[c%4].Data, decodeInfer(t, h, resp).emb)
			}
		})
	}
	wg.Wait()
	_, _, body := do(t, "GET", ts.url+"/metrics", nil)
	assert.Contains(t, string(body), "vggish_batch_clips_sum 14\n", "2 × (1 + 1 + 2 + 3) clips, each in a pass")
}

// When Serve's context ends, readiness goes off, new requests get 503, and the requests in flight
// are answered before Serve returns nil; past the drain timeout Serve returns an error.
func TestDrain(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	wav := sineWAV(t, 2, 16000, 1)
	want, err := m.EmbedReader(t.Context(), bytes.NewReader(wav), "want")
	require.NoError(t, err)
	ts := start(t, m, Options{})
	var held []*stalled
	var dones []chan result
	for range 2 {
		s, done := newStalled(t, ts.url, "/v1/embed", wav, 100)
		held, dones = append(held, s), append(dones, done)
	}
	ts.waitInFlight(t, 2)
	ts.stop()
	require.Eventually(t, func() bool { return !ts.Ready() }, 10*time.Second, time.Millisecond)
	code, _, body := do(t, "GET", ts.url+"/v2/health/ready", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	code, _, _ = do(t, "GET", ts.url+"/v2/health/live", nil)
	assert.Equal(t, http.StatusOK, code)
	code, _, body = do(t, "POST", ts.url+"/v1/embed", bytes.NewReader(wav))
	requireError(t, code, body, http.StatusServiceUnavailable, KindOverloaded)
	select {
	case err := <-ts.done:
		t.Fatalf("Serve returned with requests in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	for i, s := range held {
		s.finish()
		r := <-dones[i]
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.code, "%s", r.body)
		var got embedJSON
		require.NoError(t, json.Unmarshal(r.body, &got))
		assert.Equal(t, want.Starts, got.Starts)
	}
	select {
	case err := <-ts.done:
		assert.NoError(t, err)
		ts.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return once drained")
	}

	t.Run("an upload under way", func(t *testing.T) {
		ts := start(t, m, Options{})
		samples := make([]float32, 16000)
		data, _ := json.Marshal(samples)
		body := []byte(fmt.Sprintf(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[16000],"parameters":{"sample_rate":16000},"data":%s}]}`, data))
		s, done := newStalled(t, ts.url, "/v2/models/vggish/infer", body, 100)
		require.Eventually(t, func() bool {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			return ts.active == 1
		}, 10*time.Second, time.Millisecond)
		ts.stop()
		require.Eventually(t, func() bool { return !ts.Ready() }, 10*time.Second, time.Millisecond)
		s.finish()
		r := <-done
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusOK, r.code, "a request begun before the drain is served: %s", r.body)
		select {
		case err := <-ts.done:
			assert.NoError(t, err)
			ts.done <- err
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return once drained")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		ts := start(t, m, Options{DrainTimeout: 200 * time.Millisecond})
		s, done := newStalled(t, ts.url, "/v1/embed", wav, 100)
		ts.waitInFlight(t, 1)
		ts.stop()
		select {
		case err := <-ts.done:
			assert.ErrorContains(t, err, "1 requests still in flight after the drain timeout of 200ms")
			ts.done <- err
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return at the drain timeout")
		}
		s.conn.Close()
		<-done
	})
}

// A gRPC message that stops arriving is ended at the request's time limit, as a REST body is.
func TestGRPCStalledMessage(t *testing.T) {
	ts := start(t, model(t, vggish.NoPostprocess), Options{RequestTimeout: 500 * time.Millisecond})
	conn, err := net.Dial("tcp", ts.grpcAddr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(http2.ClientPreface))
	require.NoError(t, err)
	fr := http2.NewFramer(conn, conn)
	require.NoError(t, fr.WriteSettings())
	var head bytes.Buffer
	enc := hpack.NewEncoder(&head)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", inference.GRPCInferenceService_ModelInfer_FullMethodName},
		{":authority", ts.grpcAddr}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		require.NoError(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}))
	}
	require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: head.Bytes(), EndHeaders: true}))
	msg := make([]byte, 5+1000) // a message declared 1 MB long, of which 1000 bytes come
	binary.BigEndian.PutUint32(msg[1:], 1<<20)
	require.NoError(t, fr.WriteData(1, false, msg))
	began := time.Now()
	conn.SetReadDeadline(began.Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		require.NoError(t, err, "the server ends the call within 10 s")
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 || f.Header().Type == http2.FrameRSTStream {
			break
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			require.NoError(t, fr.WriteSettingsAck())
		}
	}
	assert.Less(t, time.Since(began), 5*time.Second)
	require.Eventually(t, func() bool {
		_, _, body := do(t, "GET", ts.url+"/metrics", nil)
		return strings.Contains(string(body), `vggish_requests_total{endpoint="grpc_ModelInfer",result="timeout"} 1`)
	}, 5*time.Second, 10*time.Millisecond, "counted as a timeout")
}

// A client that goes away cancels its work: the request leaves the server as canceled long before
// its audio could have been embedded.
func TestCancel(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{})
	n := 16000 * 600 // 10 minutes: 625 clips, tens of seconds here
	raw := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(math.Sin(float64(i)*0.05))))
	}
	head := fmt.Sprintf(`{"inputs":[{"name":"WAVEFORM","datatype":"FP32","shape":[%d],"parameters":{"sample_rate":16000,"binary_data_size":%d}}]}`, n, len(raw))
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "POST", ts.url+"/v2/models/vggish/infer", bytes.NewReader(append([]byte(head), raw...)))
	require.NoError(t, err)
	req.Header.Set(HeaderLength, strconv.Itoa(len(head)))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	ts.waitInFlight(t, 1)
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	cancel()
	require.Error(t, <-done)
	ts.waitInFlight(t, 0)
	t.Logf("the request left %s after its client", time.Since(began))
	code, _, body := do(t, "GET", ts.url+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `vggish_requests_total{endpoint="infer",result="canceled"} 1`)
}

// A slow client cannot hold the server: headers past the read-header timeout and a body past the
// request timeout end the request.
func TestTimeouts(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{ReadHeaderTimeout: 200 * time.Millisecond, RequestTimeout: 500 * time.Millisecond})
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("POST /v1/embed HTTP/1.1\r\nHost: x\r\n"))
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c) // the server closes the connection
	assert.NotContains(t, string(b), "200 OK")

	wav := sineWAV(t, 2, 16000, 1)
	began := time.Now()
	_, done := newStalled(t, ts.url, "/v1/embed", wav, 100)
	r := <-done
	if r.err == nil {
		assert.NotEqual(t, http.StatusOK, r.code)
	}
	assert.Less(t, time.Since(began), 5*time.Second)
	ts.waitInFlight(t, 0)
}

// With a token, everything but health and metrics needs it, over REST and gRPC.
func TestAuth(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{AuthToken: "s3cret"})
	for _, path := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/vggish/ready", "/metrics"} {
		code, _, _ := do(t, "GET", ts.url+path, nil)
		assert.Equal(t, http.StatusOK, code, path)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cre", "s3cret", "Bearer s3cret2"} {
		code, h, body := do(t, "GET", ts.url+"/v2", nil, "Authorization", auth)
		requireError(t, code, body, http.StatusUnauthorized, KindUnauthorized)
		assert.Equal(t, `Bearer realm="vggish"`, h.Get("WWW-Authenticate"))
	}
	code, _, _ := do(t, "GET", ts.url+"/v2", nil, "Authorization", "Bearer s3cret")
	assert.Equal(t, http.StatusOK, code)

	_, err := ts.grpc.ServerLive(t.Context(), &inference.ServerLiveRequest{})
	assert.NoError(t, err)
	_, err = ts.grpc.ServerMetadata(t.Context(), &inference.ServerMetadataRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer s3cret")
	_, err = ts.grpc.ServerMetadata(ctx, &inference.ServerMetadataRequest{})
	assert.NoError(t, err)
}

// With a certificate both protocols speak TLS.
func TestTLS(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	s, err := New(m, Options{TLS: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"h2", "http/1.1"}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, hl, gl) }()
	defer func() { cancel(); <-done }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + hl.Addr().String() + "/v2/health/live")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = http.Get("http://" + hl.Addr().String() + "/v2/health/live")
	if err == nil {
		t.Log("plain HTTP to a TLS port got an answer (Go's TLS server answers 400)")
	}
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	require.NoError(t, err)
	defer conn.Close()
	live, err := inference.NewGRPCInferenceServiceClient(conn).ServerLive(t.Context(), &inference.ServerLiveRequest{})
	require.NoError(t, err)
	assert.True(t, live.Live)
}

// A body of unknown length (chunked) is cut at the limit: a WAV whose samples run past it is refused
// as too large, not embedded in part.
func TestChunkedOverLimit(t *testing.T) {
	m := model(t, vggish.NoPostprocess)
	ts := start(t, m, Options{MaxRequestBytes: 64 << 10})
	wav := sineWAV(t, 4, 16000, 1) // 128 kB
	pr, pw := io.Pipe()
	go func() { pw.Write(wav); pw.Close() }()
	code, _, body := do(t, "POST", ts.url+"/v1/embed", pr)
	requireError(t, code, body, http.StatusRequestEntityTooLarge, KindTooLarge)
}
