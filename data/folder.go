package data

import (
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/eigenscore/eigenscore/denoise"
)

// FolderOptions controls LoadImageFolder.
type FolderOptions struct {
	// Gray loads one luma channel (C=1, ITU-R 601 weights as in
	// image/color.GrayModel); otherwise RGB (C=3).
	Gray bool
	// Classes labels images by class subfolder: each immediate subfolder of
	// dir is a class, numbered by its place in sorted order (hidden ones,
	// starting with ".", are ignored), and holds that class's images at any
	// depth. Images directly in dir are then an error.
	Classes bool
	// Recursive also loads images in subfolders at any depth when Classes
	// is off (Classes always searches class folders recursively).
	Recursive bool
	// Limit keeps only the first Limit images in path order (all when ≤ 0);
	// only those are decoded.
	Limit int
}

// imageExts are the file name extensions LoadImageFolder reads.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true}

// IsImageFile reports whether path has a PNG or JPEG extension (any case).
func IsImageFile(path string) bool { return imageExts[strings.ToLower(filepath.Ext(path))] }

// LoadImageFolder reads the PNG and JPEG images (by extension, any case) in
// dir, sorted by path, as a size×size dataset named after dir: each image is
// center-cropped to a square and resized with Catmull-Rom (copied unscaled
// when the crop is already size×size). Transparent pixels are composited on
// black. Labels are set only with opts.Classes. The conversion is
// DecodeImage's (imageToCHW), so an image gives the same values either way.
func LoadImageFolder(dir string, size int, opts FolderOptions) (*Dataset, error) {
	if size <= 0 {
		return nil, fmt.Errorf("data: image folder %s: size %d, expected a positive image side", dir, size)
	}
	c := 3
	if opts.Gray {
		c = 1
	}
	if err := checkImageShape(denoise.Shape{C: c, H: size, W: size}); err != nil {
		return nil, fmt.Errorf("data: image folder %s: size %d: %w", dir, size, err)
	}
	files, labels, err := listImages(dir, opts)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		how := "directly in it (set Recursive to search subfolders)"
		if opts.Classes {
			how = "in its class subfolders"
		} else if opts.Recursive {
			how = "in it or its subfolders"
		}
		return nil, fmt.Errorf("data: image folder %s: no images found %s, expected .png, .jpg or .jpeg files", dir, how)
	}
	if opts.Limit > 0 && opts.Limit < len(files) {
		files = files[:opts.Limit]
		if labels != nil {
			labels = labels[:opts.Limit]
		}
	}

	dim := c * size * size
	d := &Dataset{Name: filepath.Base(filepath.Clean(dir)), Shape: denoise.Shape{C: c, H: size, W: size}, Pixels: make([]float32, len(files)*dim), Labels: labels}

	// Decode in parallel; each worker writes only its images' slots, and
	// the error reported is that of the first failing file in path order.
	errs := make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := image.NewRGBA(image.Rect(0, 0, size, size))
			for i := range next {
				errs[i] = loadImageInto(files[i], dst, d.Pixels[i*dim:(i+1)*dim], opts.Gray)
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// listImages finds the image files under dir in path order, with their class
// labels when opts.Classes.
func listImages(dir string, opts FolderOptions) (files []string, labels []int, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("data: image folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("data: image folder %s is not a directory", dir)
	}
	if !opts.Classes {
		files, err = ImageFiles(dir, opts.Recursive)
		return files, nil, err
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, nil, fmt.Errorf("data: image folder: %w", err)
	}
	class := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			if IsImageFile(p) {
				return nil, nil, fmt.Errorf("data: image folder %s: image %s is not in a class subfolder", dir, p)
			}
			continue
		}
		found, err := ImageFiles(p, true)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range found {
			files = append(files, f)
			labels = append(labels, class)
		}
		class++
	}
	return files, labels, nil
}

// ImageFiles lists the PNG and JPEG files (by extension, any case) in dir,
// and with recursive in its subfolders at any depth, sorted by path; hidden
// files and folders (starting with ".") are skipped. These are the files
// an image folder loads.
func ImageFiles(dir string, recursive bool) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") || (e.IsDir() && !recursive) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.IsDir() && IsImageFile(p) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("data: image folder %s: %w", dir, err)
	}
	sort.Strings(files) // WalkDir's order is lexical per folder, not by whole path
	return files, nil
}

// loadImageInto decodes path and converts it into out (C×H×W values in
// [-1, 1]) by imageToCHW, with dst (size×size) as scratch.
func loadImageInto(path string, dst *image.RGBA, out []float32, gray bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: image folder: %w", err)
	}
	src, format, err := image.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("data: image %s: cannot decode as PNG or JPEG: %w", path, err)
	}
	if err := imageToCHW(src, dst, out, gray); err != nil {
		return fmt.Errorf("data: image %s: %s %w", path, format, err)
	}
	return nil
}
