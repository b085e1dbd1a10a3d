// Package demuxers says which of ffmpeg's demuxers may read an input. Some read other files than the one
// they are given: a concat script or an HLS, DASH or IMF playlist names the files to read, an image
// sequence reads its neighbours. Under an audio file's name, one of those made a decoder pass another
// file's audio for its own, or block for ever on a named pipe it listed. ffmpeg's protocol whitelist
// ("file") cannot tell such reads from the input's own, so those demuxers are left out of the format
// whitelist ffmpeg is given, on both decoding paths (ffmpeg's libraries and the ffmpeg command).
package demuxers

import (
	"regexp"
	"slices"
	"strings"
)

// refused are the demuxers that read files their input names.
var refused = []string{"concat", "dash", "hls", "image2", "imf"}

// Whitelist is ffmpeg's format_whitelist for a build whose demuxers are those named: all but the
// refused ones, comma-separated (a name may itself be a comma-separated list, "mov,mp4,m4a,...").
func Whitelist(demuxers []string) string {
	kept := slices.DeleteFunc(slices.Clone(demuxers), func(name string) bool {
		return name == "" || slices.Contains(refused, name)
	})
	return strings.Join(kept, ",")
}

// Reason says why an input of a refused demuxer fails.
const Reason = "it names other files to read (a concat script, an HLS, DASH or IMF playlist, an image sequence): refused"

// notOnWhitelist is libavformat's refusal with the list, whole or cut short by a message's bound.
var notOnWhitelist = regexp.MustCompile(`Format not on whitelist '[^')]*'?`)

// Explain replaces, in a message of ffmpeg's, its "Format not on whitelist" and the list with what
// the refusal means.
func Explain(msg string) string { return notOnWhitelist.ReplaceAllLiteralString(msg, Reason) }

// ParseList returns the demuxers' names in the output of `ffmpeg -demuxers`: after a line of dashes, a
// line per format, its flags (D for demuxing, d for a device) then its name.
func ParseList(out string) []string {
	var names []string
	listed := false
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case !listed:
			listed = len(f) == 1 && strings.Trim(f[0], "-") == ""
		case len(f) >= 2 && strings.ContainsAny(f[0], "Dd"):
			names = append(names, f[1])
		}
	}
	return names
}
