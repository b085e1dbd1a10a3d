package serve

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vggish-go/vggish/internal/npyfile"
)

// HeaderLength is the binary tensor data extension's header: the length of the JSON at the start of
// a body whose tensors' data follow it in binary.
const HeaderLength = "Inference-Header-Content-Length"

// Handler returns the REST endpoints: the Open Inference Protocol's under /v2, POST /v1/embed and
// GET /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	open, guarded := true, false
	mux.Handle("GET /v2/health/live", s.route("live", open, func(w http.ResponseWriter, r *http.Request) (int, error) {
		return 0, writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	}))
	mux.Handle("GET /v2/health/ready", s.route("ready", open, func(w http.ResponseWriter, r *http.Request) (int, error) {
		return 0, s.writeReady(w)
	}))
	mux.Handle("GET /v2/models/{model}/ready", s.route("model_ready", open, s.modelReady))
	mux.Handle("GET /v2/models/{model}/versions/{version}/ready", s.route("model_ready", open, s.modelReady))
	mux.Handle("GET /v2", s.route("server_metadata", guarded, func(w http.ResponseWriter, r *http.Request) (int, error) {
		return 0, writeJSON(w, http.StatusOK, s.serverMetadata())
	}))
	mux.Handle("GET /v2/models/{model}", s.route("model_metadata", guarded, s.modelMetadataREST))
	mux.Handle("GET /v2/models/{model}/versions/{version}", s.route("model_metadata", guarded, s.modelMetadataREST))
	mux.Handle("POST /v2/models/{model}/infer", s.route("infer", guarded, s.entered(s.inferREST)))
	mux.Handle("POST /v2/models/{model}/versions/{version}/infer", s.route("infer", guarded, s.entered(s.inferREST)))
	mux.Handle("POST /v1/embed", s.route("embed", guarded, s.entered(s.embedREST)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	mux.Handle("/", s.route("other", open, func(w http.ResponseWriter, r *http.Request) (int, error) {
		return 0, failure(KindNotFound, "no endpoint %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// handler serves a request and returns the clips it embedded, or its failure (which route writes).
type handler func(w http.ResponseWriter, r *http.Request) (clips int, err error)

// route wraps h with the token check (unless open), the request size limit, the error response, the
// metrics and the request log.
func (s *Server) route(endpoint string, open bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// A copy: net/http decides from its own request's body, unread, whether to drain it after the
		// answer or close the connection. Draining a body that is over the limit, or that the client
		// holds back until it has the answer, would delay a refusal until the request's time ran out.
		r = r.WithContext(r.Context())
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes)
		var (
			clips int
			err   error
		)
		switch {
		case !open && !s.authorized(r.Header.Get("Authorization")):
			w.Header().Set("WWW-Authenticate", `Bearer realm="vggish"`)
			err = failure(KindUnauthorized, "a valid bearer token is required")
		case r.ContentLength > s.opts.MaxRequestBytes: // refused before any of it is read
			err = failure(KindTooLarge, "a body of %d bytes, over the limit of %d", r.ContentLength, s.opts.MaxRequestBytes)
		default:
			var n any
			n, err = s.recovered(func() (any, error) { return h(w, r) })
			clips, _ = n.(int)
		}
		result, status := "ok", http.StatusOK
		if err != nil {
			kind := kindOf(err)
			result, status = string(kind), httpStatus(kind)
			if kind == KindOverloaded {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.opts.RetryAfter.Seconds()))))
			}
			writeJSON(w, status, errorBody{Error: err.Error(), Kind: kind})
		}
		s.observe(endpoint, result, clips, start)
		level := slog.LevelInfo
		if open && err == nil {
			level = slog.LevelDebug // probes every few seconds
		}
		s.log.Log(r.Context(), level, "request", "proto", "http", "method", r.Method, "path", r.URL.Path, "status", status,
			"result", result, "clips", clips, "bytes", r.ContentLength, "seconds", time.Since(start).Seconds(), "remote", r.RemoteAddr, errAttr(err))
	})
}

// entered counts h's requests in as active (see Server.enter) while they run.
func (s *Server) entered(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) (int, error) {
		leave, err := s.enter()
		if err != nil {
			return 0, err
		}
		defer leave()
		return h(w, r)
	}
}

// bodyError classifies a failure to read a request's body: over the limit or past the request's time
// as kindOf says, else the client's (a body cut short), never the model's. A request failure passes as
// it is.
func bodyError(err error) error {
	var (
		e   *Error
		mbe *http.MaxBytesError
	)
	if errors.As(err, &e) || errors.As(err, &mbe) || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return &Error{KindRequest, fmt.Errorf("reading the body: %w", err)}
}

