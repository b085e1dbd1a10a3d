// A small C layer over libavformat and libavcodec: the first audio stream of a file, decoded and
// converted to interleaved float64 as the ffmpeg command `-map 0:a:0 -c:a pcm_f64le` converts it.
#ifndef VGGISH_LIBAV_SHIM_H
#define VGGISH_LIBAV_SHIM_H

#include <stddef.h>

typedef struct vg_decoder vg_decoder;

// vg_open opens path with the demuxers that formats names (a format_whitelist) alone, and decodes up to
// its first frame, whose rate and channel count are the stream's (as for the ffmpeg command, whose
// output takes them from the first frame). On failure it returns NULL with a message in err.
vg_decoder *vg_open(const char *path, const char *formats, char *err, size_t errlen);

// vg_demuxers lists the names of the demuxers libavformat has, a line each; vg_free frees it.
char *vg_demuxers(void);
void vg_free(void *p);

int vg_rate(const vg_decoder *d);
int vg_channels(const vg_decoder *d);

// vg_next sets *samples to the next frame's samples, interleaved float64, valid until the next call,
// and returns its frame count; 0 at the end of the stream; -1 on failure, with a message in err.
int vg_next(vg_decoder *d, const double **samples, char *err, size_t errlen);

void vg_close(vg_decoder *d);

#endif
