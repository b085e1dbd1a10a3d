package weights_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/vggish-go/vggish/weights"
)

func ExampleOptions_Path() {
	o := weights.Options{CacheDir: "/var/cache/vggish"}
	path, err := o.Path(weights.Model)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(path)
	fmt.Println("sha256 starts with", weights.Model.SHA256Prefix())
	// Output:
	// /var/cache/vggish/vggish-10086976.pth
	// sha256 starts with 10086976
}

func ExampleFetch() {
	// A local server stands in for a mirror of the release files.
	content := []byte("not really weights") // sha256 6bc95095...
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(content)
	}))
	defer mirror.Close()
	cache, err := os.MkdirTemp("", "vggish-cache")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(cache)

	f := weights.File{Name: "demo-6bc95095.pth"}
	o := weights.Options{BaseURL: mirror.URL, CacheDir: cache, Progress: io.Discard}
	path, err := weights.Fetch(context.Background(), f, o)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(filepath.Base(path), weights.Verify(path, f))
	// Output: demo-6bc95095.pth <nil>
}