// atEOF fails when r holds more than was declared: binary data past its binary_data_size.
func atEOF(r io.Reader) error {
	var b [1]byte
	n, err := io.ReadFull(r, b[:])
	switch {
	case n > 0:
		return failure(KindRequest, "the body goes on past its declared binary data")
	case err == io.EOF:
		return nil
	}
	return bodyError(err)
}

// recovered runs fn, making a panic (a bug) the request's failure rather than the process's.
func (s *Server) recovered(fn func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = failure(KindModel, "internal error: %v", r)
			s.log.Error("panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	return fn()
}

func (s *Server) observe(endpoint, result string, clips int, start time.Time) {
	s.metrics.requests.WithLabelValues(endpoint, result).Inc()
	s.metrics.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	if result == "ok" && clips > 0 {
		s.metrics.clips.Add(float64(clips))
		s.metrics.reqClips.Observe(float64(clips))
	}
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("error", err.Error())
}

// errorBody is an error response: the protocol's {"error": ...} with the failure's kind.
type errorBody struct {
	Error string `json:"error"`
	Kind  Kind   `json:"kind"`
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func (s *Server) writeReady(w http.ResponseWriter) error {
	status := http.StatusOK
	if !s.Ready() {
		status = http.StatusServiceUnavailable
	}
	return writeJSON(w, status, map[string]bool{"ready": status == http.StatusOK})
}

// checkModel refuses a model name or version other than the server's.
func checkModel(name, version string) error {
	if name != ModelName {
		return failure(KindNotFound, "no model %q: this server has %q", name, ModelName)
	}
	if version != "" && version != modelVersion {
		return failure(KindNotFound, "no version %q of model %q: it has %q", version, ModelName, modelVersion)
	}
	return nil
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) (int, error) {
	if err := checkModel(r.PathValue("model"), r.PathValue("version")); err != nil {
		return 0, err
	}
	return 0, s.writeReady(w)
}

func (s *Server) modelMetadataREST(w http.ResponseWriter, r *http.Request) (int, error) {
	if err := checkModel(r.PathValue("model"), r.PathValue("version")); err != nil {
		return 0, err
	}
	return 0, writeJSON(w, http.StatusOK, s.modelMetadata())
}

// tensorJSON is a tensor of the protocol's JSON messages (metadata, requests, responses).
type tensorJSON struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int64         `json:"shape"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type inferRequestJSON struct {
	ID         string         `json:"id,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []tensorJSON   `json:"inputs"`
	Outputs    []struct {
		Name       string         `json:"name"`
		Parameters map[string]any `json:"parameters,omitempty"`
	} `json:"outputs,omitempty"`
}

type outputJSON struct {
	Name       string         `json:"name"`
	Datatype   string         `json:"datatype"`
	Shape      []int64        `json:"shape"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data,omitempty"`
}

type inferResponseJSON struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version"`
	ID           string       `json:"id,omitempty"`
	Outputs      []outputJSON `json:"outputs"`
}

