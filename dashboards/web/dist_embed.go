// Package web holds the built web app (dist/, produced by `vite build`, see ../scripts/build.sh)
// and embeds it into the dashboards binary.
package web

import (
	"embed"
	"errors"
	"io/fs"
)

// The pattern "dist*" matches the build output directory dist/ and this file. Matching this
// file too keeps the module compiling (and `go vet ./...` passing) on a fresh checkout before
// the web app was built; Dist then reports the missing build instead of the compiler. "all:"
// keeps files whose names start with "." or "_" (Vite may emit such chunk names).
//
//go:embed all:dist*
var files embed.FS

// ErrNoAssets is returned by Dist when the binary was built without the web app's build output.
var ErrNoAssets = errors.New("the web app is not built into this binary: dashboards/web/dist/index.html was missing at `go build` time; run dashboards/scripts/build.sh, then rebuild the dashboards binary")

// Dist returns the built web app (index.html at its root), or ErrNoAssets.
func Dist() (fs.FS, error) {
	sub, err := fs.Sub(files, "dist")
	if err != nil {
		return nil, ErrNoAssets
	}
	if _, err := fs.Stat(sub, "index.html"); err != nil {
		return nil, ErrNoAssets
	}
	return sub, nil
}
