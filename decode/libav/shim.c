#include "shim.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/bprint.h>
#include <libavutil/channel_layout.h>
#include <libavutil/mem.h>

// A stream's channels: before ffmpeg 5.1 (libavutil 57.24; Ubuntu 22.04's 4.4, which the CUDA image
// has) a count and a mask, since then an AVChannelLayout. The helpers below hide which.
#if LIBAVUTIL_VERSION_INT < AV_VERSION_INT(57, 24, 100)
typedef struct {
	int nb_channels;
	uint64_t mask;
} vg_layout;
static int layout_of_frame(vg_layout *l, const AVFrame *f) {
	*l = (vg_layout){f->channels, f->channel_layout};
	return 0;
}
static int layout_of_params(vg_layout *l, const AVCodecParameters *p) {
	*l = (vg_layout){p->channels, p->channel_layout};
	return 0;
}
static void layout_free(vg_layout *l) { (void)l; }
static int frame_channels(const AVFrame *f) { return f->channels; }
static int layout_differs(const vg_layout *l, const AVFrame *f) {
	return f->channels != l->nb_channels || f->channel_layout != l->mask;
}
static void layout_describe(const vg_layout *l, char *buf, int size) {
	av_get_channel_layout_string(buf, size, l->nb_channels, l->mask);
}
#else
typedef AVChannelLayout vg_layout;
static int layout_of_frame(vg_layout *l, const AVFrame *f) { return av_channel_layout_copy(l, &f->ch_layout); }
static int layout_of_params(vg_layout *l, const AVCodecParameters *p) {
	return av_channel_layout_copy(l, &p->ch_layout);
}
static void layout_free(vg_layout *l) { av_channel_layout_uninit(l); }
static int frame_channels(const AVFrame *f) { return f->ch_layout.nb_channels; }
static int layout_differs(const vg_layout *l, const AVFrame *f) {
	return av_channel_layout_compare(&f->ch_layout, l) != 0;
}
static void layout_describe(const vg_layout *l, char *buf, int size) { av_channel_layout_describe(l, buf, size); }
#endif

struct vg_decoder {
	AVFormatContext *fmt;
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *frame;
	int stream;
	int rate;
	vg_layout layout;
	int pending;     // the frame in `frame` has not been handed out yet (vg_open decoded it)
	int draining;    // the demuxer has ended: the decoder is being flushed
	int64_t decoded; // frames decoded and decoding errors, as the ffmpeg command counts them
	int64_t errors;
	double *buf;
	size_t cap;
	int opened; // the file itself is open: any other input is refused (open_once)
	int (*default_open)(AVFormatContext *, AVIOContext **, const char *, int, AVDictionary **);
};

// The first error libav logs while a file is decoded: it says more than the error code (a worker
// decodes one file at a time, so one buffer serves).
static char first_log[256];

static void log_callback(void *avcl, int level, const char *fmt, va_list vl) {
	(void)avcl;
	if (level > AV_LOG_ERROR || first_log[0] != 0)
		return;
	vsnprintf(first_log, sizeof first_log, fmt, vl);
	size_t n = strlen(first_log);
	while (n > 0 && (first_log[n - 1] == '\n' || first_log[n - 1] == ' '))
		first_log[--n] = 0;
}

static void set_error(char *err, size_t errlen, const char *what, int code) {
	char msg[AV_ERROR_MAX_STRING_SIZE] = "";
	if (code != 0)
		av_strerror(code, msg, sizeof msg);
	if (first_log[0] != 0 && code != 0)
		snprintf(err, errlen, "%s: %s (%s)", what, msg, first_log);
	else if (code != 0)
		snprintf(err, errlen, "%s: %s", what, msg);
	else
		snprintf(err, errlen, "%s", what);
}

// Demuxers that read other files than their input (a concat script, a playlist) are refused by the
// format whitelist that Go passes (decode/internal/demuxers), which reaches the contexts the concat
// demuxer makes for its files; and every open after the file's own is refused here, as HLS and DASH
// make theirs through the context's io_open, as would any other reader of nested inputs.
static int open_once(AVFormatContext *s, AVIOContext **pb, const char *url, int flags, AVDictionary **options) {
	vg_decoder *d = s->opaque;
	if (d->opened) {
		if (first_log[0] == 0)
			snprintf(first_log, sizeof first_log, "it opens another input, %s: refused", url);
		return AVERROR(EPERM);
	}
	d->opened = 1;
	return d->default_open(s, pb, url, flags, options);
}

void vg_close(vg_decoder *d) {
	if (d == NULL)
		return;
	avcodec_free_context(&d->dec);
	avformat_close_input(&d->fmt);
	av_packet_free(&d->pkt);
	av_frame_free(&d->frame);
	layout_free(&d->layout);
	av_free(d->buf);
	av_free(d);
}