// inferREST is the protocol's infer, JSON or with the binary tensor data extension.
func (s *Server) inferREST(w http.ResponseWriter, r *http.Request) (int, error) {
	if err := checkModel(r.PathValue("model"), r.PathValue("version")); err != nil {
		return 0, err
	}
	body := bufio.NewReader(r.Body)
	headerLen := int64(-1)
	if h := r.Header.Get(HeaderLength); h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil || n < 2 || n > s.opts.MaxRequestBytes {
			return 0, failure(KindRequest, "%s %q: want a length from 2 to %d", HeaderLength, h, s.opts.MaxRequestBytes)
		}
		headerLen = n
	}
	var head io.Reader = body
	if headerLen >= 0 {
		head = io.LimitReader(body, headerLen)
	}
	raw, err := io.ReadAll(head)
	if err != nil {
		return 0, bodyError(err)
	}
	if headerLen >= 0 && int64(len(raw)) < headerLen {
		return 0, failure(KindRequest, "the body ends within its %d-byte JSON header", headerLen)
	}
	var req inferRequestJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return 0, failure(KindRequest, "the request is not the protocol's JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, failure(KindRequest, "the request's JSON is followed by more than white space")
	}
	if len(req.Inputs) != 1 {
		return 0, failure(KindRequest, "%d inputs: want one, AUDIO or WAVEFORM", len(req.Inputs))
	}
	t := req.Inputs[0]
	rate, err := sampleRate(jsonParam(t.Parameters, req.Parameters))
	if err != nil {
		return 0, err
	}
	in, err := newInput(t.Name, t.Datatype, t.Shape, rate)
	if err != nil {
		return 0, err
	}
	var tail *exactReader // the binary data of a streamed AUDIO input
	if size, ok, err := binarySize(t.Parameters); err != nil {
		return 0, err
	} else if ok {
		if headerLen < 0 {
			return 0, failure(KindRequest, "binary_data_size without the %s header", HeaderLength)
		}
		if size > s.opts.MaxRequestBytes-headerLen {
			return 0, failure(KindTooLarge, "binary_data_size %d: more than a body of at most %d bytes holds after its %d-byte header", size, s.opts.MaxRequestBytes, headerLen)
		}
		if err := in.readBinary(body, size, &tail); err != nil {
			return 0, bodyError(err)
		}
		if tail == nil {
			if err := atEOF(body); err != nil {
				return 0, err
			}
		}
	} else if err := in.readJSON(t.Data); err != nil {
		return 0, err
	} else if err := atEOF(body); err != nil {
		return 0, err
	}
	e, err := s.embed(r.Context(), in, "AUDIO")
	if tail != nil && err == nil {
		if err = tail.finish(); err != nil {
			err = bodyError(err)
		} else {
			err = atEOF(body)
		}
	}
	if err != nil {
		return 0, err
	}
	binaryAll := jsonBool(req.Parameters, "binary_data_output")
	want := map[string]bool{} // output name → binary
	for _, o := range req.Outputs {
		if o.Name != outEmbedding && o.Name != outStart {
			return 0, failure(KindRequest, "no output %q: the outputs are %s and %s", o.Name, outEmbedding, outStart)
		}
		want[o.Name] = binaryAll || jsonBool(o.Parameters, "binary_data")
	}
	if len(req.Outputs) == 0 {
		want[outEmbedding], want[outStart] = binaryAll, binaryAll
	}
	outs, err := s.outputs(e)
	if err != nil {
		return 0, err
	}
	resp := inferResponseJSON{ModelName: ModelName, ModelVersion: modelVersion, ID: req.ID}
	var bin [][]byte
	for _, o := range outs {
		bin1, ok := want[o.name]
		if !ok {
			continue
		}
		oj := outputJSON{Name: o.name, Datatype: o.datatype, Shape: o.shape}
		if bin1 {
			oj.Parameters = map[string]any{"binary_data_size": len(o.raw())}
			bin = append(bin, o.raw())
		} else {
			oj.Data = o.data()
		}
		resp.Outputs = append(resp.Outputs, oj)
	}
	head2, err := json.Marshal(resp)
	if err != nil {
		return 0, err
	}
	if len(bin) == 0 {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set(HeaderLength, strconv.Itoa(len(head2)))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(head2)
	for _, b := range bin {
		w.Write(b)
	}
	return e.Rows(), nil
}

// jsonParam finds the sample_rate parameter, the input's or else the request's.
func jsonParam(ps ...map[string]any) (int64, bool, error) {
	for _, p := range ps {
		v, ok := p["sample_rate"]
		if !ok {
			continue
		}
		n, isNum := v.(json.Number)
		if !isNum {
			return 0, true, failure(KindRequest, "sample_rate %v: want an integer", v)
		}
		i, err := n.Int64()
		if err != nil {
			return 0, true, failure(KindRequest, "sample_rate %v: want an integer", v)
		}
		return i, true, nil
	}
	return 0, false, nil
}

func jsonBool(p map[string]any, name string) bool {
	b, _ := p[name].(bool)
	return b
}

// binarySize is an input's binary_data_size parameter, if any.
func binarySize(p map[string]any) (int64, bool, error) {
	v, ok := p["binary_data_size"]
	if !ok {
		return 0, false, nil
	}
	n, isNum := v.(json.Number)
	i, err := n.Int64()
	if !isNum || err != nil || i < 0 {
		return 0, false, failure(KindRequest, "binary_data_size %v: want a size in bytes", v)
	}
	return i, true, nil
}

