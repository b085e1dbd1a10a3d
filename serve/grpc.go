package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/vggish-go/vggish/serve/inference"
)

// grpcService is the protocol's GRPCInferenceService.
type grpcService struct {
	inference.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// grpcOpen are the methods that need no token: the health checks.
var grpcOpen = map[string]bool{"ServerLive": true, "ServerReady": true, "ModelReady": true}

// grpcIntercept checks the token, turns errors into statuses with their kind, and counts and logs
// each call as the REST routes do.
func (s *Server) grpcIntercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	c, _ := ctx.Value(grpcCallKey{}).(*grpcCall)
	if c != nil {
		c.served = true
	}
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	var (
		resp any
		err  error
	)
	if md, _ := metadata.FromIncomingContext(ctx); !grpcOpen[method] && !s.authorized(strings.Join(md.Get("authorization"), ",")) {
		err = failure(KindUnauthorized, "a valid bearer token is required")
	} else {
		resp, err = s.recovered(func() (any, error) { return h(ctx, req) })
	}
	result, clips := "ok", 0
	if c != nil {
		clips = c.clips
	}
	if err != nil {
		var kind Kind
		kind, err = grpcStatus(err)
		result = string(kind)
	}
	s.grpcDone(ctx, method, result, clips, start, err)
	return resp, err
}

// grpcStatus is err as a gRPC status of its kind, the kind leading its message as in REST's errors.
func grpcStatus(err error) (Kind, error) {
	kind := kindOf(err)
	return kind, status.Error(grpcCode(kind), string(kind)+": "+err.Error())
}

// grpcDone counts and logs a call.
func (s *Server) grpcDone(ctx context.Context, method, result string, clips int, start time.Time, err error) {
	s.observe("grpc_"+method, result, clips, start)
	level := slog.LevelInfo
	if grpcOpen[method] && err == nil {
		level = slog.LevelDebug
	}
	remote := ""
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	s.log.Log(ctx, level, "request", "proto", "grpc", "method", method, "result", result, "clips", clips,
		"seconds", time.Since(start).Seconds(), "remote", remote, errAttr(err))
}

type grpcCallKey struct{}

// grpcCall is a call from its headers to its end.
type grpcCall struct {
	method string
	start  time.Time
	cancel context.CancelFunc // ends the call's time limit
	leave  func()             // the end of an inference call's count in the server's active requests
	served bool               // the interceptor saw it, and counted it
	clips  int                // the clips an inference call embedded
}

// grpcTap starts a call when its headers arrive, before grpc-go reads its message: it gives the call
// the request's time limit, which a message that never finishes arriving would otherwise escape, and
// counts an inference call in as active (see Server.enter) or refuses it when the server drains.
// grpcRefusals ends it.
// Calls of other methods are left alone: grpc-go answers them Unimplemented without reading a
// message or reporting their end.
func (s *Server) grpcTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	desc := inference.GRPCInferenceService_ServiceDesc
	method, ok := strings.CutPrefix(info.FullMethodName, "/"+desc.ServiceName+"/")
	if !ok || !slices.ContainsFunc(desc.Methods, func(m grpc.MethodDesc) bool { return m.MethodName == method }) {
		return ctx, nil
	}
	c := &grpcCall{method: method, start: time.Now()}
	if info.FullMethodName == inference.GRPCInferenceService_ModelInfer_FullMethodName {
		leave, err := s.enter()
		if err != nil {
			kind, err := grpcStatus(err)
			s.grpcDone(ctx, c.method, string(kind), 0, c.start, err)
			return nil, err
		}
		c.leave = leave
	}
	ctx, c.cancel = context.WithTimeout(context.WithValue(ctx, grpcCallKey{}, c), s.opts.RequestTimeout)
	return ctx, nil
}

// grpcRefusals ends the calls grpcTap starts, and counts and logs those that grpc-go ends before the
// service and its interceptor see them: a message over the size limit (ResourceExhausted, "too
// large"), one that does not parse ("request"), one past the time limit or whose client went away.
type grpcRefusals struct{ s *Server }

func (g grpcRefusals) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (g grpcRefusals) HandleRPC(ctx context.Context, st stats.RPCStats) {
	end, ok := st.(*stats.End)
	c, _ := ctx.Value(grpcCallKey{}).(*grpcCall)
	if !ok || c == nil {
		return
	}
	c.cancel()
	if c.leave != nil {
		c.leave()
	}
	if c.served || end.Error == nil {
		return
	}
	kind := KindRequest
	switch status.Code(end.Error) {
	case codes.ResourceExhausted:
		kind = KindTooLarge
	case codes.DeadlineExceeded:
		kind = KindTimeout
	case codes.Canceled:
		kind = KindCanceled
	}
	g.s.grpcDone(ctx, c.method, string(kind), 0, c.start, end.Error)
}

func (grpcRefusals) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (grpcRefusals) HandleConn(context.Context, stats.ConnStats)                       {}

