package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/vggish-go/vggish/weights"
)

var published = map[string]weights.File{"model": weights.Model, "pca": weights.PCA}

func RunWeights(args []string, s Stdio) error {
	fs := NewFlags("weights", fmt.Sprintf(`usage: vggish weights download|path|verify [flags] [FILE...]

  download [model|pca]  fetch the published files (both unless told which) into the cache; prints their paths
  path [model|pca]      print where the published files are cached
  verify [FILE...]      check files (default: the cached published ones) against the sha256 prefix in their
                        torch.hub style names, NAME-HASH.EXT

The published files are %s (model) and %s (pca).
`, weights.Model.Name, weights.PCA.Name))
	o := weights.Options{Progress: DownloadProgress(s.Err)}
	fs.StringVar(&o.BaseURL, "base-url", "", "`URL` of the folder the files are fetched from (default $"+weights.EnvBaseURL+", else "+weights.DefaultBaseURL+")")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "cache `DIR` (default $"+weights.EnvCache+", else vggish in the user cache folder)")
	rest, err := fs.ParseArgs(args, s.Out)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return fs.Misuse("want a subcommand: download, path or verify")
	}
	sub, rest := rest[0], rest[1:]
	switch sub {
	case "download", "path":
		files, err := publishedFiles(rest)
		if err != nil {
			return fs.AsMisuse(err)
		}
		for _, f := range files {
			var p string
			if sub == "download" {
				p, err = weights.Fetch(context.Background(), f, o)
			} else {
				p, err = o.Path(f)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(s.Out, p)
		}
		return nil
	case "verify":
		paths := rest
		if len(paths) == 0 {
			for _, f := range []weights.File{weights.Model, weights.PCA} {
				p, err := o.Path(f)
				if err != nil {
					return err
				}
				paths = append(paths, p)
			}
		}
		var errs []error
		for _, p := range paths {
			if err := weights.Verify(p, weights.File{Name: filepath.Base(p)}); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(s.Out, "ok %s\n", p)
		}
		return errors.Join(errs...)
	}
	return fs.Misuse("unknown subcommand %q: want download, path or verify", sub)
}

// DownloadProgress is where the progress of a download of the published files goes: stderr when it
// is a terminal (the progress line is redrawn in place), else nowhere.
func DownloadProgress(stderr io.Writer) io.Writer {
	if IsTerminal(stderr) {
		return stderr
	}
	return nil
}

// DownloadHint adds the flag that does without a published file that could not be downloaded.
func DownloadHint(err error) error {
	var de *weights.DownloadError
	if !errors.As(err, &de) {
		return err
	}
	flag := "--weights"
	if de.File == weights.PCA {
		flag = "--pca"
	}
	return fmt.Errorf("%w; or give %s FILE, a copy obtained elsewhere", err, flag)
}

// publishedFiles maps "model"/"pca" (or the files' names) to files; none means both.
func publishedFiles(names []string) ([]weights.File, error) {
	if len(names) == 0 {
		return []weights.File{weights.Model, weights.PCA}, nil
	}
	var out []weights.File
	for _, n := range names {
		f, ok := published[n]
		if !ok && (n == weights.Model.Name || n == weights.PCA.Name) {
			f, ok = weights.File{Name: n}, true
		}
		if !ok {
			return nil, fmt.Errorf("unknown weight file %q: want model or pca", n)
		}
		out = append(out, f)
	}
	return out, nil
}
