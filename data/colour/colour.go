// Package colour builds the colour (RGB) image sets of the project from images
// that Debian and npm packages ship, by one fixed rule, into NPY files that
// package data loads by name (data.Load of "clipart", "emoji", …).
//
// Every set is 3×32×32, stored as uint8 NPY arrays [N,32,32,3] (rows,
// columns, then R, G, B: the layout of an image in NumPy) in
// DIR/rgb/<name>/train.npy and test.npy. The rule (the manifest records it
// and its parameters, see Rule):
//
//   - Sources: the files of each source, listed in byte order of their path
//     relative to the package root; symbolic links are skipped (a package
//     links one drawing under several folders). Every file's package, pinned
//     version and licence are checked from the installed package's own files
//     before anything is converted (Source, Build).
//   - Decoding: PNG and JPEG. An image over data.MaxImagePixels pixels is
//     skipped unread, one that fails to decode is skipped; both are counted
//     in the manifest, the undecodable ones by name.
//   - Alpha is composited onto white (255, 255, 255): clip art and emoji
//     are drawn on transparency; photos and textures are opaque, so there
//     it changes nothing.
//   - Object sets (clip art, emoji): the bounding box of the pixels that
//     are not white after compositing is padded with white to a centred
//     square, which is resized to 32×32. The whole drawing is kept and fills
//     the frame the same way in every object set, so that sets differ by
//     what is drawn, not by margins. An image with no such pixel is blank and
//     skipped (counted).
//   - Patch sets (photos, textures): each file gives PatchesPerFile square
//     crops; crop k of file f has a side uniform in [max(32, s/8), max(32,
//     s/2)] pixels, s the file's shorter side, at a uniform position, all
//     three drawn from SHA-256(key(f) + "#" + k) (key below), so the crops
//     are fixed by the file and k alone. A file shorter than 32 pixels is
//     skipped (counted).
//   - Resize: Catmull-Rom (draw.CatmullRom of golang.org/x/image/draw) in
//     sRGB, the filter data.DecodeImage uses. Its Scale widens the kernel by
//     the reduction factor when downscaling, so every output pixel averages
//     its whole source footprint (no aliasing, unlike draw.ApproxBiLinear or
//     NearestNeighbor, which read 4 or 1 source pixels), with a sharper
//     response than a box filter; no box pre-pass is needed.
//   - Split: the key of a file is "<package>/<path relative to the package
//     root>"; the file's images go to test when the first 8 bytes of
//     SHA-256(key), read as a big-endian integer, are below TestFraction·2⁶⁴,
//     else to train. All crops of one photo land in one split.
//   - Duplicates: an image whose 3,072 bytes equal those of an image kept
//     before it (in file order, then crop order, across train and test) is
//     dropped and counted, so train and test share no image.
package colour

// Size is the side of every image, in pixels.
const Size = 32

// Geometry says how a source image becomes 32×32 images.
type Geometry string

const (
	// Object keeps the whole drawing: its non-white bounding box, padded
	// to a centred square.
	Object Geometry = "object"
	// Patches takes PatchesPerFile seeded square crops of each file.
	Patches Geometry = "patches"
)

// Package kinds: where a source is installed from and how its version is read.
const (
	// Debian packages are installed with apt; the version is read from
	// var/lib/dpkg/status under the Debian root, and paths are relative to
	// that root.
	Debian = "debian"
	// NPM packages are installed with npm into a prefix; the version is read
	// from node_modules/<package>/package.json, and paths are relative to
	// that folder.
	NPM = "npm"
)

// Check is one statement of licence that a package's own file must contain.
type Check struct {
	// File is the path of the file, relative to the package root.
	File string
	// Text must occur in the file; runs of white space compare as one space.
	Text string
}

// Source is one package's contribution to a set.
type Source struct {
	Kind    string // Debian or NPM
	Package string
	// Version is the exact version the set is built from; another installed
	// version is an error.
	Version string
	// Licence is the licence of the files used, as recorded in the manifest.
	Licence string
	// Checks must all hold for the package to be used.
	Checks []Check
	// PerFile, when set, finds the licence stated for each file used, which
	// must be PerFileLicence: for packages whose files carry different
	// licences.
	PerFile        FileLicence
	PerFileLicence string
	// Dir is the folder, relative to the package root, whose files with
	// extension Ext (any depth) are used.
	Dir, Ext string
	// Only, when set, keeps just these paths (relative to Dir); each must
	// exist.
	Only []string
}

// Role is a set's part in the colour suite.
type Role string

// The roles of the colour suite's sets; their values are what the manifest
// records.
const (
	// InDistribution is the set the colour model is trained and fitted on.
	InDistribution Role = "id"
	// NearOOD is the same kind of content from another source or style.
	NearOOD Role = "near-ood"
	// FarOOD is different content.
	FarOOD Role = "far-ood"
)

// Set is one image set: its sources and the parameters of the rule.
type Set struct {
	Name string
	// Role is the set's part in the colour suite.
	Role Role
	// About says what the images are.
	About    string
	Sources  []Source
	Geometry Geometry
	// PatchesPerFile is the number of crops per file (Patches only).
	PatchesPerFile int
	// TestFraction is the expected share of files whose images go to test.
	TestFraction float64
}