func (g *grpcService) ServerLive(context.Context, *inference.ServerLiveRequest) (*inference.ServerLiveResponse, error) {
	return &inference.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(context.Context, *inference.ServerReadyRequest) (*inference.ServerReadyResponse, error) {
	return &inference.ServerReadyResponse{Ready: g.s.Ready()}, nil
}

func (g *grpcService) ModelReady(_ context.Context, r *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	if err := checkModel(r.Name, r.Version); err != nil {
		return nil, err
	}
	return &inference.ModelReadyResponse{Ready: g.s.Ready()}, nil
}

func (g *grpcService) ServerMetadata(context.Context, *inference.ServerMetadataRequest) (*inference.ServerMetadataResponse, error) {
	m := g.s.serverMetadata()
	return &inference.ServerMetadataResponse{Name: m.Name, Version: m.Version, Extensions: m.Extensions}, nil
}

func (g *grpcService) ModelMetadata(_ context.Context, r *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	if err := checkModel(r.Name, r.Version); err != nil {
		return nil, err
	}
	m := g.s.modelMetadata()
	tensors := func(ts []tensorMeta) []*inference.ModelMetadataResponse_TensorMetadata {
		var out []*inference.ModelMetadataResponse_TensorMetadata
		for _, t := range ts {
			out = append(out, &inference.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
		}
		return out
	}
	return &inference.ModelMetadataResponse{Name: m.Name, Versions: m.Versions, Platform: m.Platform,
		Inputs: tensors(m.Inputs), Outputs: tensors(m.Outputs)}, nil
}

// ModelInfer embeds the request's one input; outputs come in raw_output_contents.
func (g *grpcService) ModelInfer(ctx context.Context, r *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	if err := checkModel(r.ModelName, r.ModelVersion); err != nil {
		return nil, err
	}
	if len(r.Inputs) != 1 {
		return nil, failure(KindRequest, "%d inputs: want one, AUDIO or WAVEFORM", len(r.Inputs))
	}
	t := r.Inputs[0]
	rate, err := sampleRate(grpcParam(t.Parameters, r.Parameters))
	if err != nil {
		return nil, err
	}
	in, err := newInput(t.Name, t.Datatype, t.Shape, rate)
	if err != nil {
		return nil, err
	}
	if len(r.RawInputContents) > 1 {
		return nil, failure(KindRequest, "%d raw_input_contents for one input", len(r.RawInputContents))
	}
	if err := in.readGRPC(t.Contents, r.RawInputContents); err != nil {
		return nil, err
	}
	e, err := g.s.embed(ctx, in, inAudio)
	if err != nil {
		return nil, err
	}
	if c, _ := ctx.Value(grpcCallKey{}).(*grpcCall); c != nil {
		c.clips = e.Rows()
	}
	outs, err := g.s.outputs(e)
	if err != nil {
		return nil, err
	}
	resp := &inference.ModelInferResponse{ModelName: ModelName, ModelVersion: modelVersion, Id: r.Id}
	want := map[string]bool{}
	for _, o := range r.Outputs {
		if o.Name != outEmbedding && o.Name != outStart {
			return nil, failure(KindRequest, "no output %q: the outputs are %s and %s", o.Name, outEmbedding, outStart)
		}
		want[o.Name] = true
	}
	for _, o := range outs {
		if len(want) > 0 && !want[o.name] {
			continue
		}
		resp.Outputs = append(resp.Outputs, &inference.ModelInferResponse_InferOutputTensor{Name: o.name, Datatype: o.datatype, Shape: o.shape})
		resp.RawOutputContents = append(resp.RawOutputContents, o.raw())
	}
	return resp, nil
}

// grpcParam finds the sample_rate parameter, the input's or else the request's.
func grpcParam(ps ...map[string]*inference.InferParameter) (int64, bool, error) {
	for _, p := range ps {
		v, ok := p["sample_rate"]
		if !ok {
			continue
		}
		switch c := v.GetParameterChoice().(type) {
		case *inference.InferParameter_Int64Param:
			return c.Int64Param, true, nil
		case *inference.InferParameter_Uint64Param:
			return int64(min(c.Uint64Param, math.MaxInt64)), true, nil
		}
		return 0, true, failure(KindRequest, "sample_rate: want an int64_param")
	}
	return 0, false, nil
}

// readGRPC takes the input's data from raw (raw_input_contents: AUDIO a BYTES element, a 4-byte
// little-endian length then the bytes; WAVEFORM little-endian float32) or else from contents.
func (in *input) readGRPC(contents *inference.InferTensorContents, raw [][]byte) error {
	if len(raw) == 1 {
		b := raw[0]
		if !in.wave {
			if len(b) < 4 || int(binary.LittleEndian.Uint32(b)) != len(b)-4 {
				return failure(KindRequest, "AUDIO raw contents: want one BYTES element (a 4-byte length, then the file)")
			}
			in.audio, in.size = bytes.NewReader(b[4:]), int64(len(b)-4)
			return nil
		}
		if len(b)%4 != 0 {
			return failure(KindRequest, "WAVEFORM raw contents of %d bytes: not float32 values", len(b))
		}
		in.samples = float32s(b)
		return in.checkCount()
	}
	if !in.wave {
		if len(contents.GetBytesContents()) != 1 {
			return failure(KindRequest, "AUDIO: want one element in bytes_contents or raw_input_contents")
		}
		b := contents.GetBytesContents()[0]
		in.audio, in.size = bytes.NewReader(b), int64(len(b))
		return nil
	}
	in.samples = contents.GetFp32Contents()
	return in.checkCount()
}
