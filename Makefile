# eigenscore — see README.md. Every target installs what it needs.
GO ?= go
BIN := bin/eigenscore

.PHONY: data-rgb suite-rgb test-rgb demo test test-go test-beam test-tools fuzz deps data ort build build-beam bench bench-peer clean

build:
	$(GO) build -o $(BIN) ./cmd/eigenscore
	$(GO) build -o bin/eigenscore-load ./cmd/eigenscore-load

deps:
	./scripts/install-deps.sh

data: deps
	./scripts/setup-data.sh

# The colour sets (docs/data-rgb.md): Debian and npm packages, licences
# checked, converted to 3×32×32 NPY and checked against data/rgb-manifest.json.
data-rgb: deps
	./scripts/setup-rgb.sh

# The colour suite on the shipped clip-art model (docs/results.md, "The RGB suite").
suite-rgb: data-rgb ort build
	$(BIN) eval --suite rgb --n 200 --fit-split test --preset fast --json suite-rgb.json --csv suite-rgb.csv --report suite-rgb.html

# The shipped colour model against the Gaussian mixture on the colour data
# (minutes: the mixture is fitted in 3,072 dimensions; not part of `make test`).
test-rgb: data-rgb ort
	$(GO) test -count=1 -tags rgb -run TestColourModelBeatsMixture -v ./models

ort: deps
	./scripts/install-onnxruntime.sh >/dev/null

# The main job on the shipped defaults: Fashion-MNIST (ID) vs MNIST (OOD).
demo: data ort build
	$(BIN) eval --id fashion-mnist --ood mnist --n 100 --preset fast --json demo.json --report demo.html

test: test-go test-beam test-tools

test-go: data ort
	test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# Brief fuzzing of the parsers of untrusted input (detector files, options);
# the committed corpora under testdata/fuzz run with every `go test`.
fuzz:
	$(GO) test -run XXX -fuzz 'FuzzDecode$$' -fuzztime 10s .
	$(GO) test -run XXX -fuzz 'FuzzOptions$$' -fuzztime 10s .
	$(GO) test -run XXX -fuzz 'FuzzDecode$$' -fuzztime 10s ./detector
	$(GO) test -run XXX -fuzz 'FuzzDecodeScoreRequest$$' -fuzztime 10s ./serve
	$(GO) test -run XXX -fuzz 'FuzzDecodeInferRequest$$' -fuzztime 10s ./serve
	for t in FuzzIDX FuzzNPY FuzzMAT FuzzDecodeImage; do $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime 5s ./data || exit 1; done
	$(GO) test -run XXX -fuzz '^FuzzCIFAR$$' -fuzztime 5s -fuzzminimizetime 1s ./data

# The Beam pipeline (module beam/, its own go.mod) on Beam's Prism runner.
test-beam: data ort
	cd beam && test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	cd beam && $(GO) vet ./...
	cd beam && $(GO) test -count=1 -timeout 10m ./...

build-beam:
	cd beam && $(GO) build -o ../bin/eigenscore-beam ./cmd/eigenscore-beam

test-tools: deps
	/usr/bin/python3 -m unittest discover -s tools -v

bench: data ort
	$(GO) test -run XXX -bench . -benchtime 3x ./spectrum ./denoise/onnx

clean:
	rm -rf bin demo.json demo.html

# eigenscore's ONNX Runtime backend (default options) against the best PyTorch
# configuration on the shipped Fashion-MNIST network, interleaved, at 1, 6, 32
# and 192 images per call: one line per call size (tools/bench_peer.py).
bench-peer: deps ort
	$(GO) test -c -o bin/onnx-bench.test ./denoise/onnx
	/usr/bin/python3 tools/bench_peer.py --go-test bin/onnx-bench.test