// readJSON takes the input's data from the JSON "data": AUDIO as one base64 string, WAVEFORM as
// numbers, flat or nested.
func (in *input) readJSON(data json.RawMessage) error {
	if len(data) == 0 {
		return failure(KindRequest, "the input has no data and no binary_data_size")
	}
	if !in.wave {
		var s []string
		if err := json.Unmarshal(data, &s); err != nil || len(s) != 1 {
			return failure(KindRequest, "AUDIO data: want one base64 string (or binary data), as [\"UklGR...\"]")
		}
		b, err := base64.StdEncoding.DecodeString(s[0])
		if err != nil {
			return failure(KindRequest, "AUDIO data: %v", err)
		}
		in.audio, in.size = bytes.NewReader(b), int64(len(b))
		return nil
	}
	flat := data
	if t := bytes.TrimSpace(data); len(t) > 1 && t[0] == '[' && bytes.TrimSpace(t[1:])[0] == '[' {
		var rows [][]float32
		if err := json.Unmarshal(data, &rows); err != nil {
			return failure(KindRequest, "WAVEFORM data: %v", err)
		}
		for i, r := range rows {
			if len(in.shape) != 2 || int64(len(r)) != in.shape[1] {
				return failure(KindRequest, "WAVEFORM data: row %d has %d values for shape %v", i, len(r), in.shape)
			}
			in.samples = append(in.samples, r...)
		}
	} else if err := json.Unmarshal(flat, &in.samples); err != nil {
		return failure(KindRequest, "WAVEFORM data: %v", err)
	}
	return in.checkCount()
}

// readBinary takes size bytes of binary data from body: WAVEFORM's little-endian float32 samples
// read at once, AUDIO's encoded bytes (a BYTES element: a 4-byte little-endian length, then the
// bytes) as a stream for the decoder, whose every byte tail checks arrived.
func (in *input) readBinary(body io.Reader, size int64, tail **exactReader) error {
	if !in.wave {
		var n [4]byte
		if size < 4 {
			return failure(KindRequest, "AUDIO binary data of %d bytes: a BYTES element starts with its 4-byte length", size)
		}
		if _, err := io.ReadFull(body, n[:]); err != nil {
			return failure(KindRequest, "AUDIO binary data: %v", err)
		}
		if l := int64(binary.LittleEndian.Uint32(n[:])); l != size-4 {
			return failure(KindRequest, "AUDIO binary data of %d bytes holds an element of %d: want one element", size, l)
		}
		*tail = &exactReader{r: io.LimitReader(body, size-4), want: size - 4}
		in.audio, in.size = *tail, size-4
		return nil
	}
	if size%4 != 0 {
		return failure(KindRequest, "WAVEFORM binary data of %d bytes: not float32 values", size)
	}
	// Read as it arrives rather than into size bytes made at once: the size is the client's word.
	b, err := io.ReadAll(io.LimitReader(body, size))
	if err != nil {
		return err
	}
	if int64(len(b)) < size {
		return failure(KindRequest, "WAVEFORM binary data: the body ends after %d of its %d bytes", len(b), size)
	}
	in.samples = float32s(b)
	return in.checkCount()
}

// exactReader reads a stream that must hold want bytes: finish reads what the decoder left and fails
// when fewer arrived (the truncated body of a client that was cut off).
type exactReader struct {
	r         io.Reader
	want, got int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.got += int64(n)
	return n, err
}

func (e *exactReader) finish() error {
	n, err := io.Copy(io.Discard, e.r)
	if e.got += n; err == nil && e.got < e.want {
		return failure(KindRequest, "AUDIO binary data: %d bytes of the %d declared arrived", e.got, e.want)
	}
	return err
}

// embedREST is POST /v1/embed: the body is the audio; the answer JSON, or .npy with Accept:
// application/x-npy.
func (s *Server) embedREST(w http.ResponseWriter, r *http.Request) (int, error) {
	e, err := s.embed(r.Context(), &input{audio: r.Body, size: r.ContentLength}, "upload")
	if err != nil {
		return 0, err
	}
	outs, err := s.outputs(e)
	if err != nil {
		return 0, err
	}
	emb, start := outs[0], outs[1]
	shape := make([]int, len(emb.shape))
	for i, d := range emb.shape {
		shape[i] = int(d)
	}
	if strings.Contains(r.Header.Get("Accept"), "application/x-npy") {
		var buf bytes.Buffer
		if emb.u8 != nil {
			err = npyfile.Encode(&buf, emb.u8, shape...)
		} else {
			err = npyfile.Encode(&buf, emb.f32, shape...)
		}
		if err != nil {
			return 0, err
		}
		w.Header().Set("Content-Type", "application/x-npy")
		w.WriteHeader(http.StatusOK)
		w.Write(buf.Bytes())
		return e.Rows(), nil
	}
	return e.Rows(), writeJSON(w, http.StatusOK, embedJSON{Shape: shape, Embedding: emb.data(), Starts: start.f64,
		SampleRate: e.SampleRate, Duration: e.Duration})
}

// embedJSON is /v1/embed's JSON answer.
type embedJSON struct {
	Shape      []int     `json:"shape"`
	Embedding  any       `json:"embedding"` // flat, row-major in shape
	Starts     []float64 `json:"starts"`
	SampleRate int       `json:"sample_rate"`
	Duration   float64   `json:"duration"`
}