// Sets returns the sets the project builds, in manifest order. Every name
// is a dataset name of package data.
func Sets() []Set {
	return []Set{
		{
			Name: "clipart", Role: InDistribution, Geometry: Object, TestFraction: 0.2,
			About: "Open Clip Art Library drawings (animals, people, buildings, signs, icons, …) on white",
			Sources: []Source{{
				Kind: Debian, Package: "openclipart-png", Version: "1:0.18+dfsg-19",
				Licence: "public domain (Creative Commons Public Domain Dedication)",
				Checks: []Check{{File: "usr/share/doc/openclipart-png/copyright",
					Text: "creative commons Public Domain Dedication Copyright-Only Dedication (based on United States law) or Public Domain Certification"}},
				Dir: "usr/share/openclipart/png", Ext: ".png",
			}},
		},
		{
			Name: "emoji", Role: NearOOD, Geometry: Object, TestFraction: 0.2,
			About: "Twemoji emoji (64 px PNGs, every emoji and skin tone) on white",
			Sources: []Source{{
				Kind: NPM, Package: "emoji-datasource-twitter", Version: "16.0.0",
				Licence: "CC-BY-4.0 (Twemoji graphics © Twitter, Inc. and other contributors)",
				Checks: []Check{{File: "README.md",
					Text: "Twitter images are available under the [Creative Commons Attribution 4.0 license]"}},
				Dir: "img/twitter/64", Ext: ".png",
			}},
		},
		{
			Name: "emoji-noto", Role: NearOOD, Geometry: Object, TestFraction: 0.2,
			About: "Noto Color Emoji (64 px PNGs, every emoji and skin tone) on white",
			Sources: []Source{{
				Kind: NPM, Package: "emoji-datasource-google", Version: "16.0.0",
				Licence: "Apache-2.0 (Noto Emoji images © Google Inc.)",
				Checks: []Check{{File: "README.md",
					Text: "Android/Google/Noto images, are available under the [Apache License 2.0]"}},
				Dir: "img/google/64", Ext: ".png",
			}},
		},
		{
			Name: "photos", Role: FarOOD, Geometry: Patches, PatchesPerFile: 200, TestFraction: 0.5,
			About: "crops of 23 desktop-wallpaper photographs (landscapes, water, plants, flowers, objects)",
			Sources: []Source{
				{
					Kind: Debian, Package: "plasma-workspace-wallpapers", Version: "4:5.27.5-2",
					Licence: "LGPLv3 (each wallpaper's metadata.json; the Debian copyright file states GPL-2+ for the package)",
					Checks: []Check{{File: "usr/share/doc/plasma-workspace-wallpapers/copyright",
						Text: "Files: * Copyright: 2014 KDE Visual Design Group http://vdesign.kde.org/ License: GPL-2+"}},
					PerFile: KDEMetadata{}, PerFileLicence: "LGPLv3",
					Dir: "usr/share/wallpapers", Ext: ".jpg",
					// The photographs, each at its largest size (the other
					// wallpapers are drawings).
					Only: []string{
						"BytheWater/contents/images/2560x1600.jpg",
						"ColdRipple/contents/images/2560x1600.jpg",
						"ColorfulCups/contents/images/2560x1600.jpg",
						"DarkestHour/contents/images/2560x1600.jpg",
						"EveningGlow/contents/images/2560x1600.jpg",
						"FallenLeaf/contents/images/2560x1600.jpg",
						"Grey/contents/images/2560x1600.jpg",
						"Kite/contents/images/2560x1600.jpg",
						"OneStandsOut/contents/images/2560x1600.jpg",
						"Path/contents/images/2560x1600.jpg",
						"summer_1am/contents/images/2560x1600.jpg",
					},
				},
				{
					Kind: Debian, Package: "mate-backgrounds", Version: "1.26.0-1",
					Licence: "GPL-2+ (per file, Debian copyright file)",
					PerFile: DEP5{Copyright: "usr/share/doc/mate-backgrounds/copyright", Installed: "usr/share/backgrounds/mate/"},
					// The photographs: the nature folder.
					PerFileLicence: "GPL-2+",
					Dir:            "usr/share/backgrounds/mate/nature", Ext: ".jpg",
				},
			},
		},
		{
			Name: "textures", Role: FarOOD, Geometry: Patches, PatchesPerFile: 100, TestFraction: 0.5,
			About: "crops of 42 ground textures of a game (snow, ice, rock, grass, dirt, sand, pebbles, paving)",
			Sources: []Source{{
				Kind: Debian, Package: "extremetuxracer-data", Version: "0.8.2-1",
				Licence: "GPL-2+ (per file, Debian copyright file)",
				// Installed usr/share/games/etr/X is the upstream data/X.
				PerFile:        DEP5{Copyright: "usr/share/doc/extremetuxracer-data/copyright", Installed: "usr/share/games/etr/", Upstream: "data/"},
				PerFileLicence: "GPL-2+",
				Dir:            "usr/share/games/etr/terrains", Ext: ".png",
			}},
		},
	}
}