// receive decodes the next frame into d->frame: 1 with a frame, 0 at the end, or a negative error.
// It follows the ffmpeg command (fftools/ffmpeg.c, 5.1 to 7): a packet the decoder refuses is
// counted and skipped, a demuxer error ends the input as its end would.
static int receive(vg_decoder *d) {
	for (;;) {
		int ret = avcodec_receive_frame(d->dec, d->frame);
		if (ret == 0) {
			d->decoded++;
			return 1;
		}
		if (ret == AVERROR_EOF)
			return 0;
		if (ret != AVERROR(EAGAIN)) {
			d->errors++;
			if (d->draining)
				return 0;
			continue;
		}
		if (d->draining)
			return 0;
		ret = av_read_frame(d->fmt, d->pkt);
		if (ret < 0) {
			d->draining = 1;
			ret = avcodec_send_packet(d->dec, NULL);
			if (ret < 0)
				return 0;
			continue;
		}
		if (d->pkt->stream_index == d->stream) {
			ret = avcodec_send_packet(d->dec, d->pkt);
			if (ret < 0 && ret != AVERROR(EAGAIN))
				d->errors++;
		}
		av_packet_unref(d->pkt);
	}
}

char *vg_demuxers(void) {
	AVBPrint b;
	av_bprint_init(&b, 0, AV_BPRINT_SIZE_UNLIMITED);
	void *it = NULL;
	const AVInputFormat *f;
	while ((f = av_demuxer_iterate(&it)) != NULL)
		av_bprintf(&b, "%s\n", f->name);
	char *list = NULL;
	return av_bprint_finalize(&b, &list) < 0 ? NULL : list;
}

void vg_free(void *p) { av_free(p); }

vg_decoder *vg_open(const char *path, const char *formats, char *err, size_t errlen) {
	first_log[0] = 0;
	av_log_set_callback(log_callback);
	vg_decoder *d = av_mallocz(sizeof *d);
	if (d == NULL) {
		set_error(err, errlen, "out of memory", AVERROR(ENOMEM));
		return NULL;
	}
	d->pkt = av_packet_alloc();
	d->frame = av_frame_alloc();
	if (d->pkt == NULL || d->frame == NULL) {
		set_error(err, errlen, "out of memory", AVERROR(ENOMEM));
		vg_close(d);
		return NULL;
	}
	// As the ffmpeg command is run: "file:" so that the name is never a protocol or an option, and
	// the file protocol alone, so that a playlist cannot reach the network (nor, by open_once, other
	// files).
	char *url = av_asprintf("file:%s", path);
	d->fmt = avformat_alloc_context();
	if (url == NULL || d->fmt == NULL) {
		av_free(url);
		set_error(err, errlen, "out of memory", AVERROR(ENOMEM));
		vg_close(d);
		return NULL;
	}
	d->fmt->opaque = d;
	d->default_open = d->fmt->io_open;
	d->fmt->io_open = open_once;
	AVDictionary *opts = NULL;
	av_dict_set(&opts, "protocol_whitelist", "file", 0);
	av_dict_set(&opts, "format_whitelist", formats, 0);
	int ret = avformat_open_input(&d->fmt, url, NULL, &opts);
	av_dict_free(&opts);
	av_free(url);
	if (ret < 0) {
		set_error(err, errlen, "opening it", ret);
		vg_close(d);
		return NULL;
	}
	if ((ret = avformat_find_stream_info(d->fmt, NULL)) < 0) {
		set_error(err, errlen, "reading its streams", ret);
		vg_close(d);
		return NULL;
	}
	d->stream = -1;
	for (unsigned i = 0; i < d->fmt->nb_streams; i++) {
		if (d->stream < 0 && d->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
			d->stream = (int)i;
		else
			d->fmt->streams[i]->discard = AVDISCARD_ALL;
	}
	if (d->stream < 0) {
		set_error(err, errlen, "no audio stream", 0);
		vg_close(d);
		return NULL;
	}
	AVStream *st = d->fmt->streams[d->stream];
	const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
	if (codec == NULL) {
		snprintf(err, errlen, "no decoder for its audio (codec %s)", avcodec_get_name(st->codecpar->codec_id));
		vg_close(d);
		return NULL;
	}
	d->dec = avcodec_alloc_context3(codec);
	if (d->dec == NULL) {
		set_error(err, errlen, "out of memory", AVERROR(ENOMEM));
		vg_close(d);
		return NULL;
	}
	if ((ret = avcodec_parameters_to_context(d->dec, st->codecpar)) < 0) {
		set_error(err, errlen, "setting up its decoder", ret);
		vg_close(d);
		return NULL;
	}
	d->dec->pkt_timebase = st->time_base;
	if ((ret = avcodec_open2(d->dec, codec, NULL)) < 0) {
		set_error(err, errlen, "opening its decoder", ret);
		vg_close(d);
		return NULL;
	}
	ret = receive(d);
	if (ret == 1) {
		d->pending = 1;
		d->rate = d->frame->sample_rate;
		ret = layout_of_frame(&d->layout, d->frame);
	} else {
		// No frame: the ffmpeg command then takes the format from the stream's parameters.
		d->rate = st->codecpar->sample_rate;
		ret = layout_of_params(&d->layout, st->codecpar);
	}
	if (ret < 0) {
		set_error(err, errlen, "out of memory", ret);
		vg_close(d);
		return NULL;
	}
	if (d->rate <= 0 || d->layout.nb_channels <= 0) {
		set_error(err, errlen, "cannot determine the format of its audio stream", 0);
		vg_close(d);
		return NULL;
	}
	return d;
}

int vg_rate(const vg_decoder *d) { return d->rate; }

int vg_channels(const vg_decoder *d) { return d->layout.nb_channels; }

// convert writes the frame's samples to d->buf as the ffmpeg command's conversion to float64
// (libswresample's audioconvert.c) does: integers scaled by 2^-(bits-1), u8 offset by 128, floats
// widened. Every such conversion is exact.
static int convert(vg_decoder *d, const AVFrame *f) {
	int ch = frame_channels(f), n = f->nb_samples;
	size_t need = (size_t)ch * (size_t)n;
	if (need > d->cap) {
		double *b = av_realloc_array(d->buf, need, sizeof *b);
		if (b == NULL)
			return AVERROR(ENOMEM);
		d->buf = b;
		d->cap = need;
	}
	enum AVSampleFormat fmt = f->format;
	int planar = av_sample_fmt_is_planar(fmt);
	enum AVSampleFormat packed = av_get_packed_sample_fmt(fmt);
	for (int c = 0; c < ch; c++) {
		const uint8_t *p = planar ? f->extended_data[c] : f->extended_data[0];
		int step = planar ? 1 : ch, off = planar ? 0 : c;
		double *out = d->buf + c;
		switch (packed) {
		case AV_SAMPLE_FMT_U8:
			for (int i = 0; i < n; i++)
				out[(size_t)i * ch] = (p[i * step + off] - 0x80) * (1.0 / (1 << 7));
			break;
		case AV_SAMPLE_FMT_S16:
			for (int i = 0; i < n; i++)
				out[(size_t)i * ch] = ((const int16_t *)p)[i * step + off] * (1.0 / (1 << 15));
			break;
		case AV_SAMPLE_FMT_S32:
			for (int i = 0; i < n; i++)
				out[(size_t)i * ch] = ((const int32_t *)p)[i * step + off] * (1.0 / (1U << 31));
			break;
		case AV_SAMPLE_FMT_S64:
			for (int i = 0; i < n; i++)
				out[(size_t)i * ch] = ((const int64_t *)p)[i * step + off] * (1.0 / (UINT64_C(1) << 63));
			break;
		case AV_SAMPLE_FMT_FLT:
			for (int i = 0; i < n; i++)
				out[(size_t)i * ch] = ((const float *)p)[i * step + off];
			break;
		case AV_SAMPLE_FMT_DBL:
			for (int i = 0; i < n; i++)
				out[(size_t)i * ch] = ((const double *)p)[i * step + off];
			break;
		default:
			return AVERROR(ENOSYS);
		}
	}
	return 0;
}

int vg_next(vg_decoder *d, const double **samples, char *err, size_t errlen) {
	for (;;) {
		if (!d->pending) {
			int ret = receive(d);
			if (ret == 0) {
				// The ffmpeg command fails when more than 2/3 of its decoding attempts failed.
				if (3 * d->errors > 2 * (d->decoded + d->errors)) {
					set_error(err, errlen, "decoding failed", AVERROR_INVALIDDATA);
					return -1;
				}
				return 0;
			}
		}
		d->pending = 0;
		AVFrame *f = d->frame;
		if (f->sample_rate != d->rate || layout_differs(&d->layout, f)) {
			// The ffmpeg command would resample or remix to the first frame's format: not done here.
			char was[64] = "", now[64] = "";
			vg_layout l = {0};
			layout_describe(&d->layout, was, sizeof was);
			if (layout_of_frame(&l, f) == 0)
				layout_describe(&l, now, sizeof now);
			layout_free(&l);
			snprintf(err, errlen, "the audio changes format mid-stream (from %d Hz %s to %d Hz %s)", d->rate, was,
			         f->sample_rate, now);
			return -1;
		}
		if (f->nb_samples == 0)
			continue;
		int ret = convert(d, f);
		if (ret < 0) {
			set_error(err, errlen, ret == AVERROR(ENOSYS) ? "unexpected sample format" : "converting its samples", ret);
			return -1;
		}
		*samples = d->buf;
		return f->nb_samples;
	}
}
